//! The synthetic events the load loop and the attack part send: a failed socket() of a
//! realistic worker process, stamped now.

use hub_client::proto::{Timestamp, timestamp_from_unix_nanos, v1::Event};

/// A failed `socket(family, SOCK_STREAM, 0)` with `errno` of `/usr/bin/worker --serve`
/// (pid = tid = `pid`, uid and gid 1000) seen by the tracepoint probe, stamped now.
pub fn worker(pid: u32, comm: String, cgroup_id: u64, errno: i32, family: (i32, &str)) -> Event {
    Event {
        ts: Some(now()),
        pid,
        tid: pid,
        uid: 1000,
        gid: 1000,
        comm,
        exe: "/usr/bin/worker".into(),
        cmdline: "/usr/bin/worker --serve".into(),
        cgroup_id,
        family: Some(family.0),
        family_name: family.1.into(),
        r#type: Some(libc::SOCK_STREAM),
        type_name: "SOCK_STREAM".into(),
        protocol: Some(0),
        protocol_name: "IPPROTO_IP".into(),
        errno,
        errno_name: tapper_names::errno_name(errno),
        message: tapper_names::errno_message(errno).into(),
        duration_ns: Some(1500),
        probe: "tracepoint".into(),
        ..Default::default()
    }
}

fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    timestamp_from_unix_nanos(d.as_nanos() as i64)
}
