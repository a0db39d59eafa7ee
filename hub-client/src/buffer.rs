//! The reporter's bounded buffer: assigns seq numbers, keeps un-acked events for re-sending,
//! and turns what it must drop into loss records that cover exactly the dropped numbers.

use std::collections::VecDeque;

use tapper_proto::v1::{Counters, Event, EventBatch, Loss, ReportRequest, report_request::Msg};

/// Reason of the loss records the buffer itself creates.
pub const REASON_BUFFER_FULL: &str = "reporter buffer full";

// Events are the common case; boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Item {
    Event(Event),
    Loss(Loss),
}

impl Item {
    fn first_seq(&self) -> u64 {
        match self {
            Item::Event(e) => e.seq,
            Item::Loss(l) => l.first_seq,
        }
    }

    fn last_seq(&self) -> u64 {
        match self {
            Item::Event(e) => e.seq,
            Item::Loss(l) => l.last_seq,
        }
    }
}

/// Un-acked events and loss records in seq order.
#[derive(Debug)]
pub struct Buffer {
    capacity: usize,
    next_seq: u64,
    items: VecDeque<Item>,
    events: usize,
    sent_upto: u64,
    acked: u64,
    dropped: u64,
    external_lost: u64,
    counters: Option<Counters>,
    counters_unsent: bool,
}

