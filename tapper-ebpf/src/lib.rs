//! Empty library target: it lets the user-space crate name this one as a build dependency,
//! so cargo rebuilds the eBPF object when it changes. The programs are in `main.rs`.
#![no_std]
