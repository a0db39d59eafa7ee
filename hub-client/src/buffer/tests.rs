//! Unit tests of the reporter buffer: seq accounting, bounds, batching, acks, rejections.

use super::*;

fn limits(events: usize, batch_events: usize) -> Limits {
    Limits {
        events,
        bytes: usize::MAX,
        batch_events,
        batch_bytes: usize::MAX,
    }
}

/// An event of exactly `len` encoded bytes once its seq (< 128) is set.
fn sized(len: usize) -> Event {
    let mut e = Event {
        seq: 1,
        cmdline: "x".repeat(len - 4),
        ..Default::default()
    };
    if wire::event_len(&e) > len {
        e.cmdline.pop(); // a two-byte length
    }
    assert_eq!(wire::event_len(&e), len);
    e
}

/// What [`Buffer::take_unsent`] gives, as the hub decodes it.
fn sent(b: &mut Buffer, max_msgs: usize) -> Vec<ReportRequest> {
    b.take_unsent(max_msgs)
        .iter()
        .map(Outgoing::decoded)
        .collect()
}

fn seqs(msgs: &[ReportRequest]) -> Vec<String> {
    msgs.iter()
        .map(|m| match &m.msg {
            Some(Msg::Events(b)) => {
                format!("E{:?}", b.events.iter().map(|e| e.seq).collect::<Vec<_>>())
            }
            Some(Msg::Loss(l)) => format!("L{}-{}x{}", l.first_seq, l.last_seq, l.count),
            Some(Msg::Counters(_)) => "C".into(),
            Some(Msg::Warning(w)) => format!("W{}", w.seq),
            _ => "?".into(),
        })
        .collect()
}

