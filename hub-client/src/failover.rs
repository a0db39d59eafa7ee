//! Which hub of an ordered list to try next, and how long to wait first: the back-off grows
//! once per round in which every hub failed, not once per hub.

use std::time::Duration;

use crate::backoff::Backoff;

/// The wait before the next attempt, and whether every hub has failed since the last
/// success (a whole round).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub delay: Duration,
    pub round_failed: bool,
}

/// An ordered, non-empty list of hub addresses and the one in use. Starts at the first; a
/// failure moves to the next (wrapping around); a success stays there.
#[derive(Debug, Clone)]
pub struct Failover {
    hubs: Vec<String>,
    current: usize,
    failed_in_round: usize,
    backoff: Backoff,
}

impl Failover {
    /// `hubs` must not be empty (the config checks it); back-off as [`Backoff::new`].
    pub fn new(hubs: Vec<String>, initial: Duration, max: Duration) -> Self {
        assert!(!hubs.is_empty(), "a failover list needs at least one hub");
        Self {
            hubs,
            current: 0,
            failed_in_round: 0,
            backoff: Backoff::new(initial, max),
        }
    }

    /// The hub to try (or in use).
    pub fn current(&self) -> &str {
        &self.hubs[self.current]
    }

    /// The position of [`current`](Self::current) in the list.
    pub fn index(&self) -> usize {
        self.current
    }

    /// All addresses, in order.
    pub fn hubs(&self) -> &[String] {
        &self.hubs
    }

    /// The current hub answered: stay on it, and start the back-off over.
    pub fn connected(&mut self) {
        self.failed_in_round = 0;
        self.backoff.reset();
    }

    /// The current hub failed (or its stream ended): moves to the next one and says how
    /// long to wait before trying it. The wait stays within the same bounds during a
    /// round and doubles after each round in which every hub failed.
    pub fn failed(&mut self) -> Retry {
        self.current = (self.current + 1) % self.hubs.len();
        self.failed_in_round += 1;
        let round_failed = self.failed_in_round >= self.hubs.len();
        let delay = if round_failed {
            self.failed_in_round = 0;
            self.backoff.next_delay()
        } else {
            self.backoff.delay()
        };
        Retry {
            delay,
            round_failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Failover {
        let hubs = ["a", "b", "c"].map(String::from).to_vec();
        Failover::new(hubs, Duration::from_millis(100), Duration::from_secs(10))
    }

    #[test]
    fn walks_the_list_in_order_and_wraps() {
        let mut f = three();
        assert_eq!(f.current(), "a");
        let order: Vec<_> = (0..4)
            .map(|_| {
                f.failed();
                f.current().to_owned()
            })
            .collect();
        assert_eq!(order, ["b", "c", "a", "b"]);
        f.connected();
        assert_eq!(f.current(), "b", "a success stays on its hub");
    }

    #[test]
    fn back_off_grows_per_round_not_per_hub() {
        let mut f = three();
        let first_round: Vec<_> = (0..3).map(|_| f.failed()).collect();
        assert_eq!(
            first_round
                .iter()
                .map(|r| r.round_failed)
                .collect::<Vec<_>>(),
            [false, false, true]
        );
        assert!(
            first_round
                .iter()
                .all(|r| r.delay <= Duration::from_millis(100))
        );
        // The second round waits within the doubled ceiling, the third within 400 ms.
        let second: Vec<_> = (0..3).map(|_| f.failed().delay).collect();
        assert!(
            second.iter().all(|d| *d >= Duration::from_millis(100)),
            "{second:?}"
        );
        assert!(
            second.iter().all(|d| *d <= Duration::from_millis(200)),
            "{second:?}"
        );
        let third = f.failed().delay;
        assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
        // A success starts over, and a new round needs every hub to fail again.
        f.connected();
        let after = f.failed();
        assert!(!after.round_failed && after.delay <= Duration::from_millis(100));
    }

    #[test]
    fn one_hub_is_the_plain_back_off() {
        let mut f = Failover::new(
            vec!["a".into()],
            Duration::from_millis(100),
            Duration::from_secs(1),
        );
        assert!(f.failed().round_failed);
        let second = f.failed();
        assert!(second.round_failed && second.delay >= Duration::from_millis(100));
        assert_eq!(f.current(), "a");
    }
}
