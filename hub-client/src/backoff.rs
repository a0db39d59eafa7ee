//! Exponential back-off with full jitter for reconnects.

use std::time::Duration;

use rand::Rng;

/// Doubles the ceiling after each failure up to `max`; each wait is uniform in
/// `[ceiling/2, ceiling]` so that many tappers do not reconnect in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    ceiling: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Self {
            initial,
            max: max.max(initial),
            ceiling: initial,
        }
    }

    /// The next wait; the ones after it may be twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.delay();
        self.ceiling = (self.ceiling * 2).min(self.max);
        delay
    }

    /// A wait within the current bounds, without growing them.
    pub fn delay(&self) -> Duration {
        let hi = self.ceiling.as_micros() as u64;
        Duration::from_micros(rand::rng().random_range(hi / 2..=hi))
    }

    /// After a success, start again from the initial wait.
    pub fn reset(&mut self) {
        self.ceiling = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let d: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100));
        assert!(d[5] >= Duration::from_millis(500) && d[5] <= Duration::from_secs(1));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
