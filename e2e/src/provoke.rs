//! The failures a workload can provoke, each with the exact `socket()` arguments that
//! produce it on any Linux kernel (EPERM by dropping CAP_NET_RAW, EMFILE by using up
//! `RLIMIT_NOFILE`).

use serde::{Deserialize, Serialize};

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
}

impl Failure {
    pub const ALL: [Failure; 5] = [
        Self::Eafnosupport,
        Self::Einval,
        Self::Eprotonosupport,
        Self::Eperm,
        Self::Emfile,
    ];

    /// (family, type, protocol) passed to `socket()`.
    pub fn args(self) -> (i32, i32, i32) {
        match self {
            Self::Eafnosupport => (9999, libc::SOCK_STREAM, 0),
            Self::Einval => (libc::AF_INET, 12345, 0),
            Self::Eprotonosupport => (libc::AF_INET, libc::SOCK_STREAM, 200),
            Self::Eperm => (libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
            Self::Emfile => (libc::AF_INET, libc::SOCK_DGRAM, 0),
        }
    }

    pub fn errno(self) -> i32 {
        match self {
            Self::Eafnosupport => libc::EAFNOSUPPORT,
            Self::Einval => libc::EINVAL,
            Self::Eprotonosupport => libc::EPROTONOSUPPORT,
            Self::Eperm => libc::EPERM,
            Self::Emfile => libc::EMFILE,
        }
    }

    pub fn errno_name(self) -> &'static str {
        match self {
            Self::Eafnosupport => "EAFNOSUPPORT",
            Self::Einval => "EINVAL",
            Self::Eprotonosupport => "EPROTONOSUPPORT",
            Self::Eperm => "EPERM",
            Self::Emfile => "EMFILE",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.errno_name().eq_ignore_ascii_case(name))
    }

    /// The names the tapper must decode these arguments to.
    pub fn arg_names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Eafnosupport => ("9999", "SOCK_STREAM", "0"),
            Self::Einval => ("AF_INET", "9|0x3030", "IPPROTO_IP"),
            Self::Eprotonosupport => ("AF_INET", "SOCK_STREAM", "200"),
            Self::Eperm => ("AF_INET", "SOCK_RAW", "IPPROTO_ICMP"),
            Self::Emfile => ("AF_INET", "SOCK_DGRAM", "IPPROTO_IP"),
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

/// Calls `socket()` with `failure`'s arguments and checks it failed as intended.
pub fn provoke(failure: Failure) -> anyhow::Result<()> {
    let (family, sock_type, protocol) = failure.args();
    match socket_call(family, sock_type, protocol) {
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
