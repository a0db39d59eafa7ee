//! Loading and attaching the eBPF programs: choosing a probe mode, checking what the
//! kernel offers, and explaining clearly what is missing when it cannot work.

mod atomics;
mod attach;
mod btf;
mod context;
mod error;
mod features;
mod io_uring;
mod kretprobe;
mod nofile;
mod regs;
mod selftest;
mod stacks;
mod tracefs;

pub use attach::{Capture, Probes, Request, attach};
pub use error::ProbeError;
pub use features::kernel_release;
pub use nofile::NofileWarn;
pub use selftest::is_self_test;

/// Which programs catch failed `socket()` system calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeMode {
    /// exit-only where its self-test passes, else the kprobe pair where the kernel has
    /// kprobes, else the tracepoint pair.
    Auto,
    /// `syscalls:sys_exit_socket` alone, arguments from the saved user registers (sees
    /// seccomp-denied calls; no duration).
    ExitOnly,
    /// fexit on `__sys_socket` (needs BPF trampolines; no duration, no seccomp-denied calls).
    Fexit,
    /// kprobe/kretprobe on `__sys_socket` (no seccomp-denied calls).
    Kprobe,
    /// `syscalls:sys_enter_socket` / `sys_exit_socket`.
    Tracepoint,
}

impl ProbeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::ExitOnly => "exit-only",
            Self::Fexit => "fexit",
            Self::Kprobe => "kprobe",
            Self::Tracepoint => "tracepoint",
        }
    }
}
