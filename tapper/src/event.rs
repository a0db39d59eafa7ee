//! Builds the event the tapper prints and ships, `tapper.v1.Event` (the one schema of an
//! event), from a kernel record and what enrichment found.

use tapper_common::{ProbeKind, SocketFailure, source};
use tapper_proto::{
    limits::truncate_event,
    timestamp_from_unix_nanos,
    v1::{Event, Limits},
};

use crate::{clock::WallClock, enrich::ProcessInfo, identity::Identity};

pub fn probe_name(raw: u8) -> &'static str {
    match ProbeKind::from_raw(raw) {
        Some(ProbeKind::Kprobe) => "kprobe",
        Some(ProbeKind::Tracepoint) => "tracepoint",
        Some(ProbeKind::ExitOnly) => "exit-only",
        Some(ProbeKind::Fexit) => "fexit",
        Some(ProbeKind::IoUring) => "io_uring",
        Some(ProbeKind::RateLimit) => "rate-limit",
        None => "unknown",
    }
}

fn source_name(raw: u8) -> &'static str {
    match raw {
        source::IO_URING => "io_uring",
        _ => "syscall",
    }
}

/// The command name up to its NUL terminator.
pub fn comm_text(comm: &[u8]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end]).into_owned()
}

/// The event for one failed call. Arguments and duration the probe could not learn stay
/// absent; a process that exited leaves `exe`/`cmdline` empty. Every
/// string is within the proto's limits; those cut say so in `truncated`. Identity parts
/// that are unknown stay absent.
pub fn build(
    raw: &SocketFailure,
    clock: &WallClock,
    process: ProcessInfo,
    limits: Option<Limits>,
    identity: Identity,
) -> Event {
    let seen = raw.has_args != 0;
    let known = |v: i32| seen.then_some(v);
    let name = |decode: &dyn Fn() -> String| if seen { decode() } else { String::new() };
    let mut event = Event {
        ts: Some(timestamp_from_unix_nanos(clock.unix_ns(raw.end_ns) as i64)),
        pid: raw.tgid,
        tid: raw.tid,
        ppid: process.ppid,
        uid: raw.uid,
        gid: raw.gid,
        comm: comm_text(&raw.comm),
        exe: process.exe.unwrap_or_default(),
        cmdline: process.cmdline.unwrap_or_default(),
        cgroup_id: raw.cgroup_id,
        family: known(raw.family),
        family_name: name(&|| tapper_names::family_name(raw.family)),
        r#type: known(raw.sock_type),
        type_name: name(&|| tapper_names::type_name(raw.sock_type)),
        protocol: known(raw.protocol),
        protocol_name: name(&|| tapper_names::protocol_name(raw.family, raw.protocol)),
        errno: raw.errno,
        errno_name: tapper_names::errno_name(raw.errno),
        message: tapper_names::errno_message(raw.errno).into(),
        duration_ns: (raw.has_duration != 0).then_some(raw.duration_ns),
        probe: probe_name(raw.probe).into(),
        limits,
        truncated: process.truncated,
        source: source_name(raw.source).into(),
        cgroup_path: identity.cgroup_path,
        container: identity.container,
        pod: identity.pod,
        quota: identity.quota,
        suppressed: raw.suppressed.into(),
        ..Default::default()
    };
    truncate_event(&mut event);
    event
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
