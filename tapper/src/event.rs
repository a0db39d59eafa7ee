//! The enriched failure event: what the tapper prints and ships. Field names are the
//! JSON schema documented in the README.

use serde::Serialize;
use tapper_common::{ProbeKind, SocketFailure};

use crate::{
    clock::{WallClock, rfc3339_ns},
    decode,
    enrich::{Limits, ProcessInfo},
};

#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// Wall-clock time of the failing return, RFC 3339 with nanoseconds.
    pub ts: String,
    /// The same instant in Unix nanoseconds, for the wire format.
    #[serde(skip)]
    pub unix_ns: i128,
    pub pid: u32,
    pub tid: u32,
    pub ppid: Option<u32>,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
    pub exe: Option<String>,
    pub cmdline: Option<String>,
    pub cgroup_id: u64,
    /// Raw arguments; `null` when the entry probe did not see the call.
    pub family: Option<i32>,
    pub family_name: Option<String>,
    #[serde(rename = "type")]
    pub sock_type: Option<i32>,
    pub type_name: Option<String>,
    pub protocol: Option<i32>,
    pub protocol_name: Option<String>,
    pub errno: i32,
    pub errno_name: String,
    pub message: &'static str,
    pub duration_ns: Option<u64>,
    pub probe: &'static str,
    /// `RLIMIT_NOFILE` and open descriptors, for fd-exhaustion errors only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

pub fn probe_name(raw: u8) -> &'static str {
    match ProbeKind::from_raw(raw) {
        Some(ProbeKind::Kprobe) => "kprobe",
        Some(ProbeKind::Tracepoint) => "tracepoint",
        None => "unknown",
    }
}

/// The command name up to its NUL terminator.
pub fn comm_text(comm: &[u8]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end]).into_owned()
}

impl Event {
    pub fn new(
        raw: &SocketFailure,
        clock: &WallClock,
        process: ProcessInfo,
        limits: Option<Limits>,
    ) -> Self {
        let unix_ns = clock.unix_ns(raw.end_ns);
        let seen = raw.entry_seen != 0;
        let known = |v: i32| seen.then_some(v);
        Self {
            ts: rfc3339_ns(unix_ns),
            unix_ns,
            pid: raw.tgid,
            tid: raw.tid,
            ppid: process.ppid,
            uid: raw.uid,
            gid: raw.gid,
            comm: comm_text(&raw.comm),
            exe: process.exe,
            cmdline: process.cmdline,
            cgroup_id: raw.cgroup_id,
            family: known(raw.family),
            family_name: seen.then(|| decode::family_name(raw.family)),
            sock_type: known(raw.sock_type),
            type_name: seen.then(|| decode::type_name(raw.sock_type)),
            protocol: known(raw.protocol),
            protocol_name: seen.then(|| decode::protocol_name(raw.family, raw.protocol)),
            errno: raw.errno,
            errno_name: decode::errno_name(raw.errno),
            message: decode::errno_message(raw.errno),
            duration_ns: seen.then_some(raw.duration_ns),
            probe: probe_name(raw.probe),
            limits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_stops_at_nul() {
        assert_eq!(comm_text(b"curl\0\0\0garbage\0"), "curl");
        assert_eq!(comm_text(b"sixteen-bytes-xx"), "sixteen-bytes-xx");
    }
}
