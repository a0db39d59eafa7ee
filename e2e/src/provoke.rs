//! The failures a workload can provoke, each with the exact `socket()` arguments that
//! produce it on any Linux kernel (EPERM by dropping CAP_NET_RAW, EMFILE by using up
//! `RLIMIT_NOFILE`, EACCES through the thread's own seccomp filter), through the system
//! call or as an io_uring request.

use serde::{Deserialize, Serialize};

use crate::uring::SocketRing;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Failure {
    /// `socket(9999, SOCK_STREAM, 0)`.
    Eafnosupport,
    /// `socket(AF_INET, 12345, 0)`.
    Einval,
    /// `socket(AF_INET, SOCK_STREAM, 200)`.
    Eprotonosupport,
    /// `socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)` from a thread without CAP_NET_RAW.
    Eperm,
    /// `socket(AF_INET, SOCK_DGRAM, 0)` once `RLIMIT_NOFILE` is used up.
    Emfile,
    /// `socket(AF_INET6, SOCK_DGRAM, IPPROTO_UDP)` denied with EACCES by a seccomp filter
    /// the thread installed (the call never enters the system call).
    Seccomp,
    /// An `IORING_OP_SOCKET` request for family 9999, `SOCK_DGRAM`, protocol 0.
    UringEafnosupport,
    /// An `IORING_OP_SOCKET` request for `AF_INET`, type 12345 (refused when prepared).
    UringEinval,
}

/// Where a failure's call went: the `socket()` system call or an io_uring request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Syscall,
    IoUring,
}

impl Failure {
    pub const ALL: [Failure; 8] = [
        Self::Eafnosupport,
        Self::Einval,
        Self::Eprotonosupport,
        Self::Eperm,
        Self::Emfile,
        Self::Seccomp,
        Self::UringEafnosupport,
        Self::UringEinval,
    ];

    /// The name workloads take in `--fail NAME=N`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Seccomp => "SECCOMP",
            Self::UringEafnosupport => "URING_EAFNOSUPPORT",
            Self::UringEinval => "URING_EINVAL",
            other => other.errno_name(),
        }
    }

    pub fn path(self) -> Path {
        match self {
            Self::UringEafnosupport | Self::UringEinval => Path::IoUring,
            _ => Path::Syscall,
        }
    }

    /// The event's `source` for this failure.
    pub fn source(self) -> &'static str {
        match self.path() {
            Path::Syscall => "syscall",
            Path::IoUring => "io_uring",
        }
    }

    /// Whether a probe mode sees this failure at all: seccomp denies the call before the
    /// entry tracepoint and `__sys_socket`, so only the syscall exit sees it.
    pub fn seen_by(self, probe: &str) -> bool {
        self != Self::Seccomp || matches!(probe, "exit-only" | "tracepoint")
    }

    /// Whether the call enters `socket()` (and so counts in a pair mode's `calls`).
    pub fn enters_socket(self) -> bool {
        self.path() == Path::Syscall && self != Self::Seccomp
    }

    /// (family, type, protocol) passed to `socket()`.
    pub fn args(self) -> (i32, i32, i32) {
        match self {
            Self::Eafnosupport => (9999, libc::SOCK_STREAM, 0),
            Self::Einval => (libc::AF_INET, 12345, 0),
            Self::Eprotonosupport => (libc::AF_INET, libc::SOCK_STREAM, 200),
            Self::Eperm => (libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
            Self::Emfile => (libc::AF_INET, libc::SOCK_DGRAM, 0),
            Self::Seccomp => (
                crate::seccomp::DENIED_FAMILY,
                libc::SOCK_DGRAM,
                libc::IPPROTO_UDP,
            ),
            Self::UringEafnosupport => (9999, libc::SOCK_DGRAM, 0),
            Self::UringEinval => (libc::AF_INET, 12345, 0),
        }
    }

    pub fn errno(self) -> i32 {
        match self {
            Self::Eafnosupport => libc::EAFNOSUPPORT,
            Self::Einval => libc::EINVAL,
            Self::Eprotonosupport => libc::EPROTONOSUPPORT,
            Self::Eperm => libc::EPERM,
            Self::Emfile => libc::EMFILE,
            Self::Seccomp => crate::seccomp::DENIED_ERRNO,
            Self::UringEafnosupport => libc::EAFNOSUPPORT,
            Self::UringEinval => libc::EINVAL,
        }
    }

    pub fn errno_name(self) -> &'static str {
        match self {
            Self::Eafnosupport => "EAFNOSUPPORT",
            Self::Einval => "EINVAL",
            Self::Eprotonosupport => "EPROTONOSUPPORT",
            Self::Eperm => "EPERM",
            Self::Emfile => "EMFILE",
            Self::Seccomp => "EACCES",
            Self::UringEafnosupport => "EAFNOSUPPORT",
            Self::UringEinval => "EINVAL",
        }
    }

    /// The failure named `name` (its `--fail` name, any case).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The failure an event with this `source` and errno name reports.
    pub fn of_event(source: &str, errno_name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.source() == source && f.errno_name() == errno_name)
    }

    /// The names the tapper must decode these arguments to.
    pub fn arg_names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Eafnosupport => ("9999", "SOCK_STREAM", "0"),
            Self::Einval => ("AF_INET", "9|0x3030", "IPPROTO_IP"),
            Self::Eprotonosupport => ("AF_INET", "SOCK_STREAM", "200"),
            Self::Eperm => ("AF_INET", "SOCK_RAW", "IPPROTO_ICMP"),
            Self::Emfile => ("AF_INET", "SOCK_DGRAM", "IPPROTO_IP"),
            Self::Seccomp => ("AF_INET6", "SOCK_DGRAM", "IPPROTO_UDP"),
            Self::UringEafnosupport => ("9999", "SOCK_DGRAM", "0"),
            Self::UringEinval => ("AF_INET", "9|0x3030", "IPPROTO_IP"),
        }
    }
}

