//! Plain `#[repr(C)]` records shared by the eBPF programs and the user-space tapper.
//! Layouts use explicit padding and no `bool`, so both sides agree byte for byte.
#![no_std]

/// Length of the kernel's task command name (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;

/// Which probe pair caught a failure.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    Kprobe = 1,
    Tracepoint = 2,
}

impl ProbeKind {
    pub fn from_raw(raw: u8) -> Option<Self> {
        match raw {
            1 => Some(Self::Kprobe),
            2 => Some(Self::Tracepoint),
            _ => None,
        }
    }
}

/// Saved by the entry probe, keyed by `pid_tgid`, and consumed by the return probe.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PendingCall {
    pub family: i32,
    pub sock_type: i32,
    pub protocol: i32,
    pub _pad: u32,
    pub start_ns: u64,
}

/// One failed `socket()` call, as the kernel emits it into the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SocketFailure {
    /// `bpf_ktime_get_ns()` at return (CLOCK_MONOTONIC).
    pub end_ns: u64,
    /// Return time minus entry time.
    pub duration_ns: u64,
    pub cgroup_id: u64,
    pub tgid: u32,
    pub tid: u32,
    pub uid: u32,
    pub gid: u32,
    pub family: i32,
    /// The raw `type` argument, flags (`SOCK_CLOEXEC`, `SOCK_NONBLOCK`) included.
    pub sock_type: i32,
    pub protocol: i32,
    /// Positive errno (the call returned `-errno`).
    pub errno: i32,
    pub comm: [u8; COMM_LEN],
    /// A [`ProbeKind`] value.
    pub probe: u8,
    /// 1 when the entry probe saw this call; 0 when the arguments and duration are unknown.
    pub entry_seen: u8,
    pub _pad: [u8; 6],
}

/// Indices into the per-CPU `COUNTERS` array.
pub mod counter {
    /// `socket()` entries seen.
    pub const CALLS: u32 = 0;
    /// Returns with a negative value.
    pub const FAILURES: u32 = 1;
    /// Failures whose event could not be reserved in the ring buffer.
    pub const DROPS: u32 = 2;
    /// Failed returns with no saved entry (the probes attached mid-call, or the LRU evicted
    /// it): their events carry no arguments.
    pub const MISSES: u32 = 3;
    pub const COUNT: u32 = 4;
}

/// Slots in the per-CPU `ERRNO_COUNTS` array; errno values at or above the last slot
/// are counted in it.
pub const ERRNO_SLOTS: u32 = 256;

/// Byte offsets of the arguments in the syscall tracepoint records, read by user space
/// from tracefs and written into the eBPF program's `TRACEPOINT_LAYOUT` global.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TracepointLayout {
    pub enter_family: u32,
    pub enter_type: u32,
    pub enter_protocol: u32,
    pub exit_ret: u32,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all are `#[repr(C)]` with explicit padding and only integer fields.
    unsafe impl aya::Pod for super::SocketFailure {}
    unsafe impl aya::Pod for super::PendingCall {}
    unsafe impl aya::Pod for super::TracepointLayout {}
}
