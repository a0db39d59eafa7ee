//! The main loop's periodic and delayed work as one timer set: each kind of work has a
//! deadline, and [`Timers::next`] sleeps until the earliest one and says which is [`Due`].

use std::time::Duration;

use tokio::time::{Instant, sleep_until};

/// The work a timer stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// A second look at the ring buffer a while after a drain that found events.
    Recheck,
    /// A sweep of the rate limit's buckets, after a quiet spell.
    Sweep,
    /// A sample of the system's file table for file-max warnings.
    FileMax,
    /// Counters printed at `--stats-interval`.
    Stats,
    /// Counters (and kernel drops, as losses) sent to the hub.
    HubCounters,
}

impl Due {
    const ALL: [Due; 5] = [
        Due::Recheck,
        Due::Sweep,
        Due::FileMax,
        Due::Stats,
        Due::HubCounters,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One timer: when it is next due and, for periodic work, its period.
#[derive(Clone, Copy, Debug, Default)]
struct Timer {
    at: Option<Instant>,
    every: Option<Duration>,
}

/// Every timer of the main loop; a timer without a deadline is idle.
#[derive(Debug, Default)]
pub struct Timers {
    timers: [Timer; Due::ALL.len()],
}

impl Timers {
    /// Makes `due` periodic: first due one period from now, then every period after
    /// (a late timer catches up, as a tokio interval does by default).
    pub fn every(&mut self, due: Due, period: Duration) {
        self.timers[due.index()] = Timer {
            at: Some(Instant::now() + period),
            every: Some(period),
        };
    }

    /// Makes `due` a one-shot `after` from now, unless it is armed already.
    pub fn arm(&mut self, due: Due, after: Duration) {
        let timer = &mut self.timers[due.index()];
        timer.at.get_or_insert_with(|| Instant::now() + after);
    }

    /// Makes `due` a one-shot `after` from now, moving it if it is armed already.
    pub fn rearm(&mut self, due: Due, after: Duration) {
        self.timers[due.index()].at = Some(Instant::now() + after);
    }

    /// Sleeps until the earliest armed timer and returns it, rescheduling it if periodic
    /// and disarming it if not; never returns while none is armed. Cancel-safe: nothing
    /// changes until the deadline has passed.
    pub async fn next(&mut self) -> Due {
        let earliest = Due::ALL
            .into_iter()
            .filter_map(|due| self.timers[due.index()].at.map(|at| (at, due)))
            .min_by_key(|(at, _)| *at);
        let Some((at, due)) = earliest else {
            return std::future::pending().await;
        };
        sleep_until(at).await;
        let timer = &mut self.timers[due.index()];
        timer.at = timer.every.map(|period| at + period);
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_earliest_fires_first_and_periodic_timers_come_back() {
        let mut timers = Timers::default();
        timers.every(Due::Stats, Duration::from_secs(10));
        timers.every(Due::HubCounters, Duration::from_secs(5));
        timers.arm(Due::Recheck, Duration::from_millis(2));
        timers.arm(Due::Recheck, Duration::from_secs(60));
        let mut order = Vec::new();
        for _ in 0..5 {
            order.push(timers.next().await);
        }
        assert_eq!(
            order,
            [
                Due::Recheck,
                Due::HubCounters,
                Due::Stats,
                Due::HubCounters,
                Due::HubCounters
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_rearmed_one_shot_moves_on_and_fires_once() {
        let mut timers = Timers::default();
        timers.rearm(Due::Recheck, Duration::from_millis(2));
        tokio::time::advance(Duration::from_millis(1)).await;
        timers.rearm(Due::Recheck, Duration::from_millis(2));
        let start = Instant::now();
        assert_eq!(timers.next().await, Due::Recheck);
        assert_eq!(start.elapsed(), Duration::from_millis(2));
        let idle = tokio::time::timeout(Duration::from_secs(3600), timers.next()).await;
        assert!(idle.is_err(), "a one-shot fires once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_one_shot_fires_once_and_can_be_armed_again() {
        let mut timers = Timers::default();
        timers.arm(Due::Sweep, Duration::from_secs(1));
        assert_eq!(timers.next().await, Due::Sweep);
        let idle = tokio::time::timeout(Duration::from_secs(3600), timers.next()).await;
        assert!(idle.is_err(), "nothing is armed any more");
        timers.arm(Due::Sweep, Duration::from_secs(1));
        assert_eq!(timers.next().await, Due::Sweep);
    }
}
