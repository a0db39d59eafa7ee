//! The agent's main loop: attach, drain the ring buffer as it fills, do the periodic work
//! its timers say is due, and on SIGINT/SIGTERM detach, drain what is left and report final
//! counters.

mod start;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use aya::maps::{MapData, RingBuf};
use tapper_logging::LogBudget;
use tokio::{io::unix::AsyncFd, signal::unix::Signal, sync::oneshot};

use crate::{
    cli::Cli,
    clock::monotonic_ns,
    counters::{CountersFormat, KernelCounters, Snapshot},
    pipeline::Pipeline,
    probe::{ProbeMode, Probes},
    rate_limit,
    ship::HubShipper,
    timers::{Due, Timers},
    warnings::{FileMaxWatch, NofileSampling, Sampled},
};

/// After detaching, programs already running on other CPUs may still finish; wait this
/// long before the final drain so the final counters include them.
const DETACH_GRACE: Duration = Duration::from_millis(50);
/// At most one log line per this interval about kernel counters that cannot be read.
const COUNTER_ERRORS_EVERY: Duration = Duration::from_secs(10);

/// Runs the tapper until SIGINT or SIGTERM, then stops it cleanly.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    raise_open_files_limit();
    let mut agent = Agent::start(cli).await?;
    let signal_name = agent.serve().await?;
    agent.stop(signal_name).await
}

/// Caps of its own (metrics connections, caches) bound what the tapper holds open, not
/// the soft limit: running out would cost events their process and identity details.
fn raise_open_files_limit() {
    match sys_limits::raise_nofile_limit() {
        Ok(limit) => tracing::info!(
            open_files_limit = limit,
            "open-files limit raised to the hard limit"
        ),
        Err(err) => tracing::warn!(error = %err, "cannot raise the open-files limit"),
    }
}

/// The attached tapper: its probes, the rings it reads and everything the loop drives.
struct Agent {
    /// Dropping them detaches every program.
    probes: Probes,
    mode: ProbeMode,
    ring: AsyncFd<RingBuf<MapData>>,
    pipeline: Pipeline,
    /// Nofile warnings, sampled in a task of their own: a flood of them never holds up
    /// the events.
    nofile: NofileSampling,
    file_max: Option<FileMaxWatch>,
    timers: Timers,
    /// Events the kernel submitted without a wake-up just after one are picked up by a
    /// second look this long after the last wake-up: each wake-up moves it on, so under
    /// steady load it never fires, and after a burst it fires once.
    recheck_after: Option<Duration>,
    /// Whether the rate limit's buckets are swept after activity.
    sweeping: bool,
    counters: Arc<KernelCounters>,
    counters_format: CountersFormat,
    counter_errors: LogBudget,
    sigint: Signal,
    sigterm: Signal,
    metrics_stop: oneshot::Sender<()>,
}

