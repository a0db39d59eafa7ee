//! A token bucket for descriptor samples across all processes: however many processes
//! near their limit at once, the tapper spends a bounded amount of work per second on them.

use std::time::Instant;

pub struct SampleBudget {
    per_sec: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl SampleBudget {
    /// `per_sec` samples a second, and as many at once.
    pub fn new(per_sec: u32) -> Self {
        Self {
            per_sec: f64::from(per_sec),
            tokens: f64::from(per_sec),
            last: None,
        }
    }

    /// Takes one sample's token at `now`; false when the budget is spent for now.
    pub fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let earned = now.saturating_duration_since(last).as_secs_f64() * self.per_sec;
            self.tokens = (self.tokens + earned).min(self.per_sec);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn spends_its_burst_then_earns_tokens_back_over_time() {
        let mut budget = SampleBudget::new(10);
        let start = Instant::now();
        assert_eq!((0..20).filter(|_| budget.take(start)).count(), 10);
        assert!(
            !budget.take(start + Duration::from_millis(50)),
            "half a token"
        );
        assert!(budget.take(start + Duration::from_millis(110)));
        let later = start + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| budget.take(later)).count(), 10, "capped");
    }
}
