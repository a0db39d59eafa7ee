//! Builds the event the tapper prints and ships, `tapper.v1.Event` (the one schema of an
//! event), from a kernel record and what enrichment found: the failure's own fields here,
//! the process's in [`process_part`], encoded once per process.

mod process_part;

use tapper_common::{ProbeKind, SocketFailure, source};
use tapper_proto::{
    limits::truncate_event,
    timestamp_from_unix_nanos,
    v1::{Event, Limits, Quota},
};

use crate::{
    clock::WallClock,
    enrich::{ProcessInfo, merge},
};

pub use process_part::{ProcessParts, merged};

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

/// The event for one failed call without its process part (see [`process_part`]):
/// `merged` with the process's encoded part it is the whole event. Arguments and duration
/// the probe could not learn stay absent; `limits` merge `/proc` with the kernel's reading
/// in the failing task, and so do `exe` and `cmdline`: the kernel's stand here when
/// `/proc` had none, `/proc`'s are in the process part (see `enrich::merge`). Every string
/// is within the proto's limits; those cut say so in `truncated`. `quota` is the caller's
/// cgroup's (the identity's), absent when unknown.
pub fn build(
    raw: &SocketFailure,
    clock: &WallClock,
    process: &ProcessInfo,
    limits: Option<Limits>,
    quota: Option<Quota>,
) -> Event {
    let seen = raw.has_args != 0;
    let known = |v: i32| seen.then_some(v);
    let name = |decode: &dyn Fn() -> String| if seen { decode() } else { String::new() };
    // Only whether /proc had them matters here (an empty String allocates nothing, and an
    // empty string field is not encoded).
    let from_proc = |text: &Option<String>| text.as_ref().map(|_| String::new());
    let kernel = merge(
        &raw.context,
        from_proc(&process.exe),
        from_proc(&process.cmdline),
        limits,
    );
    let mut event = Event {
        ts: Some(timestamp_from_unix_nanos(clock.unix_ns(raw.end_ns) as i64)),
        pid: raw.tgid,
        tid: raw.tid,
        uid: raw.uid,
        gid: raw.gid,
        exe: kernel.exe.unwrap_or_default(),
        cmdline: kernel.cmdline.unwrap_or_default(),
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
        limits: kernel.limits,
        truncated: if kernel.cmdline_cut {
            vec!["cmdline".into()]
        } else {
            Vec::new()
        },
        source: source_name(raw.source).into(),
        quota,
        suppressed: raw.suppressed.into(),
        cap_effective: kernel.cap_effective,
        seccomp_mode: kernel.seccomp_mode,
        from_kernel: kernel.from_kernel,
        ..Default::default()
    };
    truncate_event(&mut event);
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use tapper_proto::{
        limits,
        v1::{Container, Pod},
    };

    /// The whole event, as the hub decodes it and local output shows it.
    fn whole(raw: &SocketFailure, process: &ProcessInfo, identity: &Identity) -> Event {
        let own = build(raw, &WallClock::sample(), process, None, identity.quota);
        merged(
            own,
            &process_part::encode_part(&raw.comm, process, identity),
        )
    }

    #[test]
    fn comm_stops_at_nul() {
        assert_eq!(comm_text(b"curl\0\0\0garbage\0"), "curl");
        assert_eq!(comm_text(b"sixteen-bytes-xx"), "sixteen-bytes-xx");
    }

    #[test]
    fn an_oversized_identity_is_fitted_to_what_the_hub_accepts() {
        // SAFETY: a #[repr(C)] record of integers and integer arrays: all zeros is valid.
        let raw: SocketFailure = unsafe { std::mem::zeroed() };
        let identity = Identity {
            cgroup_path: Some("/x".repeat(1 << 19)),
            container: Some(Container {
                name: Some("web\0".into()),
                image: Some("i".repeat(10_000)),
                ..Default::default()
            }),
            pod: Some(Pod {
                name: Some("web-7d9f".into()),
                labels: (0..100)
                    .map(|i| (format!("k{i:03}"), "v".repeat(1000)))
                    .collect(),
                ..Default::default()
            }),
            quota: None,
        };
        let event = whole(&raw, &ProcessInfo::default(), &identity);
        assert_eq!(
            event.truncated,
            ["cgroup_path", "container.image", "pod.labels"]
        );
        for (field, text, max) in limits::event_strings(&event) {
            assert_eq!(limits::check(text, max), Ok(()), "{field}");
        }
        assert_eq!(
            event.cgroup_path.as_ref().unwrap().len(),
            limits::CGROUP_PATH
        );
        let container = event.container.as_ref().unwrap();
        assert_eq!(container.name.as_deref(), Some("web\u{fffd}"));
        let pod = event.pod.as_ref().unwrap();
        assert_eq!(pod.name.as_deref(), Some("web-7d9f"), "a short field stays");
        assert_eq!(limits::check_label_keys(&pod.labels), Ok(()));
        assert_eq!(pod.labels.len(), limits::POD_LABELS);
        assert!(pod.labels.contains_key("k000") && !pod.labels.contains_key("k099"));
    }
}