impl Agent {
    /// Handles events, warnings and due timers until a signal comes; returns its name.
    async fn serve(&mut self) -> anyhow::Result<&'static str> {
        loop {
            let found = tokio::select! {
                readable = self.ring.readable_mut() => {
                    let mut guard = readable.context("waiting on the ring buffer")?;
                    let found = drain(guard.get_inner_mut(), &mut self.pipeline)?;
                    guard.clear_ready();
                    if let Some(after) = self.recheck_after {
                        self.timers.rearm(Due::Recheck, after);
                    }
                    found
                }
                Some(sampled) = self.nofile.completed.recv() => {
                    handle_sampled(sampled, &mut self.pipeline)?;
                    0
                }
                due = self.timers.next() => self.on_due(due)?,
                _ = self.sigint.recv() => return Ok("SIGINT"),
                _ = self.sigterm.recv() => return Ok("SIGTERM"),
            };
            // Only after activity: a sweep of the rate limit's buckets while keys are left.
            if found > 0 && self.sweeping {
                self.timers.arm(Due::Sweep, rate_limit::QUIET);
            }
        }
    }

    /// Does the work of a due timer; returns how many events it drained.
    fn on_due(&mut self, due: Due) -> anyhow::Result<usize> {
        match due {
            Due::Recheck => drain(self.ring.get_mut(), &mut self.pipeline),
            Due::Sweep => {
                let found = drain(self.ring.get_mut(), &mut self.pipeline)?;
                if self.pipeline.sweep_suppressed(monotonic_ns())? {
                    self.timers.arm(Due::Sweep, rate_limit::QUIET);
                }
                Ok(found)
            }
            Due::FileMax => {
                if let Some(warning) = self.file_max.as_mut().and_then(FileMaxWatch::sample) {
                    self.pipeline
                        .warn(warning)
                        .context("writing a warning to stdout")?;
                }
                Ok(0)
            }
            Due::Stats => {
                if let Some(snapshot) = self.snapshot() {
                    snapshot.print(self.counters_format, "interval");
                }
                Ok(0)
            }
            Due::HubCounters => {
                let snapshot = self.snapshot();
                if let (Some(hub), Some(snapshot)) = (self.pipeline.hub.as_mut(), snapshot) {
                    hub.sync_counters(&snapshot);
                }
                Ok(0)
            }
        }
    }

    /// Detaches, drains what is left, prints and ships the final counters and stops the
    /// hub shipper and the metrics endpoint.
    async fn stop(mut self, signal_name: &str) -> anyhow::Result<()> {
        tracing::info!(
            "{signal_name} received; detaching {} probes",
            self.mode.as_str()
        );
        drop(self.probes);
        tokio::time::sleep(DETACH_GRACE).await;
        let pipeline = &mut self.pipeline;
        drain(self.ring.get_mut(), pipeline)?;
        // Detached: no program touches the buckets any more, so every pending count is
        // taken.
        pipeline.sweep_suppressed(u64::MAX)?;
        for sampled in self.nofile.finish().await {
            handle_sampled(sampled, pipeline)?;
        }
        // Never skipped for the rate limit of the log: the last chance to say so.
        let last = snapshot(
            &self.counters,
            pipeline,
            &mut LogBudget::one_per(Duration::ZERO),
        );
        if let Some(last) = &last {
            last.print(self.counters_format, "final");
        }
        if let Some(mut hub) = pipeline.hub.take() {
            if let Some(last) = &last {
                hub.sync_counters(last);
            }
            hub.shutdown().await;
        }
        let _ = self.metrics_stop.send(());
        Ok(())
    }

    fn snapshot(&mut self) -> Option<Snapshot> {
        snapshot(&self.counters, &self.pipeline, &mut self.counter_errors)
    }
}

/// Handles every record in the ring buffer; returns how many there were.
fn drain(ring: &mut RingBuf<MapData>, pipeline: &mut Pipeline) -> anyhow::Result<usize> {
    let mut found = 0;
    while let Some(record) = ring.next() {
        found += 1;
        pipeline
            .handle(&record)
            .context("writing an event to stdout")?;
    }
    pipeline.flush().context("flushing stdout")?;
    Ok(found)
}

/// Writes and ships a nofile warning the sampling task completed.
fn handle_sampled(sampled: Sampled, pipeline: &mut Pipeline) -> anyhow::Result<()> {
    match sampled {
        Sampled::Warning(raw, eta) => pipeline
            .handle_nofile(&raw, eta)
            .context("writing a warning to stdout"),
        Sampled::Malformed => {
            pipeline.counters.malformed += 1;
            Ok(())
        }
    }
}

/// The counters now, or `None` when the kernel's cannot be read (say, with no descriptor
/// left): that is logged, at most once per [`COUNTER_ERRORS_EVERY`], and the tapper goes on.
fn snapshot(
    kernel: &KernelCounters,
    pipeline: &Pipeline,
    errors: &mut LogBudget,
) -> Option<Snapshot> {
    match kernel.snapshot(pipeline.counters) {
        Ok(snapshot) => Some(Snapshot {
            hub: pipeline.hub.as_ref().map(HubShipper::link),
            ..snapshot
        }),
        Err(err) => {
            if let Some(unlogged) = errors.due() {
                tracing::warn!(unlogged, "cannot read the kernel counters now: {err:#}");
            }
            None
        }
    }
}
