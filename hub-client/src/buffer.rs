//! The reporter's bounded buffer: assigns seq numbers, keeps un-acked events and warnings
//! (bounded in count and bytes, a warning counting as an event) for re-sending, and turns what it must drop into loss records that cover
//! exactly the dropped numbers. Each event is encoded once, when it is kept; messages and
//! re-sends are built from those bytes.

use std::collections::VecDeque;

use prost::{
    Message,
    bytes::{Bytes, BytesMut},
};
use tapper_proto::v1::{Counters, Event, Loss, ReportRequest, Warning, report_request::Msg};

use crate::wire::{self, Outgoing};

/// Reason of the loss records the buffer itself creates.
pub const REASON_BUFFER_FULL: &str = "reporter buffer full";
/// Start of the reason of a loss record that replaces what the hub rejected.
pub const REASON_REJECTED: &str = "rejected by the hub: ";
/// Bytes the events' encoding arena allocates at a time (events share its allocations).
const ARENA_CHUNK: usize = 64 * 1024;
/// Most bytes of the hub's status message quoted in a rejection reason.
const MAX_STATUS_QUOTE: usize = 200;
/// Longest loss reason the hub accepts.
const MAX_REASON: usize = 256;

/// How much the buffer holds and how it cuts batches.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most un-acked events.
    pub events: usize,
    /// Most encoded bytes of un-acked events.
    pub bytes: usize,
    /// Most events per EventBatch.
    pub batch_events: usize,
    /// Most encoded bytes per EventBatch, unless a single event is bigger.
    pub batch_bytes: usize,
}

#[derive(Debug)]
enum Item {
    /// An event's seq and its encoding.
    Event(u64, Bytes),
    /// A warning and its encoded size; it goes alone, in its own message.
    Warning(Box<Warning>, usize),
    Loss(Loss),
}

impl Item {
    fn first_seq(&self) -> u64 {
        match self {
            Item::Event(seq, _) => *seq,
            Item::Warning(w, _) => w.seq,
            Item::Loss(l) => l.first_seq,
        }
    }

    fn last_seq(&self) -> u64 {
        match self {
            Item::Event(seq, _) => *seq,
            Item::Warning(w, _) => w.seq,
            Item::Loss(l) => l.last_seq,
        }
    }

    /// Encoded bytes an event or warning holds in the buffer (loss records hold none).
    fn bytes(&self) -> Option<usize> {
        match self {
            Item::Event(_, bytes) => Some(bytes.len()),
            Item::Warning(_, bytes) => Some(*bytes),
            Item::Loss(_) => None,
        }
    }
}

/// What [`Buffer::reject`] turned into a loss record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub first_seq: u64,
    pub last_seq: u64,
    /// Events replaced; 0 when the rejected message was itself a loss record (now rewritten
    /// with the rejection as its reason).
    pub events: u64,
}

/// Un-acked events and loss records in seq order.
#[derive(Debug)]
pub struct Buffer {
    limits: Limits,
    next_seq: u64,
    items: VecDeque<Item>,
    events: usize,
    bytes: usize,
    /// Last seq sent on the current connection.
    sent_upto: u64,
    /// Last seq ever sent: no ack may claim more.
    sent_max: u64,
    /// Seq ranges of the messages sent on this connection and not acked yet, in order.
    in_flight: VecDeque<(u64, u64)>,
    acked: u64,
    dropped: u64,
    rejected: u64,
    external_lost: u64,
    counters: Option<Counters>,
    counters_unsent: bool,
    /// Where kept events are encoded; each takes its bytes off the front.
    arena: BytesMut,
}

impl Buffer {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            next_seq: 1,
            items: VecDeque::new(),
            events: 0,
            bytes: 0,
            sent_upto: 0,
            sent_max: 0,
            in_flight: VecDeque::new(),
            acked: 0,
            dropped: 0,
            rejected: 0,
            external_lost: 0,
            counters: None,
            counters_unsent: false,
            arena: BytesMut::new(),
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

