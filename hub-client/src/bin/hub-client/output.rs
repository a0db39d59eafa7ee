//! Renders hub messages for people (aligned tables) and programs (JSON lines in the
//! tapper's schema, plus the hub's fields).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tapper_proto::{
    Timestamp,
    v1::{Event, LossNotice, TapperInfo},
};

/// RFC 3339 with nanoseconds, UTC.
pub fn rfc3339(ts: Option<&Timestamp>) -> String {
    ts.and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Nanos, true))
        .unwrap_or_default()
}

/// Parses RFC 3339 into a protobuf timestamp.
pub fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
    let d = DateTime::parse_from_rfc3339(text).map_err(|e| {
        format!("{text:?} is not an RFC 3339 time (e.g. 2026-01-02T03:04:05Z): {e}")
    })?;
    Ok(Timestamp {
        seconds: d.timestamp(),
        nanos: d.timestamp_subsec_nanos() as i32,
    })
}

fn none_if_empty(s: &str) -> Value {
    if s.is_empty() { Value::Null } else { s.into() }
}

/// One event as a JSON object: the tapper's keys plus node, instance_id, seq, hub_seq.
pub fn event_json(e: &Event) -> Value {
    json!({
        "ts": rfc3339(e.ts.as_ref()),
        "node": e.node,
        "instance_id": e.instance_id,
        "seq": e.seq,
        "hub_seq": e.hub_seq,
        "pid": e.pid,
        "tid": e.tid,
        "ppid": e.ppid,
        "uid": e.uid,
        "gid": e.gid,
        "comm": e.comm,
        "exe": none_if_empty(&e.exe),
        "cmdline": none_if_empty(&e.cmdline),
        "cgroup_id": e.cgroup_id,
        "family": e.family,
        "family_name": none_if_empty(&e.family_name),
        "type": e.r#type,
        "type_name": none_if_empty(&e.type_name),
        "protocol": e.protocol,
        "protocol_name": none_if_empty(&e.protocol_name),
        "errno": e.errno,
        "errno_name": e.errno_name,
        "message": e.message,
        "duration_ns": e.duration_ns,
        "probe": e.probe,
    })
}

/// A loss notice as `{"loss": {...}}`.
pub fn loss_json(l: &LossNotice) -> Value {
    let loss = l.loss.clone().unwrap_or_default();
    json!({"loss": {
        "node": l.node, "instance_id": l.instance_id, "hub_seq": l.hub_seq,
        "count": loss.count, "reason": loss.reason,
        "first_seq": loss.first_seq, "last_seq": loss.last_seq,
        "received": rfc3339(l.received.as_ref()),
    }})
}

/// One tapper as JSON.
pub fn tapper_json(t: &TapperInfo) -> Value {
    json!({
        "node": t.node, "instance_id": t.instance_id, "connected": t.connected, "peer": t.peer,
        "kernel_release": t.kernel_release, "probe_mode": t.probe_mode,
        "agent_version": t.agent_version,
        "first_seen": rfc3339(t.first_seen.as_ref()), "last_seen": rfc3339(t.last_seen.as_ref()),
        "events_received": t.events_received, "losses_reported": t.losses_reported,
        "loss_records": t.loss_records, "acked_seq": t.acked_seq,
        "counters": t.counters.as_ref().map(|c| json!({
            "calls": c.calls, "failures": c.failures, "drops": c.drops, "misses": c.misses,
            "per_errno": c.per_errno,
        })),
    })
}

/// Prints rows as a left-aligned table with a header.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}
