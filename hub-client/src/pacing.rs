//! When the reporter sends: events linger a little so that a busy node ships few large
//! batches instead of one message per event, while a lone event on a quiet link goes at once.

use std::time::{Duration, Instant};

/// What the buffer holds, as the pacer needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Events and loss records not yet sent on this connection.
    pub unsent: usize,
    /// Messages sent and not acknowledged yet.
    pub in_flight: usize,
    /// New counters are waiting (they go at once).
    pub counters: bool,
}

/// The writer's next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Send,
    /// Nothing left and the reporter is closing: half-close the stream.
    Close,
    /// Wait for new data or an ack.
    Wait,
    /// Wait for new data, an ack, or this moment, whichever comes first.
    WaitUntil(Instant),
}

/// The sending policy of one connection.
#[derive(Debug)]
pub struct Pacer {
    linger: Duration,
    batch: usize,
    max_in_flight: usize,
    /// Since when unsent items wait.
    pending_since: Option<Instant>,
    last_send: Option<Instant>,
}

impl Pacer {
    /// Items wait at most `linger`; `batch` unsent items (a full batch) go at once; at most
    /// `max_in_flight` messages are un-acked, so under load batches grow until acks pace them.
    pub fn new(linger: Duration, batch: usize, max_in_flight: usize) -> Self {
        Self {
            linger,
            batch: batch.max(1),
            max_in_flight: max_in_flight.max(1),
            pending_since: None,
            last_send: None,
        }
    }

    pub fn decide(&mut self, b: Backlog, closing: bool, now: Instant) -> Step {
        if b.unsent == 0 && !b.counters {
            self.pending_since = None;
            return if closing { Step::Close } else { Step::Wait };
        }
        if closing || b.counters {
            return Step::Send;
        }
        let since = *self.pending_since.get_or_insert(now);
        if b.in_flight >= self.max_in_flight {
            return Step::Wait;
        }
        let quiet = b.in_flight == 0
            && self
                .last_send
                .is_none_or(|t| now.duration_since(t) >= self.linger);
        let deadline = since + self.linger;
        if b.unsent >= self.batch || quiet || now >= deadline {
            Step::Send
        } else {
            Step::WaitUntil(deadline)
        }
    }

    /// The writer sent what was unsent.
    pub fn sent(&mut self, now: Instant) {
        self.pending_since = None;
        self.last_send = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINGER: Duration = Duration::from_millis(2);

    fn backlog(unsent: usize, in_flight: usize) -> Backlog {
        Backlog {
            unsent,
            in_flight,
            counters: false,
        }
    }

    #[test]
    fn a_lone_event_on_a_quiet_link_goes_at_once() {
        let t0 = Instant::now();
        let mut p = Pacer::new(LINGER, 500, 4);
        assert_eq!(p.decide(backlog(0, 0), false, t0), Step::Wait);
        assert_eq!(p.decide(backlog(1, 0), false, t0), Step::Send);
    }

    #[test]
    fn events_soon_after_a_send_linger_then_go_together() {
        let t0 = Instant::now();
        let mut p = Pacer::new(LINGER, 500, 4);
        p.sent(t0);
        let t1 = t0 + Duration::from_micros(500);
        assert_eq!(
            p.decide(backlog(1, 0), false, t1),
            Step::WaitUntil(t1 + LINGER)
        );
        // More events arrive; the deadline stays that of the oldest.
        let t2 = t1 + Duration::from_millis(1);
        assert_eq!(
            p.decide(backlog(5, 1), false, t2),
            Step::WaitUntil(t1 + LINGER)
        );
        assert_eq!(p.decide(backlog(5, 1), false, t1 + LINGER), Step::Send);
    }

    #[test]
    fn a_full_batch_goes_at_once_unless_too_much_is_in_flight() {
        let t0 = Instant::now();
        let mut p = Pacer::new(LINGER, 500, 4);
        p.sent(t0);
        assert_eq!(p.decide(backlog(500, 3), false, t0), Step::Send);
        // At the in-flight cap even an old backlog waits for an ack.
        let late = t0 + 10 * LINGER;
        assert_eq!(p.decide(backlog(900, 4), false, late), Step::Wait);
        assert_eq!(p.decide(backlog(900, 3), false, late), Step::Send);
    }

    #[test]
    fn counters_and_closing_do_not_wait() {
        let t0 = Instant::now();
        let mut p = Pacer::new(LINGER, 500, 4);
        p.sent(t0);
        let counters = Backlog {
            counters: true,
            ..backlog(0, 4)
        };
        assert_eq!(p.decide(counters, false, t0), Step::Send);
        assert_eq!(p.decide(backlog(3, 4), true, t0), Step::Send);
        assert_eq!(p.decide(backlog(0, 4), true, t0), Step::Close);
    }
}
