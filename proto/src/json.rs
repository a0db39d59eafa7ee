//! The JSON form of `tapper.v1.Event` (feature `json`): the serde helpers its generated
//! attributes name, RFC 3339 text for protobuf timestamps, and the JSON of the hub's other
//! answers (loss notices, tappers, stats) that `hub-client --json` and the hub's HTTP API print.

use chrono::{DateTime, SecondsFormat, Utc};
use prost_types::Timestamp;
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::{Value, json};

use crate::v1::{GetStatsResponse, LossNotice, TapperInfo, Warning};

/// RFC 3339 in UTC with nanoseconds: `2026-11-25T12:00:00.123456789Z`.
pub fn rfc3339(ts: &Timestamp) -> String {
    DateTime::<Utc>::from_timestamp(ts.seconds, ts.nanos.clamp(0, 999_999_999) as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Parses RFC 3339 (any offset) into a timestamp.
pub fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
    let time = DateTime::parse_from_rfc3339(text).map_err(|e| {
        format!("{text:?} is not an RFC 3339 time (e.g. 2026-01-02T03:04:05Z): {e}")
    })?;
    Ok(Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    })
}

/// RFC 3339 of an optional timestamp; empty when absent.
fn rfc3339_or_empty(ts: Option<&Timestamp>) -> String {
    ts.map(rfc3339).unwrap_or_default()
}

/// A warning as `{"warning": {...}}`, in its serde form.
pub fn warning_json(w: &Warning) -> Value {
    json!({ "warning": w })
}

/// A loss notice as `{"loss": {...}}`.
pub fn loss_json(l: &LossNotice) -> Value {
    let loss = l.loss.clone().unwrap_or_default();
    json!({"loss": {
        "node": l.node, "instance_id": l.instance_id, "hub_seq": l.hub_seq,
        "count": loss.count, "reason": loss.reason,
        "first_seq": loss.first_seq, "last_seq": loss.last_seq,
        "received": rfc3339_or_empty(l.received.as_ref()),
    }})
}

/// One tapper of a `ListTappers` answer.
pub fn tapper_json(t: &TapperInfo) -> Value {
    json!({
        "node": t.node, "instance_id": t.instance_id, "connected": t.connected, "peer": t.peer,
        "kernel_release": t.kernel_release, "probe_mode": t.probe_mode,
        "agent_version": t.agent_version,
        "first_seen": rfc3339_or_empty(t.first_seen.as_ref()),
        "last_seen": rfc3339_or_empty(t.last_seen.as_ref()),
        "events_received": t.events_received, "losses_reported": t.losses_reported,
        "loss_records": t.loss_records, "acked_seq": t.acked_seq,
        "counters": t.counters.as_ref().map(|c| json!({
            "calls": c.calls, "failures": c.failures, "drops": c.drops, "misses": c.misses,
            "per_errno": c.per_errno,
        })),
    })
}

