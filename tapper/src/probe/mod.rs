//! Loading and attaching the eBPF programs: choosing a probe mode, checking what the
//! kernel offers, and explaining clearly what is missing when it cannot work.

mod attach;
mod error;
mod features;
mod tracefs;

pub use attach::{Capture, attach};
pub use error::ProbeError;
pub use features::kernel_release;

/// Which probe pair to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeMode {
    /// The kprobe pair where the kernel has kprobes, else the tracepoints.
    Auto,
    /// kprobe/kretprobe on `__sys_socket`.
    Kprobe,
    /// `syscalls:sys_enter_socket` / `sys_exit_socket`.
    Tracepoint,
}

impl ProbeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Kprobe => "kprobe",
            Self::Tracepoint => "tracepoint",
        }
    }
}
