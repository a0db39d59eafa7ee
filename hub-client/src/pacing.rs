//! When the reporter sends: at most one message per send interval, so that sends per second
//! stay bounded and batches grow with the event rate, while an event never waits longer
//! than the linger (the latency budget) and the first event after a quiet spell goes at once.

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
    interval: Duration,
    batch: usize,
    max_in_flight: usize,
    /// Since when unsent items wait.
    pending_since: Option<Instant>,
    last_send: Option<Instant>,
}

impl Pacer {
    /// A message goes at most every `interval` (a rate estimate is not needed: at a steady
    /// rate each message carries what arrived in one interval), except that no item waits
    /// longer than `linger`; `batch` unsent items (a full batch) go at once; at most
    /// `max_in_flight` messages are un-acked, so under load batches grow until acks pace them.
    pub fn new(linger: Duration, interval: Duration, batch: usize, max_in_flight: usize) -> Self {
        Self {
            linger,
            interval,
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
        // After a quiet spell (no send for an interval) this is in the past: send at once.
        let next_slot = self.last_send.map_or(now, |t| t + self.interval);
        let at = next_slot.min(since + self.linger);
        if b.unsent >= self.batch || now >= at {
            Step::Send
        } else {
            Step::WaitUntil(at)
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

    const LINGER: Duration = Duration::from_millis(20);
    const INTERVAL: Duration = Duration::from_millis(20);

    fn backlog(unsent: usize, in_flight: usize) -> Backlog {
        Backlog {
            unsent,
            in_flight,
            counters: false,
        }
    }

    fn pacer() -> Pacer {
        Pacer::new(LINGER, INTERVAL, 500, 4)
    }

    /// Events arriving `gap` apart for `span`, with the writer acting on every arrival and
    /// at every deadline it asked for: (messages sent, longest wait of an event).
    fn steady(mut p: Pacer, gap: Duration, span: Duration) -> (usize, Duration) {
        let t0 = Instant::now();
        let (mut sends, mut longest) = (0, Duration::ZERO);
        let mut waiting: Vec<Instant> = Vec::new();
        let mut next_arrival = t0;
        let mut deadline: Option<Instant> = None;
        while next_arrival < t0 + span || !waiting.is_empty() {
            let now = match deadline {
                Some(d) if d <= next_arrival || next_arrival >= t0 + span => d,
                _ => {
                    waiting.push(next_arrival);
                    next_arrival += gap;
                    next_arrival - gap
                }
            };
            deadline = None;
            match p.decide(backlog(waiting.len(), 0), false, now) {
                Step::Send => {
                    sends += 1;
                    longest = waiting
                        .drain(..)
                        .map(|t| now - t)
                        .fold(longest, Duration::max);
                    p.sent(now);
                }
                Step::WaitUntil(d) => deadline = Some(d),
                step => panic!("{step:?} with events waiting"),
            }
        }
        (sends, longest)
    }

    #[test]
    fn a_lone_event_on_a_quiet_link_goes_at_once() {
        let t0 = Instant::now();
        let mut p = pacer();
        // Nothing waits: no deadline, so no timer.
        assert_eq!(p.decide(backlog(0, 0), false, t0), Step::Wait);
        assert_eq!(p.decide(backlog(1, 0), false, t0), Step::Send);
        p.sent(t0);
        assert_eq!(p.decide(backlog(0, 1), false, t0), Step::Wait);
        // An interval of quiet later, the next one goes at once too.
        let later = t0 + INTERVAL;
        assert_eq!(p.decide(backlog(1, 0), false, later), Step::Send);
    }

    #[test]
    fn events_soon_after_a_send_wait_for_the_next_slot_and_go_together() {
        let t0 = Instant::now();
        let mut p = pacer();
        p.sent(t0);
        let t1 = t0 + Duration::from_millis(1);
        assert_eq!(
            p.decide(backlog(1, 0), false, t1),
            Step::WaitUntil(t0 + INTERVAL)
        );
        let t2 = t1 + Duration::from_millis(5);
        assert_eq!(
            p.decide(backlog(5, 1), false, t2),
            Step::WaitUntil(t0 + INTERVAL)
        );
        assert_eq!(p.decide(backlog(5, 0), false, t0 + INTERVAL), Step::Send);
    }

    #[test]
    fn the_linger_caps_the_wait_when_it_is_shorter_than_the_interval() {
        let t0 = Instant::now();
        let linger = Duration::from_millis(2);
        let mut p = Pacer::new(linger, INTERVAL, 500, 4);
        p.sent(t0);
        let t1 = t0 + Duration::from_millis(1);
        assert_eq!(
            p.decide(backlog(1, 0), false, t1),
            Step::WaitUntil(t1 + linger)
        );
        assert_eq!(p.decide(backlog(3, 0), false, t1 + linger), Step::Send);
    }

    #[test]
    fn under_steady_load_sends_stay_bounded_and_batches_grow_with_the_rate() {
        let span = Duration::from_secs(1);
        let bound = (span.as_micros() / INTERVAL.as_micros()) as usize + 1;
        for per_sec in [100, 1_000, 10_000] {
            let gap = Duration::from_secs(1) / per_sec;
            let (sends, longest) = steady(pacer(), gap, span);
            assert!(sends <= bound, "{per_sec}/s: {sends} sends, bound {bound}");
            assert!(sends >= bound - 2, "{per_sec}/s: {sends} sends");
            assert!(
                longest <= LINGER,
                "{per_sec}/s: an event waited {longest:?}"
            );
        }
        // Below one event per interval every event goes at once.
        let (sends, longest) = steady(pacer(), 2 * INTERVAL, span);
        assert_eq!((sends, longest), (25, Duration::ZERO));
    }

    #[test]
    fn a_full_batch_goes_at_once_unless_too_much_is_in_flight() {
        let t0 = Instant::now();
        let mut p = pacer();
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
        let mut p = pacer();
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
