//! A log line that repeats at most once per interval: the rest are counted and the count
//! goes with the next line that is logged, so a flood of one cause cannot flood the log.

use std::time::{Duration, Instant};

/// Decides when a repeated warning is logged again.
#[derive(Debug)]
pub struct RateLimitedLog {
    every: Duration,
    last: Option<Instant>,
    unlogged: u64,
}

impl RateLimitedLog {
    /// At most one line per `every`.
    pub const fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            unlogged: 0,
        }
    }

    /// `Some(occurrences not logged since the last line)` when this one should be logged.
    pub fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < self.every)
        {
            self.unlogged += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_is_logged_then_repeats_are_counted_until_the_interval_passes() {
        let mut log = RateLimitedLog::new(Duration::from_millis(50));
        assert_eq!(log.due(), Some(0));
        assert_eq!(log.due(), None);
        assert_eq!(log.due(), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(log.due(), Some(2));
        assert_eq!(log.due(), None);
    }
}
