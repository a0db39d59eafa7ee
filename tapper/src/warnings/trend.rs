//! A usage trend: recent (time, descriptors in use) samples, their least-squares slope and
//! the time left until the limit at that rate.

use std::collections::VecDeque;

/// Most samples kept per trend (older ones fall out first).
const MAX_SAMPLES: usize = 64;

#[derive(Debug, Default)]
pub struct Trend {
    /// (seconds on a monotonic clock, descriptors in use), oldest first.
    samples: VecDeque<(f64, f64)>,
}

impl Trend {
    /// Adds a sample at `secs` and forgets samples older than `window_secs` before it.
    pub fn push(&mut self, secs: f64, used: u64, window_secs: f64) {
        while self
            .samples
            .front()
            .is_some_and(|&(t, _)| t < secs - window_secs)
            || self.samples.len() >= MAX_SAMPLES
        {
            self.samples.pop_front();
        }
        self.samples.push_back((secs, used as f64));
    }

    /// The newest sample's time, if any.
    pub fn last_secs(&self) -> Option<f64> {
        self.samples.back().map(|&(t, _)| t)
    }

    /// Descriptors gained per second (least squares), when two samples span some time.
    pub fn slope(&self) -> Option<f64> {
        let n = self.samples.len() as f64;
        if n < 2.0 {
            return None;
        }
        let mean_t = self.samples.iter().map(|s| s.0).sum::<f64>() / n;
        let mean_u = self.samples.iter().map(|s| s.1).sum::<f64>() / n;
        let (mut cov, mut var) = (0.0, 0.0);
        for &(t, u) in &self.samples {
            cov += (t - mean_t) * (u - mean_u);
            var += (t - mean_t) * (t - mean_t);
        }
        (var > 0.0).then(|| cov / var)
    }

    /// Seconds until `limit` at the recent rate from the newest sample; `None` when usage
    /// is not rising (or unknown), 0 when it is already at the limit.
    pub fn eta_seconds(&self, limit: u64) -> Option<f64> {
        let &(_, last) = self.samples.back()?;
        let left = limit as f64 - last;
        if left <= 0.0 {
            return Some(0.0);
        }
        let slope = self.slope().filter(|s| s.is_finite() && *s > 0.0)?;
        Some(left / slope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trend(points: &[(f64, u64)]) -> Trend {
        let mut t = Trend::default();
        for &(s, u) in points {
            t.push(s, u, 30.0);
        }
        t
    }

    #[test]
    fn a_steady_rise_gives_the_time_left() {
        // 50 descriptors per second, 200 of 256 in use: 56 left, 1.12 s.
        let t = trend(&[(0.0, 150), (0.5, 175), (1.0, 200)]);
        assert!((t.slope().unwrap() - 50.0).abs() < 1e-9);
        assert!((t.eta_seconds(256).unwrap() - 1.12).abs() < 1e-9);
    }

    #[test]
    fn flat_falling_or_single_samples_give_no_eta() {
        assert_eq!(trend(&[(0.0, 200), (1.0, 200)]).eta_seconds(256), None);
        assert_eq!(trend(&[(0.0, 220), (1.0, 200)]).eta_seconds(256), None);
        assert_eq!(trend(&[(0.0, 200)]).eta_seconds(256), None);
        assert_eq!(trend(&[(1.0, 200), (1.0, 210)]).eta_seconds(256), None);
        assert_eq!(trend(&[(0.0, 256)]).eta_seconds(256), Some(0.0));
    }

    #[test]
    fn old_samples_leave_the_window() {
        let mut t = trend(&[(0.0, 10), (1.0, 20)]);
        t.push(100.0, 30, 30.0);
        t.push(101.0, 30, 30.0);
        assert_eq!(t.slope(), Some(0.0), "only the two recent samples count");
        assert_eq!(t.last_secs(), Some(101.0));
    }
}
