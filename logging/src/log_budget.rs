//! A budget of log lines: at most so many lines of one kind per interval, counting the ones
//! left out so that the next line logged can say how many it stands for.

use std::time::{Duration, Instant};

/// Lines of one kind: `lines` per `every` at most.
pub struct LogBudget {
    lines: u32,
    every: Duration,
    window_start: Option<Instant>,
    used: u32,
    unlogged: u64,
}

impl LogBudget {
    /// One line per `every`.
    pub fn one_per(every: Duration) -> Self {
        Self::new(1, every)
    }

    /// `lines` lines per `every`.
    pub fn new(lines: u32, every: Duration) -> Self {
        Self {
            lines,
            every,
            window_start: None,
            used: 0,
            unlogged: 0,
        }
    }

    /// Whether a line may be logged now: `Some(n)` with the number of lines left out since
    /// the last one logged, or `None` (this one is counted as left out).
    pub fn due(&mut self) -> Option<u64> {
        self.due_at(Instant::now())
    }

    fn due_at(&mut self, now: Instant) -> Option<u64> {
        if self
            .window_start
            .is_none_or(|start| now.duration_since(start) >= self.every)
        {
            self.window_start = Some(now);
            self.used = 0;
        }
        if self.used >= self.lines {
            self.unlogged += 1;
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.unlogged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_per_interval_and_the_count_left_out() {
        let mut budget = LogBudget::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(budget.due_at(t0), Some(0));
        assert_eq!(budget.due_at(t0), Some(0));
        for i in 1..=5 {
            assert_eq!(budget.due_at(t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(budget.due_at(t0 + Duration::from_secs(10)), Some(5));
        assert_eq!(budget.due_at(t0 + Duration::from_secs(11)), Some(0));
        assert_eq!(budget.due_at(t0 + Duration::from_secs(12)), None);
    }
}
