//! Nofile warnings: a kernel record starts a short sampling of the process's open
//! descriptors (`/proc/PID/fd`, within a budget for all processes); with the samples of
//! earlier warnings of that process they give the trend, and the warning is complete.

use std::{collections::HashMap, time::Instant};

use tapper_common::NofileWarning;
use tapper_proto::{WarningKind, limits::truncate_warning, timestamp_from_unix_nanos, v1::Warning};

use super::{TREND_WINDOW, budget::SampleBudget, fd_count::FdCount, mono_secs, trend::Trend};
use crate::{
    clock::{WallClock, monotonic_ns},
    enrich::ProcessInfo,
    event::comm_text,
    identity::Identity,
};

/// Samples of `/proc/PID/fd` taken after a kernel record, one per sampling tick, before
/// the warning goes out (with a 50 ms tick: 200 ms).
const SAMPLES: u32 = 4;
/// Processes sampled at once; a record beyond that goes out with the trend known so far.
const MAX_PENDING: usize = 256;
/// Descriptor samples per second across all processes (and as many at once). A record
/// that finds the budget spent goes out with the trend known so far.
const SAMPLES_PER_SEC: u32 = 200;
/// Trends of processes quiet for longer than the window are forgotten once the map grows
/// past this (and then past twice what is left).
const TRENDS_SWEPT_AT: usize = 1024;

/// Kernel records being sampled, and each recent process's trend.
pub struct NofileTracker {
    pending: Vec<(NofileWarning, u32)>,
    trends: HashMap<u32, Trend>,
    sweep_at: usize,
    fds: FdCount,
    budget: SampleBudget,
    over_budget: u64,
}

impl Default for NofileTracker {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
            trends: HashMap::new(),
            sweep_at: TRENDS_SWEPT_AT,
            fds: FdCount::detect(),
            budget: SampleBudget::new(SAMPLES_PER_SEC),
            over_budget: 0,
        }
    }
}

impl NofileTracker {
    /// Starts sampling for a kernel record; returns it at once (with the trend so far)
    /// when too many are being sampled.
    pub fn start(&mut self, raw: NofileWarning) -> Option<(NofileWarning, Option<f64>)> {
        if self.trends.len() >= self.sweep_at {
            let horizon = mono_secs(raw.ts_ns) - TREND_WINDOW.as_secs_f64();
            self.trends
                .retain(|_, t| t.last_secs().is_some_and(|s| s >= horizon));
            self.sweep_at = (self.trends.len() * 2).max(TRENDS_SWEPT_AT);
        }
        self.trends.entry(raw.tgid).or_default().push(
            mono_secs(raw.ts_ns),
            raw.fd as u64 + 1,
            TREND_WINDOW.as_secs_f64(),
        );
        if self.pending.len() >= MAX_PENDING {
            return Some((raw, self.eta(&raw)));
        }
        self.pending.push((raw, SAMPLES));
        None
    }

    /// Whether records wait for samples (the caller ticks [`sample`](Self::sample) then).
    pub fn is_sampling(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Takes one sample of each pending process, within the budget; returns the records
    /// now complete (or out of budget), with their estimated seconds to exhaustion (`None`
    /// when not rising or not known).
    pub fn sample(&mut self) -> Vec<(NofileWarning, Option<f64>)> {
        let now = mono_secs(monotonic_ns());
        let instant = Instant::now();
        for (raw, left) in &mut self.pending {
            if !self.budget.take(instant) {
                // Out with what is known: no process may cost more than the budget allows.
                self.over_budget += 1;
                *left = 0;
                continue;
            }
            match self.fds.open_fds(raw.tgid) {
                Some(used) => {
                    let trend = self.trends.entry(raw.tgid).or_default();
                    trend.push(now, used, TREND_WINDOW.as_secs_f64());
                    *left -= 1;
                }
                // Gone: nothing more to learn.
                None => *left = 0,
            }
        }
        let (done, waiting) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(_, left)| *left == 0);
        self.pending = waiting;
        done.into_iter()
            .map(|(raw, _)| (raw, self.eta(&raw)))
            .collect::<Vec<_>>()
    }

    /// Records that went out without their samples because the budget was spent, since
    /// the last call.
    pub fn take_over_budget(&mut self) -> u64 {
        std::mem::take(&mut self.over_budget)
    }