    /// Encoded bytes of the buffered events.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Events the hub rejected (each inside a loss record now).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    pub fn external_lost(&self) -> u64 {
        self.external_lost
    }

    /// Events and loss records not yet sent on this connection.
    pub fn unsent_items(&self) -> usize {
        self.items.len()
            - self
                .items
                .partition_point(|i| i.first_seq() <= self.sent_upto)
    }

    /// Messages sent on this connection and not acknowledged yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// New counters wait to be sent.
    pub fn counters_unsent(&self) -> bool {
        self.counters_unsent
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
    /// buffer is full (in events or bytes). Returns the seq. The event is sent as its
    /// encoding followed by `tail`, more of its fields already encoded (e.g. those it shares
    /// with other events; empty for none): the hub decodes the two as one event.
    pub fn push_event(&mut self, mut event: Event, tail: &[u8]) -> u64 {
        event.seq = self.next_seq;
        let bytes = wire::event_len(&event) + tail.len();
        if !self.has_room(bytes) {
            return self.drop_one();
        }
        if self.arena.capacity() < bytes {
            self.arena.reserve(bytes.max(ARENA_CHUNK));
        }
        // The arena has room for `bytes`: no second length pass (as `encode` makes).
        event.encode_raw(&mut self.arena);
        self.arena.extend_from_slice(tail);
        debug_assert_eq!(self.arena.len(), bytes);
        let encoded = self.arena.split().freeze();
        self.keep(Item::Event(event.seq, encoded), bytes)
    }

    /// As [`push_event`](Self::push_event), for a warning: it takes the next seq of the same
    /// sequence, counts as an event against the limits, and is dropped the same way.
    pub fn push_warning(&mut self, mut warning: Warning) -> u64 {
        warning.seq = self.next_seq;
        let bytes = warning.encoded_len();
        if !self.has_room(bytes) {
            return self.drop_one();
        }
        self.keep(Item::Warning(Box::new(warning), bytes), bytes)
    }

    /// One more event (or warning) of `bytes` encoded bytes fits within the limits.
    fn has_room(&self, bytes: usize) -> bool {
        self.events < self.limits.events && self.bytes.saturating_add(bytes) <= self.limits.bytes
    }

    /// Keeps `item` (of `bytes` encoded bytes, numbered with the next seq). Returns the seq.
    fn keep(&mut self, item: Item, bytes: usize) -> u64 {
        self.items.push_back(item);
        self.events += 1;
        self.bytes += bytes;
        self.next_seq += 1;
        self.next_seq - 1
    }

    /// Drops the next seq into a loss record (the buffer is full). Returns the seq.
    fn drop_one(&mut self) -> u64 {
        let seq = self.next_seq;
        self.dropped += 1;
        if let Some(l) = self.mergeable_loss(REASON_BUFFER_FULL) {
            l.last_seq = seq;
            l.count += 1;
        } else {
            self.items
                .push_back(Item::Loss(range_loss(seq, seq, REASON_BUFFER_FULL.into())));
        }
        self.next_seq += 1;
        seq
    }

    /// Records `count` failures lost elsewhere (e.g. in the kernel). The record takes one
    /// seq of its own, or joins the previous unsent record of the same reason. The reason is
    /// cut to the hub's limit.
    pub fn push_loss(&mut self, count: u64, reason: String) -> Option<u64> {
        if count == 0 {
            return None;
        }
        let reason = match truncate(&reason, MAX_REASON) {
            "" => "unknown".to_owned(),
            r if r.len() < reason.len() => r.to_owned(),
            _ => reason,
        };
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

    /// The hub has everything up to `claimed`: forget it. A claim above the last seq ever
    /// sent is clamped to it; then the limit used is returned.
    pub fn ack(&mut self, claimed: u64) -> Option<u64> {
        let clamped = (claimed > self.sent_max).then_some(self.sent_max);
        self.acked = self.acked.max(claimed.min(self.sent_max));
        while let Some(front) = self.items.front() {
            if front.last_seq() > self.acked {
                break;
            }
            if let Some(bytes) = self.items.pop_front().and_then(|i| i.bytes()) {
                self.events -= 1;
                self.bytes -= bytes;
            }
        }
        while self
            .in_flight
            .front()
            .is_some_and(|&(_, l)| l <= self.acked)
        {
            self.in_flight.pop_front();
        }
        self.sent_upto = self.sent_upto.max(self.acked);
        clamped
    }

    /// A new connection: everything not acked is to be sent again.
    pub fn rewind(&mut self) {
        self.sent_upto = self.acked;
        self.in_flight.clear();
        self.counters_unsent = self.counters.is_some();
    }

    /// The hub ended the stream refusing a message: the first un-acked one sent on this
    /// connection, as it handles messages in order. Its events become one loss record whose
    /// reason quotes `status` (a rejected loss record is rewritten the same way, its count
    /// cut to its range), and the stream is over ([`rewind`](Self::rewind)). `None` when
    /// nothing was in flight.
    pub fn reject(&mut self, status: &str) -> Option<Rejection> {
        let (first, last) = self.in_flight.front().copied()?;
        self.rewind();
        let reason = format!("{REASON_REJECTED}{}", truncate(status, MAX_STATUS_QUOTE));
        let start = self.items.partition_point(|i| i.first_seq() < first);
        let end = self.items.partition_point(|i| i.last_seq() <= last);
        let mut events = 0;
        for item in self.items.drain(start..end) {
            if let Some(bytes) = item.bytes() {
                events += 1;
                self.events -= 1;
                self.bytes -= bytes;
            }
        }
        self.rejected += events;
        self.items
            .insert(start, Item::Loss(range_loss(first, last, reason)));
        Some(Rejection {
            first_seq: first,
            last_seq: last,
            events,
        })
    }

    /// Messages not yet sent on this connection, in seq order, at most `max_msgs`:
    /// consecutive events in batches within the event and byte limits (an event bigger than
    /// the byte limit goes alone).
    pub fn take_unsent(&mut self, max_msgs: usize) -> Vec<Outgoing> {
        let mut out = Vec::new();
        if self.counters_unsent {
            self.counters_unsent = false;
            out.push(Outgoing::Request(Box::new(ReportRequest {
                msg: self.counters.clone().map(Msg::Counters),
            })));
        }
        let start = self
            .items
            .partition_point(|i| i.first_seq() <= self.sent_upto);
        let mut batch = Batch::default();
        let mut batch_bytes = 0;
        for item in self.items.range(start..) {
            if out.len() >= max_msgs {
                break;
            }
            match item {
                Item::Event(seq, encoded) => {
                    let bytes = wire::in_batch(encoded.len());
                    if !batch.is_empty() && batch_bytes + bytes > self.limits.batch_bytes {
                        out.push(batch.take());
                        if out.len() >= max_msgs {
                            break;
                        }
                    }
                    if batch.is_empty() {
                        batch_bytes = 0;
                    }
                    batch.push(*seq, encoded.clone());
                    batch_bytes += bytes;
                    if batch.len() >= self.limits.batch_events {
                        out.push(batch.take());
                    }
                }
                Item::Warning(..) | Item::Loss(_) => {
                    if !batch.is_empty() {
                        out.push(batch.take());
                        if out.len() >= max_msgs {
                            break;
                        }
                    }
                    let msg = match item {
                        Item::Warning(w, _) => Msg::Warning(w.as_ref().clone()),
                        Item::Loss(l) => Msg::Loss(l.clone()),
                        Item::Event(..) => unreachable!("matched above"),
                    };
                    out.push(Outgoing::Request(Box::new(ReportRequest {
                        msg: Some(msg),
                    })));
                }
            }
            self.sent_upto = item.last_seq();
        }
        if !batch.is_empty() {
            out.push(batch.take());
        }
        self.sent_max = self.sent_max.max(self.sent_upto);
        self.in_flight
            .extend(out.iter().filter_map(Outgoing::seq_range));
        out
    }

    /// Nothing left to deliver.
    #[cfg(test)]
    pub fn is_drained(&self) -> bool {
        self.items.is_empty()
    }
}

/// A loss record for the dropped seq numbers `first..=last`.
fn range_loss(first: u64, last: u64, reason: String) -> Loss {
    Loss {
        count: last - first + 1,
        reason,
        first_seq: first,
        last_seq: last,
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Encoded events gathered into one message.
#[derive(Default)]
struct Batch {
    first_seq: u64,
    last_seq: u64,
    events: Vec<Bytes>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn len(&self) -> usize {
        self.events.len()
    }

    fn push(&mut self, seq: u64, encoded: Bytes) {
        if self.events.is_empty() {
            self.first_seq = seq;
        }
        self.last_seq = seq;
        self.events.push(encoded);
    }

    /// The message, leaving the batch empty.
    fn take(&mut self) -> Outgoing {
        let b = std::mem::take(self);
        Outgoing::Events {
            first_seq: b.first_seq,
            last_seq: b.last_seq,
            events: b.events,
        }
    }
}

#[cfg(test)]
mod tests;
