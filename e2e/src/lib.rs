//! End-to-end checking of the tapper: a workload that provokes known `socket()` failures,
//! a harness that runs the real tapper beside it, and the comparison of what each saw.
//! Used by the host's integration tests and, as `capture-check`, inside kernel-matrix VMs.

pub mod check;
pub mod context_check;
pub mod provoke;
pub mod seccomp;
pub mod short_lived;
pub mod stack_workload;
pub mod storm;
pub mod tapper;
pub mod uring;
pub mod workload;
