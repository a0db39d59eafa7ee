//! Why capture could not start, each variant saying what is missing and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "missing privileges: loading eBPF needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN); \
         this process lacks {missing}. Run the tapper as root"
    )]
    Privileges { missing: String },

    #[error(
        "the kprobe pair needs a kernel built with CONFIG_KPROBES and CONFIG_KPROBE_EVENTS, but \
         {path} does not exist on this kernel ({kernel})"
    )]
    NoKprobes { path: PathBuf, kernel: String },

    #[error(
        "the kprobe pair needs the kernel function `__sys_socket`, which is not in \
         /proc/kallsyms on this kernel ({kernel})"
    )]
    NoSysSocketSymbol { kernel: String },

    /// An explicitly requested mode the kernel cannot support, with the way out.
    #[error("--probe {mode} cannot work here: {reason}. Use --probe {instead}, or --probe auto")]
    ModeUnavailable {
        mode: &'static str,
        instead: &'static str,
        reason: Box<ProbeError>,
    },

    #[error(
        "tracefs is not mounted and mounting it at {path} failed ({source}). Mount it with \
         `mount -t tracefs tracefs /sys/kernel/tracing` and run again"
    )]
    Tracefs { path: PathBuf, source: nix::Error },

    #[error(
        "{what} failed: {source}. The kretprobe with room for many calls in flight needs \
         tracefs's kprobe_events (CONFIG_KPROBE_EVENTS)"
    )]
    TracefsKprobe {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the tracepoint pair needs syscall tracepoints (CONFIG_FTRACE_SYSCALLS), but {path} does \
         not exist on this kernel ({kernel})"
    )]
    NoSyscallTracepoints { path: PathBuf, kernel: String },

    #[error(
        "the kernel has no BTF ({path} does not exist on {kernel}); exit-only mode and \
         io_uring capture need a kernel built with CONFIG_DEBUG_INFO_BTF"
    )]
    NoBtf { path: PathBuf, kernel: String },

    #[error("reading BTF from {what}: {reason}")]
    Btf { what: String, reason: String },

    #[error(
        "no register table for the {arch} architecture: the arguments of a call cannot be \
         read from its saved registers (add the architecture to tapper/src/probe/regs.rs)"
    )]
    NoRegisterTable { arch: &'static str },

    #[error(
        "io_uring socket failures need the io_uring:io_uring_complete tracepoint, but {path} \
         does not exist on this kernel ({kernel})"
    )]
    NoIoUringTracepoint { path: PathBuf, kernel: String },

    #[error(
        "this kernel ({kernel}) has no io_uring socket opcode (IORING_OP_SOCKET, Linux 5.19): \
         io_uring cannot create sockets here, so there is nothing to catch"
    )]
    NoIoUringSocket { kernel: String },

    #[error(
        "sys_exit_socket's `ret` field is at offset {found} on this kernel, but exit-only mode \
         reads it at {expected}"
    )]
    ExitRetOffset { found: u32, expected: u32 },

    #[error("the saved registers cannot be read: {0}")]
    RegsUnavailable(String),

    #[error("the exit-only self-test failed: {0}")]
    SelfTest(String),

    #[error("cannot read the tracepoint format {path}: {reason}")]
    TracepointFormat { path: PathBuf, reason: String },

    #[error("loading the eBPF object failed: {0}")]
    Load(#[from] aya::EbpfError),

    #[error("the eBPF object has no program or map named `{0}` (a build mismatch; rebuild)")]
    Missing(&'static str),

    #[error("{what} failed: {source}{}", kernel_errno(source))]
    Program {
        what: String,
        #[source]
        source: aya::programs::ProgramError,
    },

    #[error("opening the eBPF map {name} failed: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

/// The kernel's errno behind a failed bpf() call, which aya's message leaves out: it tells
/// a kernel that cannot do something (ENOTSUPP, 524) from one that refuses it (EPERM).
fn kernel_errno(err: &aya::programs::ProgramError) -> String {
    match err {
        // The kernel's own ENOTSUPP, which libc has no name for.
        aya::programs::ProgramError::SyscallError(e) if e.io_error.raw_os_error() == Some(524) => {
            " (ENOTSUPP, 524: this kernel does not support it)".to_owned()
        }
        aya::programs::ProgramError::SyscallError(e) => format!(" ({})", e.io_error),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use aya::{programs::ProgramError, sys::SyscallError};

    use super::ProbeError;

    #[test]
    fn a_failed_attach_names_the_kernels_errno() {
        let err = ProbeError::Program {
            what: "attaching fexit sys_socket_fexit on __sys_socket".into(),
            source: ProgramError::SyscallError(SyscallError {
                call: "bpf_raw_tracepoint_open",
                io_error: std::io::Error::from_raw_os_error(524),
            }),
        };
        let text = err.to_string();
        assert!(text.starts_with("attaching fexit sys_socket_fexit on __sys_socket failed: "));
        assert!(text.contains("bpf_raw_tracepoint_open"), "{text}");
        assert!(
            text.ends_with("(ENOTSUPP, 524: this kernel does not support it)"),
            "{text}"
        );
    }

    #[test]
    fn other_errnos_keep_their_libc_names() {
        let err = ProbeError::Program {
            what: "loading fexit sys_socket_fexit".into(),
            source: ProgramError::SyscallError(SyscallError {
                call: "bpf_prog_load",
                io_error: std::io::Error::from_raw_os_error(libc::EPERM),
            }),
        };
        assert!(
            err.to_string()
                .ends_with("(Operation not permitted (os error 1))"),
            "{err}"
        );
    }
}
