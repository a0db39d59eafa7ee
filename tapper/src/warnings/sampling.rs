//! Nofile warnings off the event path: a task of their own drains the kernel's warnings
//! ring and samples descriptors (within the budget), then hands complete warnings to the
//! main loop through a bounded queue. A full queue skips a warning, counted and logged.

use std::{sync::Arc, time::Duration};

use aya::maps::{MapData, RingBuf};
use tapper_common::NofileWarning;
use tapper_logging::LogBudget;
use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::{MissedTickBehavior, interval},
};

use super::{NofileTracker, WarningCounts};

/// How often a process with a pending nofile warning has its descriptors counted.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// Complete warnings waiting for the main loop, at most.
const QUEUE: usize = 256;
/// At most one log line per this interval about skipped or unsampled warnings.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What the sampling task hands to the main loop.
pub enum Sampled {
    /// A complete nofile record and its estimated seconds to exhaustion.
    Warning(NofileWarning, Option<f64>),
    /// A ring-buffer record too short to be a warning (a build mismatch).
    Malformed,
}

/// The running sampling task and the queue of what it completed.
pub struct NofileSampling {
    pub completed: mpsc::Receiver<Sampled>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Vec<Sampled>>,
}

impl NofileSampling {
    /// Starts the task on the kernel's warnings ring (call inside the tokio runtime).
    pub fn start(ring: RingBuf<MapData>, counts: Arc<WarningCounts>) -> anyhow::Result<Self> {
        // SAFETY: the ring buffer owns its map fd, which stays open and unchanged for as
        // long as the AsyncFd owns the ring buffer.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|err| anyhow::anyhow!("polling the warnings' ring buffer: {err}"))?;
        let (tx, completed) = mpsc::channel(QUEUE);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(ring, tx, stopped, counts));
        Ok(Self {
            completed,
            stop,
            task,
        })
    }

    /// Stops the task and returns what it had not handed over yet: the queue first, then
    /// every record still being sampled, with the trend known so far.
    pub async fn finish(mut self) -> Vec<Sampled> {
        let _ = self.stop.send(());
        let rest = self.task.await.unwrap_or_default();
        let mut all = Vec::new();
        while let Ok(item) = self.completed.try_recv() {
            all.push(item);
        }
        all.extend(rest);
        all
    }
}

async fn run(
    mut ring: AsyncFd<RingBuf<MapData>>,
    tx: mpsc::Sender<Sampled>,
    mut stopped: oneshot::Receiver<()>,
    counts: Arc<WarningCounts>,
) -> Vec<Sampled> {
    let mut tracker = NofileTracker::default();
    let mut tick = interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut skipped_log = LogBudget::one_per(LOG_EVERY);
    let mut budget_log = LogBudget::one_per(LOG_EVERY);
    let mut hand_over = |item: Sampled| {
        if tx.try_send(item).is_err() {
            counts.skip();
            if let Some(unlogged) = skipped_log.due() {
                tracing::warn!(unlogged, "too many nofile warnings at once; skipping one");
            }
        }
    };
    loop {
        tokio::select! {
            readable = ring.readable_mut() => {
                let mut guard = match readable {
                    Ok(guard) => guard,
                    Err(err) => {
                        tracing::warn!("nofile warnings stop: polling their ring failed: {err}");
                        break;
                    }
                };
                drain(guard.get_inner_mut(), &mut tracker, &mut hand_over);
                guard.clear_ready();
            }
            _ = tick.tick(), if tracker.is_sampling() => {
                for (raw, eta) in tracker.sample() {
                    hand_over(Sampled::Warning(raw, eta));
                }
                let unsampled = tracker.take_over_budget();
                if unsampled > 0 && budget_log.due().is_some() {
                    tracing::info!(unsampled, "descriptor sampling over its budget; those \
                                   nofile warnings go out with the trend known so far");
                }
            }
            _ = &mut stopped => break,
        }
    }
    let mut rest = Vec::new();
    drain(ring.get_mut(), &mut tracker, &mut |item| rest.push(item));
    rest.extend(
        tracker
            .finish()
            .into_iter()
            .map(|(raw, eta)| Sampled::Warning(raw, eta)),
    );
    rest
}

/// Starts the sampling of each record in the ring; a record that cannot wait goes out.
fn drain(
    ring: &mut RingBuf<MapData>,
    tracker: &mut NofileTracker,
    hand_over: &mut impl FnMut(Sampled),
) {
    while let Some(record) = ring.next() {
        match NofileTracker::decode(&record) {
            None => hand_over(Sampled::Malformed),
            Some(raw) => {
                if let Some((raw, eta)) = tracker.start(raw) {
                    hand_over(Sampled::Warning(raw, eta));
                }
            }
        }
    }
}