fn reasons(msgs: &[ReportRequest]) -> Vec<&str> {
    msgs.iter()
        .filter_map(|m| match &m.msg {
            Some(Msg::Loss(l)) => Some(l.reason.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn drops_become_one_exact_loss_range() {
    let mut b = Buffer::new(limits(3, 10));
    for _ in 0..6 {
        b.push_event(Event::default(), &[]);
    }
    assert_eq!(b.dropped(), 3);
    assert_eq!(seqs(&sent(&mut b, 100)), vec!["E[1, 2, 3]", "L4-6x3"]);
    // Sent but not acked: a later drop opens a new record.
    b.push_event(Event::default(), &[]);
    assert_eq!(seqs(&sent(&mut b, 100)), vec!["L7-7x1"]);
    b.ack(2);
    assert_eq!(b.buffered_events(), 1);
    b.rewind();
    b.limits.batch_events = 2;
    assert_eq!(seqs(&sent(&mut b, 100)), vec!["E[3]", "L4-6x3", "L7-7x1"]);
    b.ack(7);
    assert!(b.is_drained());
    assert_eq!(b.push_event(Event::default(), &[]), 8);
    assert_eq!(seqs(&sent(&mut b, 100)), vec!["E[8]"]);
}

#[test]
fn external_losses_take_a_seq_and_merge_while_unsent() {
    let mut b = Buffer::new(limits(10, 10));
    b.push_event(Event::default(), &[]);
    assert_eq!(b.push_loss(5, "kernel ring buffer full".into()), Some(2));
    assert_eq!(b.push_loss(2, "kernel ring buffer full".into()), Some(2));
    assert_eq!(b.push_loss(0, "x".into()), None);
    b.push_event(Event::default(), &[]);
    b.set_counters(Counters::default());
    assert_eq!(
        seqs(&sent(&mut b, 100)),
        vec!["C", "E[1]", "L2-2x7", "E[3]"]
    );
    assert_eq!(b.external_lost(), 7);
}

#[test]
fn loss_reasons_are_cut_to_the_hub_limit() {
    let mut b = Buffer::new(limits(10, 10));
    b.push_loss(1, "é".repeat(200));
    b.push_loss(1, String::new());
    let msgs = sent(&mut b, 100);
    let r = reasons(&msgs);
    assert_eq!((r[0].len(), r[1]), (256, "unknown"));
}

#[test]
fn batches_and_message_limit() {
    let mut b = Buffer::new(limits(100, 2));
    for _ in 0..5 {
        b.push_event(Event::default(), &[]);
    }
    assert_eq!(seqs(&sent(&mut b, 2)), vec!["E[1, 2]", "E[3, 4]"]);
    assert_eq!(seqs(&sent(&mut b, 2)), vec!["E[5]"]);
    assert!(sent(&mut b, 2).is_empty());
}

#[test]
fn the_byte_cap_drops_into_the_same_loss_records() {
    let mut b = Buffer::new(Limits {
        bytes: 250,
        ..limits(100, 100)
    });
    b.push_event(sized(100), &[]);
    b.push_event(sized(100), &[]);
    b.push_event(sized(100), &[]); // 300 > 250
    b.push_event(sized(10), &[]); // still fits: 210
    b.push_event(sized(100), &[]);
    assert_eq!((b.buffered_events(), b.buffered_bytes()), (3, 210));
    assert_eq!(b.dropped(), 2);
    assert_eq!(
        seqs(&sent(&mut b, 100)),
        vec!["E[1, 2]", "L3-3x1", "E[4]", "L5-5x1"]
    );
    b.ack(4);
    assert_eq!((b.buffered_events(), b.buffered_bytes()), (0, 0));
    b.push_event(sized(100), &[]);
    assert_eq!(b.buffered_bytes(), 100);
}

#[test]
fn batches_stay_within_the_byte_budget_and_a_big_event_goes_alone() {
    // Each 100-byte event takes 102 bytes in a batch (tag and length).
    let mut b = Buffer::new(Limits {
        batch_bytes: 250,
        ..limits(100, 100)
    });
    for len in [100, 100, 100, 1000, 100, 50, 100] {
        b.push_event(sized(len), &[]);
    }
    let msgs = sent(&mut b, 100);
    assert_eq!(
        seqs(&msgs),
        vec!["E[1, 2]", "E[3]", "E[4]", "E[5, 6]", "E[7]"]
    );
    for m in &msgs[..] {
        let Some(Msg::Events(batch)) = &m.msg else {
            unreachable!()
        };
        let len: usize = batch
            .events
            .iter()
            .map(|e| wire::in_batch(wire::event_len(e)))
            .sum();
        assert!(len <= 250 || batch.events.len() == 1, "{len}");
    }
}

#[test]
fn a_rejected_batch_becomes_one_loss_record_and_the_rest_goes_on() {
    let mut b = Buffer::new(limits(100, 2));
    for _ in 0..7 {
        b.push_event(Event::default(), &[]);
    }
    assert_eq!(
        seqs(&sent(&mut b, 100)),
        vec!["E[1, 2]", "E[3, 4]", "E[5, 6]", "E[7]"]
    );
    b.ack(2);
    let status = format!("events[1].cmdline: {}", "é".repeat(150));
    assert_eq!(
        b.reject(&status),
        Some(Rejection {
            first_seq: 3,
            last_seq: 4,
            events: 2
        })
    );
    assert_eq!((b.rejected(), b.buffered_events()), (2, 3));
    // The next connection: the hub acked 2 in its hello answer.
    assert_eq!(b.ack(2), None);
    b.rewind();
    let msgs = sent(&mut b, 100);
    assert_eq!(seqs(&msgs), vec!["L3-4x2", "E[5, 6]", "E[7]"]);
    let reason = reasons(&msgs)[0];
    assert!(reason.starts_with("rejected by the hub: events[1].cmdline: é"));
    // 200 bytes of the status would split an "é".
    assert_eq!(reason.len(), REASON_REJECTED.len() + 199);
    b.ack(7);
    assert!(b.is_drained());
    assert_eq!(b.buffered_bytes(), 0);
}

#[test]
fn a_rejection_blames_the_first_unacked_message_only() {
    let mut b = Buffer::new(limits(100, 10));
    b.push_event(Event::default(), &[]);
    b.push_loss(3, "kernel ring buffer full".into());
    b.push_event(Event::default(), &[]);
    assert!(b.reject("nothing sent yet").is_none());
    assert_eq!(seqs(&sent(&mut b, 100)), vec!["E[1]", "L2-2x3", "E[3]"]);
    b.ack(1);
    // A rejected loss record keeps its range; its count becomes the range's length.
    let r = b.reject("loss.count: too big").unwrap();
    assert_eq!((r.first_seq, r.last_seq, r.events), (2, 2, 0));
    b.rewind();
    let msgs = sent(&mut b, 100);
    assert_eq!(seqs(&msgs), vec!["L2-2x1", "E[3]"]);
    assert_eq!(
        reasons(&msgs),
        vec!["rejected by the hub: loss.count: too big"]
    );
    assert_eq!(b.rejected(), 0);
}

#[test]
fn acks_never_exceed_what_was_sent() {
    let mut b = Buffer::new(limits(100, 10));
    for _ in 0..5 {
        b.push_event(Event::default(), &[]);
    }
    // A hub that claims everything before anything was sent.
    assert_eq!(b.ack(u64::MAX), Some(0));
    assert_eq!((b.acked(), b.buffered_events()), (0, 5));
    b.rewind();
    b.limits.batch_events = 3;
    assert_eq!(seqs(&sent(&mut b, 1)), vec!["E[1, 2, 3]"]);
    assert_eq!(b.ack(5), Some(3));
    assert_eq!((b.acked(), b.buffered_events()), (3, 2));
    assert_eq!(b.ack(3), None);
    // What was sent on an earlier connection may be acked on a later one.
    b.rewind();
    assert_eq!(seqs(&sent(&mut b, 100)), vec!["E[4, 5]"]);
    b.rewind();
    assert_eq!(b.ack(5), None);
    assert!(b.is_drained());
}

#[test]
fn warnings_share_the_event_sequence_acks_and_losses() {
    let mut b = Buffer::new(limits(3, 10));
    b.push_event(Event::default(), &[]);
    let warning = Warning {
        kind: "nofile".into(),
        ..Default::default()
    };
    assert_eq!(b.push_warning(warning.clone()), 2);
    b.push_event(Event::default(), &[]);
    // Full: the next warning is dropped into a loss record, like an event.
    assert_eq!(b.push_warning(warning.clone()), 4);
    assert_eq!((b.dropped(), b.buffered_events()), (1, 3));
    assert_eq!(
        seqs(&sent(&mut b, 100)),
        vec!["E[1]", "W2", "E[3]", "L4-4x1"]
    );
    assert_eq!(b.in_flight(), 4);
    b.ack(2);
    assert_eq!(b.buffered_events(), 1, "the acked warning left the buffer");
    // A rejected warning becomes a loss record of its seq.
    b.rewind();
    b.ack(3);
    b.push_warning(warning);
    assert_eq!(seqs(&sent(&mut b, 100)), vec!["L4-4x1", "W5"]);
    b.ack(4);
    let rejected = b.reject("bad warning").unwrap();
    assert_eq!(
        (rejected.first_seq, rejected.last_seq, rejected.events),
        (5, 5, 1)
    );
    assert_eq!(seqs(&sent(&mut b, 100)), vec!["L5-5x1"]);
    b.ack(5);
    assert!(b.is_drained());
}

#[test]
fn an_event_with_an_encoded_tail_counts_and_decodes_as_one_event() {
    let tail = Event {
        comm: "curl".into(),
        cmdline: "curl -s http://x".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let own = Event {
        errno: 24,
        ..Default::default()
    };
    let whole = Event {
        seq: 1,
        comm: "curl".into(),
        cmdline: "curl -s http://x".into(),
        errno: 24,
        ..Default::default()
    };
    let mut b = Buffer::new(Limits {
        bytes: wire::event_len(&whole),
        ..limits(10, 10)
    });
    assert_eq!(b.push_event(own.clone(), &tail), 1);
    assert_eq!(b.buffered_bytes(), wire::event_len(&whole));
    assert_eq!(b.push_event(own, &tail), 2, "no room left in bytes");
    assert_eq!(b.dropped(), 1);
    let msgs = sent(&mut b, 10);
    assert_eq!(seqs(&msgs), ["E[1]", "L2-2x1"]);
    let Some(Msg::Events(batch)) = &msgs[0].msg else {
        unreachable!("the first message is the event");
    };
    assert_eq!(batch.events, [whole]);
}