    /// Every pending record with the trend known so far (at shutdown).
    pub fn finish(&mut self) -> Vec<(NofileWarning, Option<f64>)> {
        std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(raw, _)| (raw, self.eta(&raw)))
            .collect()
    }

    /// A ring-buffer record as the kernel wrote it, or `None` when it is too short.
    pub fn decode(record: &[u8]) -> Option<NofileWarning> {
        (record.len() >= size_of::<NofileWarning>()).then(|| {
            // SAFETY: the length is checked and every bit pattern is a valid record.
            unsafe { record.as_ptr().cast::<NofileWarning>().read_unaligned() }
        })
    }

    fn eta(&self, raw: &NofileWarning) -> Option<f64> {
        self.trends.get(&raw.tgid)?.eta_seconds(raw.limit)
    }
}

/// The "nofile" warning for a complete record. `used` is `fd + 1`, the lower bound the
/// kernel saw; `ratio` is `used / limit`. Every string is within the proto's limits.
pub fn build_nofile(
    raw: &NofileWarning,
    eta_seconds: Option<f64>,
    clock: &WallClock,
    process: &ProcessInfo,
    identity: &Identity,
) -> Warning {
    let used = raw.fd as u64 + 1;
    let mut warning = Warning {
        kind: WarningKind::Nofile.as_str().into(),
        ts: Some(timestamp_from_unix_nanos(clock.unix_ns(raw.ts_ns) as i64)),
        pid: Some(raw.tgid),
        comm: comm_text(&raw.comm),
        exe: process.exe.clone().unwrap_or_default(),
        used,
        limit: raw.limit,
        ratio: used as f64 / raw.limit.max(1) as f64,
        eta_seconds,
        container: identity.container.clone(),
        pod: identity.pod.clone(),
        ..Default::default()
    };
    truncate_warning(&mut warning);
    warning
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tgid: u32, fd: u32, ts_ns: u64) -> NofileWarning {
        NofileWarning {
            ts_ns,
            limit: 256,
            cgroup_id: 0,
            tgid,
            fd,
            comm: *b"worker\0\0\0\0\0\0\0\0\0\0",
        }
    }

    #[test]
    fn a_live_process_is_sampled_then_released() {
        let mut tracker = NofileTracker::default();
        let me = std::process::id();
        assert!(tracker.start(record(me, 204, monotonic_ns())).is_none());
        for _ in 1..SAMPLES {
            assert!(tracker.sample().is_empty());
            assert!(tracker.is_sampling());
        }
        let done = tracker.sample();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].0.tgid, me);
        assert!(!tracker.is_sampling());
    }

    #[test]
    fn a_vanished_process_is_released_at_the_next_sample() {
        let mut tracker = NofileTracker::default();
        // Above the default pid_max, so never a live process.
        tracker.start(record(4_194_304 + 7, 204, monotonic_ns()));
        let done = tracker.sample();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].1, None, "one sample is no trend");
    }

    #[test]
    fn past_the_budget_records_go_out_without_samples() {
        let mut tracker = NofileTracker::default();
        let me = std::process::id();
        let now = monotonic_ns();
        for _ in 0..MAX_PENDING {
            assert!(tracker.start(record(me, 204, now)).is_none());
        }
        // 200 tokens: 200 records are sampled once, the other 56 go out at once.
        let done = tracker.sample();
        assert_eq!(done.len(), MAX_PENDING - SAMPLES_PER_SEC as usize);
        assert_eq!(tracker.take_over_budget(), done.len() as u64);
        assert_eq!(tracker.take_over_budget(), 0);
    }

    #[test]
    fn the_warning_carries_the_kernel_view() {
        let clock = WallClock::sample();
        let w = build_nofile(
            &record(42, 204, 1),
            Some(1.5),
            &clock,
            &ProcessInfo::default(),
            &Identity::default(),
        );
        assert_eq!(
            (w.kind.as_str(), w.pid, w.used, w.limit),
            ("nofile", Some(42), 205, 256)
        );
        assert_eq!(w.comm, "worker");
        assert!((w.ratio - 205.0 / 256.0).abs() < 1e-12);
        assert_eq!(w.eta_seconds, Some(1.5));
    }
}
