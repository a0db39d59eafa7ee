//! Encoded (protobuf) sizes of events, for the reporter's byte budgets. The library does not
//! depend on prost itself, so the sizes follow the wire rules here; a test checks them
//! against prost's `encoded_len`.

use tapper_proto::{Timestamp, v1::Event};

/// Bytes of `v` as a varint.
fn varint(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn key(tag: u32) -> usize {
    varint(u64::from(tag << 3))
}

/// An unsigned or int64 scalar (proto3: absent when zero).
fn scalar(tag: u32, v: u64) -> usize {
    if v == 0 { 0 } else { key(tag) + varint(v) }
}

/// An int32 scalar: negative values are sign-extended to ten bytes.
fn int32(tag: u32, v: i32) -> usize {
    scalar(tag, i64::from(v) as u64)
}

/// An `optional` scalar: present whenever set, even when zero.
fn optional(tag: u32, v: Option<u64>) -> usize {
    v.map_or(0, |v| key(tag) + varint(v))
}

fn optional_int32(tag: u32, v: Option<i32>) -> usize {
    optional(tag, v.map(|v| i64::from(v) as u64))
}

/// A length-delimited field of `len` bytes.
fn delimited(tag: u32, len: usize) -> usize {
    key(tag) + varint(len as u64) + len
}

fn string(tag: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        delimited(tag, s.len())
    }
}

fn timestamp(tag: u32, ts: &Option<Timestamp>) -> usize {
    ts.as_ref().map_or(0, |t| {
        delimited(tag, scalar(1, t.seconds as u64) + int32(2, t.nanos))
    })
}

/// `prost::Message::encoded_len` of `e`.
pub fn event_len(e: &Event) -> usize {
    // No `..`: a new field in the schema must be counted here before this compiles.
    let Event {
        seq,
        ts,
        pid,
        tid,
        ppid,
        uid,
        gid,
        comm,
        exe,
        cmdline,
        cgroup_id,
        family,
        family_name,
        r#type,
        type_name,
        protocol,
        protocol_name,
        errno,
        errno_name,
        message,
        duration_ns,
        probe,
        node,
        instance_id,
        hub_seq,
        received,
    } = e;
    scalar(1, *seq)
        + timestamp(2, ts)
        + scalar(3, u64::from(*pid))
        + scalar(4, u64::from(*tid))
        + optional(5, ppid.map(u64::from))
        + scalar(6, u64::from(*uid))
        + scalar(7, u64::from(*gid))
        + string(8, comm)
        + string(9, exe)
        + string(10, cmdline)
        + scalar(11, *cgroup_id)
        + optional_int32(12, *family)
        + string(13, family_name)
        + optional_int32(14, *r#type)
        + string(15, type_name)
        + optional_int32(16, *protocol)
        + string(17, protocol_name)
        + int32(18, *errno)
        + string(19, errno_name)
        + string(20, message)
        + optional(21, *duration_ns)
        + string(22, probe)
        + string(30, node)
        + string(31, instance_id)
        + scalar(32, *hub_seq)
        + timestamp(33, received)
}

/// What an event of `len` encoded bytes adds to an `EventBatch` (its tag and length too).
pub fn in_batch(len: usize) -> usize {
    delimited(1, len)
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use tapper_proto::v1::EventBatch;

    use super::*;

    fn full(cmdline_len: usize, sign: i32) -> Event {
        Event {
            seq: u64::MAX,
            ts: Some(Timestamp {
                seconds: -5,
                nanos: 999_999_999,
            }),
            pid: 4_000_000,
            tid: 1,
            ppid: Some(0),
            uid: 65_534,
            gid: u32::MAX,
            comm: "nginx".into(),
            exe: "/usr/sbin/nginx".into(),
            cmdline: "x".repeat(cmdline_len),
            cgroup_id: 1 << 40,
            family: Some(2 * sign),
            family_name: "AF_INET".into(),
            r#type: Some(0),
            type_name: "SOCK_STREAM|SOCK_CLOEXEC".into(),
            protocol: Some(-1),
            protocol_name: "IPPROTO_TCP".into(),
            errno: 24 * sign,
            errno_name: "EMFILE".into(),
            message: "Too many open files".into(),
            duration_ns: Some(127),
            probe: "tracepoint".into(),
            node: "node-a".into(),
            instance_id: "f".repeat(32),
            hub_seq: 300,
            received: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
        }
    }

    #[test]
    fn matches_prost() {
        let events = [
            Event::default(),
            full(0, 1),
            full(127, -1),
            full(128, 1),
            full(200 * 1024, 1),
        ];
        for e in &events {
            assert_eq!(event_len(e), e.encoded_len(), "{:?}", e.cmdline.len());
        }
        let batch = EventBatch {
            events: events.to_vec(),
        };
        let sum: usize = events.iter().map(|e| in_batch(event_len(e))).sum();
        assert_eq!(sum, batch.encoded_len());
    }

    #[test]
    fn varint_lengths() {
        assert_eq!(
            [0, 127, 128, 16_383, 16_384, u64::MAX].map(varint),
            [1, 1, 2, 2, 3, 10]
        );
    }
}