/// One raw `socket()` call: the descriptor, or the errno it failed with.
pub fn socket_call(family: i32, sock_type: i32, protocol: i32) -> Result<i32, i32> {
    // SAFETY: socket() takes plain integers.
    let fd = unsafe { libc::socket(family, sock_type, protocol) };
    if fd >= 0 {
        Ok(fd)
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

pub fn close(fd: i32) {
    // SAFETY: closes a descriptor this process opened and owns.
    unsafe { libc::close(fd) };
}

/// A call that succeeds: a TCP socket, closed right away.
pub fn succeed() -> anyhow::Result<()> {
    match socket_call(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) {
        Ok(fd) => {
            close(fd);
            Ok(())
        }
        Err(errno) => anyhow::bail!("a socket() meant to succeed failed with errno {errno}"),
    }
}

/// Makes `failure`'s call (through `ring` for an io_uring failure) and checks it failed
/// as intended.
pub fn provoke(failure: Failure, ring: Option<&mut SocketRing>) -> anyhow::Result<()> {
    let (family, sock_type, protocol) = failure.args();
    let result = match (failure.path(), ring) {
        (Path::Syscall, _) => socket_call(family, sock_type, protocol),
        (Path::IoUring, Some(ring)) => ring.socket(family, sock_type, protocol)?,
        (Path::IoUring, None) => anyhow::bail!("{failure:?} needs the thread's io_uring"),
    };
    match result {
        Err(errno) if errno == failure.errno() => Ok(()),
        Err(errno) => anyhow::bail!("{failure:?} provoked errno {errno} instead"),
        Ok(fd) => {
            close(fd);
            anyhow::bail!("{failure:?}: socket({family}, {sock_type}, {protocol}) succeeded")
        }
    }
}

/// Drops CAP_NET_RAW from this thread's effective set (capabilities are per thread).
pub fn drop_net_raw_in_this_thread() -> anyhow::Result<()> {
    caps::drop(None, caps::CapSet::Effective, caps::Capability::CAP_NET_RAW)
        .map_err(|err| anyhow::anyhow!("dropping CAP_NET_RAW: {err}"))
}