/// A `GetStats` answer.
pub fn stats_json(r: &GetStatsResponse) -> Value {
    let rows: Vec<_> = r
        .rows
        .iter()
        .map(|row| {
            json!({
                "node": row.node, "errno": row.errno, "errno_name": row.errno_name,
                "family": row.family, "family_name": row.family_name, "comm": row.comm,
                "cgroup_id": row.cgroup_id, "namespace": row.namespace, "pod": row.pod,
                "container": row.container, "container_id": row.container_id,
                "count": row.count,
            })
        })
        .collect();
    json!({
        "total_events": r.total_events, "total_lost": r.total_lost, "per_node": r.per_node,
        "rows": rows, "since": rfc3339_or_empty(r.since.as_ref()),
        "until": rfc3339_or_empty(r.until.as_ref()),
    })
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A timestamp as an RFC 3339 string; an absent one as null.
pub(crate) mod timestamp {
    use super::*;

    pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(ts) => s.serialize_str(&rfc3339(ts)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| parse_rfc3339(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A string that proto3 leaves empty when unknown, as null.
pub(crate) mod empty_as_null {
    use super::*;

    pub fn serialize<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
        if text.is_empty() {
            s.serialize_none()
        } else {
            s.serialize_str(text)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::v1::{Event, Limits};

    /// A tapper's line as the event schema (docs/tapper.md) describes it.
    const TAPPER_LINE: &str = r#"{"ts":"2026-11-25T12:00:00.123456789Z","pid":10,"tid":11,"ppid":null,"uid":1,"gid":2,"comm":"x","exe":null,"cmdline":null,"cgroup_id":18446744073709551615,"family":9999,"family_name":"9999","type":1,"type_name":"SOCK_STREAM","protocol":null,"protocol_name":null,"errno":24,"errno_name":"EMFILE","message":"Too many open files","duration_ns":1500,"probe":"tracepoint","limits":{"nofile_soft":1024,"nofile_hard":null,"open_fds":1024},"source":"syscall","cgroup_path":null,"container":null,"pod":null,"quota":null,"suppressed":0,"cap_effective":0,"seccomp_mode":"disabled","from_kernel":["exe","limits.open_fds"],"diagnosis":{"cause":"rlimit_nofile","text":"open fds 1024 of RLIMIT_NOFILE 1024"}}"#;

    #[test]
    fn a_tapper_line_reads_field_by_field_and_writes_back_identically() {
        let event: Event = serde_json::from_str(TAPPER_LINE).unwrap();
        assert_eq!(event.ts.unwrap().nanos, 123_456_789);
        assert_eq!((event.pid, event.tid, event.ppid), (10, 11, None));
        assert_eq!(
            (event.family, event.r#type, event.protocol),
            (Some(9999), Some(1), None)
        );
        assert_eq!(event.cgroup_id, u64::MAX);
        assert_eq!((event.exe.as_str(), event.protocol_name.as_str()), ("", ""));
        assert_eq!(
            event.limits,
            Some(Limits {
                nofile_soft: Some(1024),
                nofile_hard: None,
                open_fds: Some(1024)
            })
        );
        assert_eq!(event.from_kernel, ["exe", "limits.open_fds"]);
        assert_eq!(event.diagnosis.as_ref().unwrap().cause, "rlimit_nofile");
        assert_eq!(serde_json::to_string(&event).unwrap(), TAPPER_LINE);
    }

    #[test]
    fn hub_fields_appear_only_when_set_and_round_trip() {
        let mut event: Event = serde_json::from_str(TAPPER_LINE).unwrap();
        event.limits = None;
        event.from_kernel.clear();
        let local = serde_json::to_value(&event).unwrap();
        for key in [
            "limits",
            "truncated",
            "from_kernel",
            "seq",
            "node",
            "instance_id",
            "hub_seq",
            "received",
        ] {
            assert!(local.get(key).is_none(), "{key} in {local}");
        }
        event.seq = 7;
        event.node = "web-1".into();
        event.instance_id = "abc".into();
        event.hub_seq = 99;
        event.received = Some(Timestamp {
            seconds: 1,
            nanos: 5,
        });
        event.truncated = vec!["cmdline".into()];
        let served = serde_json::to_value(&event).unwrap();
        assert_eq!(served["truncated"], json!(["cmdline"]));
        assert_eq!(served["received"], json!("1970-01-01T00:00:01.000000005Z"));
        assert_eq!(served["hub_seq"], json!(99));
        let back: Event = serde_json::from_value(served).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(serde_json::from_str::<Event>("{}").is_err());
        let mut bad_ts: Value = serde_json::from_str(TAPPER_LINE).unwrap();
        bad_ts["ts"] = json!("yesterday");
        let err = serde_json::from_value::<Event>(bad_ts).unwrap_err();
        assert!(err.to_string().contains("not an RFC 3339 time"), "{err}");
    }

    #[test]
    fn timestamps_print_and_parse() {
        let ts = parse_rfc3339("2026-11-25T13:00:00.5+01:00").unwrap();
        assert_eq!(rfc3339(&ts), "2026-11-25T12:00:00.500000000Z");
        assert!(parse_rfc3339("2026-11-25").is_err());
    }
}