impl Buffer {
    /// A buffer holding at most `capacity` un-acked events.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            next_seq: 1,
            items: VecDeque::new(),
            events: 0,
            sent_upto: 0,
            acked: 0,
            dropped: 0,
            external_lost: 0,
            counters: None,
            counters_unsent: false,
        }
    }

    /// The last seq assigned (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    pub fn acked(&self) -> u64 {
        self.acked
    }

    pub fn buffered_events(&self) -> usize {
        self.events
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn external_lost(&self) -> u64 {
        self.external_lost
    }

    /// The last item may still grow if the hub has not seen it yet.
    fn mergeable_loss(&mut self, reason: &str) -> Option<&mut Loss> {
        let sent_upto = self.sent_upto;
        match self.items.back_mut() {
            Some(Item::Loss(l))
                if l.reason == reason
                    && l.first_seq > sent_upto
                    && l.last_seq == self.next_seq - 1 =>
            {
                Some(l)
            }
            _ => None,
        }
    }

    /// Assigns the next seq to `event` and keeps it, or drops it into a loss record when the
    /// buffer is full. Returns the seq.
    pub fn push_event(&mut self, mut event: Event) -> u64 {
        let seq = self.next_seq;
        if self.events < self.capacity {
            event.seq = seq;
            self.items.push_back(Item::Event(event));
            self.events += 1;
        } else {
            self.dropped += 1;
            if let Some(l) = self.mergeable_loss(REASON_BUFFER_FULL) {
                l.last_seq = seq;
                l.count += 1;
            } else {
                self.items.push_back(Item::Loss(Loss {
                    count: 1,
                    reason: REASON_BUFFER_FULL.into(),
                    first_seq: seq,
                    last_seq: seq,
                }));
            }
        }
        self.next_seq += 1;
        seq
    }

    /// Records `count` failures lost elsewhere (e.g. in the kernel). The record takes one
    /// seq of its own, or joins the previous unsent record of the same reason.
    pub fn push_loss(&mut self, count: u64, reason: String) -> Option<u64> {
        if count == 0 {
            return None;
        }
        self.external_lost += count;
        if let Some(l) = self.mergeable_loss(&reason) {
            l.count += count;
            return Some(l.last_seq);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.items.push_back(Item::Loss(Loss {
            count,
            reason,
            first_seq: seq,
            last_seq: seq,
        }));
        Some(seq)
    }

    /// Keeps the latest counters; they are sent once per connection and on change.
    pub fn set_counters(&mut self, c: Counters) {
        self.counters = Some(c);
        self.counters_unsent = true;
    }

    /// The hub has everything up to `acked`: forget it.
    pub fn ack(&mut self, acked: u64) {
        self.acked = self.acked.max(acked);
        while let Some(front) = self.items.front() {
            if front.last_seq() > self.acked {
                break;
            }
            if let Some(Item::Event(_)) = self.items.pop_front() {
                self.events -= 1;
            }
        }
        self.sent_upto = self.sent_upto.max(self.acked);
    }

    /// A new connection: everything not acked is to be sent again.
    pub fn rewind(&mut self) {
        self.sent_upto = self.acked;
        self.counters_unsent = self.counters.is_some();
    }

    /// Messages not yet sent on this connection, in seq order: consecutive events in
    /// batches of at most `max_batch`, at most `max_msgs` messages.
    pub fn take_unsent(&mut self, max_batch: usize, max_msgs: usize) -> Vec<ReportRequest> {
        let mut out = Vec::new();
        if self.counters_unsent {
            self.counters_unsent = false;
            out.push(ReportRequest {
                msg: self.counters.clone().map(Msg::Counters),
            });
        }
        let start = self
            .items
            .partition_point(|i| i.first_seq() <= self.sent_upto);
        let mut batch: Vec<Event> = Vec::new();
        for item in self.items.range(start..) {
            if out.len() >= max_msgs {
                break;
            }
            match item {
                Item::Event(e) => {
                    batch.push(e.clone());
                    if batch.len() >= max_batch {
                        out.push(events_msg(std::mem::take(&mut batch)));
                    }
                }
                Item::Loss(l) => {
                    if !batch.is_empty() {
                        out.push(events_msg(std::mem::take(&mut batch)));
                        if out.len() >= max_msgs {
                            break;
                        }
                    }
                    out.push(ReportRequest {
                        msg: Some(Msg::Loss(l.clone())),
                    });
                }
            }
            self.sent_upto = item.last_seq();
        }
        if !batch.is_empty() {
            out.push(events_msg(batch));
        }
        out
    }

    /// Nothing left to deliver.
    #[cfg(test)]
    pub fn is_drained(&self) -> bool {
        self.items.is_empty()
    }
}

fn events_msg(events: Vec<Event>) -> ReportRequest {
    ReportRequest {
        msg: Some(Msg::Events(EventBatch { events })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(msgs: &[ReportRequest]) -> Vec<String> {
        msgs.iter()
            .map(|m| match &m.msg {
                Some(Msg::Events(b)) => {
                    format!("E{:?}", b.events.iter().map(|e| e.seq).collect::<Vec<_>>())
                }
                Some(Msg::Loss(l)) => format!("L{}-{}x{}", l.first_seq, l.last_seq, l.count),
                Some(Msg::Counters(_)) => "C".into(),
                _ => "?".into(),
            })
            .collect()
    }

    #[test]
    fn drops_become_one_exact_loss_range() {
        let mut b = Buffer::new(3);
        for _ in 0..6 {
            b.push_event(Event::default());
        }
        assert_eq!(b.dropped(), 3);
        assert_eq!(seqs(&b.take_unsent(10, 100)), vec!["E[1, 2, 3]", "L4-6x3"]);
        // Sent but not acked: a later drop opens a new record.
        b.push_event(Event::default());
        assert_eq!(seqs(&b.take_unsent(10, 100)), vec!["L7-7x1"]);
        b.ack(2);
        assert_eq!(b.buffered_events(), 1);
        b.rewind();
        assert_eq!(
            seqs(&b.take_unsent(2, 100)),
            vec!["E[3]", "L4-6x3", "L7-7x1"]
        );
        b.ack(7);
        assert!(b.is_drained());
        assert_eq!(b.push_event(Event::default()), 8);
        assert_eq!(seqs(&b.take_unsent(10, 100)), vec!["E[8]"]);
    }

    #[test]
    fn external_losses_take_a_seq_and_merge_while_unsent() {
        let mut b = Buffer::new(10);
        b.push_event(Event::default());
        assert_eq!(b.push_loss(5, "kernel ring buffer full".into()), Some(2));
        assert_eq!(b.push_loss(2, "kernel ring buffer full".into()), Some(2));
        assert_eq!(b.push_loss(0, "x".into()), None);
        b.push_event(Event::default());
        b.set_counters(Counters::default());
        assert_eq!(
            seqs(&b.take_unsent(10, 100)),
            vec!["C", "E[1]", "L2-2x7", "E[3]"]
        );
        assert_eq!(b.external_lost(), 7);
    }

    #[test]
    fn batches_and_message_limit() {
        let mut b = Buffer::new(100);
        for _ in 0..5 {
            b.push_event(Event::default());
        }
        assert_eq!(seqs(&b.take_unsent(2, 2)), vec!["E[1, 2]", "E[3, 4]"]);
        assert_eq!(seqs(&b.take_unsent(2, 2)), vec!["E[5]"]);
        assert!(b.take_unsent(2, 2).is_empty());
    }
}
