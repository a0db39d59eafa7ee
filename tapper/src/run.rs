//! The agent's main loop: attach, drain the ring buffer as it fills, do the periodic work
//! its timers say is due, and on SIGINT/SIGTERM detach, drain what is left and report final
//! counters.

use std::{
    io::{IsTerminal, Write},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use aya::{
    Ebpf,
    maps::{MapData, RingBuf},
};
use tapper_common::Wakeup;
use tapper_logging::LogBudget;
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{Signal, SignalKind, signal},
    sync::oneshot,
};

use crate::{
    cli::{CaptureArgs, Cli, HubArgs, OutputArgs, WarnArgs},
    clock::monotonic_ns,
    counters::{CountersFormat, KernelCounters, Snapshot},
    identity::IdentityResolver,
    metrics::{self, TapperCollector},
    output::{EventWriter, Format},
    pipeline::Pipeline,
    probe::{self, Capture, NofileWarn, ProbeMode},
    rate_limit::{self, Sweep},
    ship::{HubOptions, HubShipper},
    timers::{Due, Timers},
    warnings::{FileMaxWatch, NofileSampling, Sampled, WarningCounts},
};

/// After detaching, programs already running on other CPUs may still finish; wait this
/// long before the final drain so the final counters include them.
const DETACH_GRACE: Duration = Duration::from_millis(50);
/// The kernel wakes the tapper at once when the ring is fuller than 1/this.
const WAKE_WHEN_FULL_TO: u32 = 8;
/// How often counters (and kernel drops, as losses) go to the hub.
const HUB_COUNTERS_EVERY: Duration = Duration::from_secs(5);
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
    probes: Ebpf,
    mode: ProbeMode,
    ring: AsyncFd<RingBuf<MapData>>,
    pipeline: Pipeline,
    /// Nofile warnings, sampled in a task of their own: a flood of them never holds up
    /// the events.
    nofile: NofileSampling,
    file_max: Option<FileMaxWatch>,
    timers: Timers,
    /// Events the kernel submitted without a wake-up just after one are picked up by a
    /// second look this long after a drain that found events; it stops when one finds none.
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
    /// Attaches the probes, starts every helper (identity, hub, metrics, sampling) and
    /// prints the ready line.
    async fn start(cli: Cli) -> anyhow::Result<Self> {
        let (format, counters_format) = output_formats(&cli.output);
        // Before attaching, so that a wrong runtime path stops the tapper at once.
        let identity = IdentityResolver::start(cli.identity)?;
        // Before attaching: from the ready line on, a signal must mean a clean stop.
        let sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let capture = &cli.capture;
        let Capture {
            probes,
            mode,
            events,
            warnings,
            counters,
            io_uring,
            early_records,
            rate_buckets,
        } = attach(capture, &cli.warn)?;
        let hub = start_hub(cli.hub, mode)?;
        let counters = Arc::new(counters);
        let warning_counts = Arc::new(WarningCounts::default());
        let (metrics_stop, metrics_stopped) = oneshot::channel::<()>();
        let metrics_addr = match cli.metrics.metrics_listen {
            Some(addr) => {
                let collector = TapperCollector::new(
                    counters.clone(),
                    hub.as_ref().map(HubShipper::reporter),
                    warning_counts.clone(),
                    mode.as_str(),
                );
                let stop = async {
                    let _ = metrics_stopped.await;
                };
                Some(metrics::start(addr, cli.metrics.limits, collector, stop).await?)
            }
            None => None,
        };
        let mut pipeline = Pipeline::new(
            cli.filter,
            identity,
            EventWriter::new(format),
            rate_buckets.map(Sweep::new),
            hub,
            warning_counts.clone(),
            capture.stacks_cache_bytes as u64,
        );
        for record in &early_records {
            pipeline
                .handle(record)
                .context("writing an event to stdout")?;
        }
        // SAFETY: the ring buffer owns its map fd, which stays open and unchanged for as
        // long as the AsyncFd owns the ring buffer.
        let ring = unsafe { AsyncFd::register_with_interest(events, Interest::READABLE) }
            .map_err(|err| anyhow::anyhow!("polling the ring buffer: {err}"))?;
        let nofile = NofileSampling::start(warnings, warning_counts)?;
        let file_max = file_max_watch(&cli.warn);

        let mut timers = Timers::default();
        if file_max.is_some() {
            timers.every(Due::FileMax, cli.warn.warn_file_max_every);
        }
        if let Some(every) = cli.output.stats_interval {
            timers.every(Due::Stats, every);
        }
        if pipeline.hub.is_some() {
            timers.every(Due::HubCounters, HUB_COUNTERS_EVERY);
        }
        print_ready(mode.as_str(), io_uring, metrics_addr).context("writing the ready line")?;
        Ok(Self {
            probes,
            mode,
            ring,
            pipeline,
            nofile,
            file_max,
            timers,
            recheck_after: (!capture.ring_wakeup_interval.is_zero())
                .then(|| 2 * capture.ring_wakeup_interval),
            sweeping: capture.rate_limit > 0,
            counters,
            counters_format,
            counter_errors: LogBudget::one_per(COUNTER_ERRORS_EVERY),
            sigint,
            sigterm,
            metrics_stop,
        })
    }

    /// Handles events, warnings and due timers until a signal comes; returns its name.
    async fn serve(&mut self) -> anyhow::Result<&'static str> {
        loop {
            let found = tokio::select! {
                readable = self.ring.readable_mut() => {
                    let mut guard = readable.context("waiting on the ring buffer")?;
                    let found = drain(guard.get_inner_mut(), &mut self.pipeline)?;
                    guard.clear_ready();
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
            // Both run only after activity: a recheck after a drain that found events, a
            // sweep of the rate limit's buckets while keys are left.
            if found > 0 {
                if let Some(after) = self.recheck_after {
                    self.timers.arm(Due::Recheck, after);
                }
                if self.sweeping {
                    self.timers.arm(Due::Sweep, rate_limit::QUIET);
                }
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

/// The event and counter formats: as asked, or chosen by where stdout goes.
fn output_formats(output: &OutputArgs) -> (Format, CountersFormat) {
    let format = output.output.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    });
    let counters_format = output.counters.unwrap_or(match format {
        Format::Json => CountersFormat::Json,
        Format::Table | Format::None => CountersFormat::Text,
    });
    (format, counters_format)
}

/// Loads and attaches the probes as the capture and warning flags ask.
fn attach(capture: &CaptureArgs, warn: &WarnArgs) -> anyhow::Result<Capture> {
    let nofile_warn = (warn.warn_nofile_ratio > 0.0).then_some(NofileWarn {
        ratio: warn.warn_nofile_ratio,
        floor: warn.warn_nofile_floor,
        interval: warn.warn_interval,
    });
    Ok(probe::attach(&probe::Request {
        mode: capture.probe,
        ring_buffer_bytes: capture.ring_buffer_size,
        io_uring: !capture.no_io_uring,
        rate_limit: rate_limit::kernel_limit(capture.rate_limit, capture.rate_limit_burst),
        wakeup: Wakeup {
            interval_ns: capture.ring_wakeup_interval.as_nanos() as u64,
            max_bytes: u64::from(capture.ring_buffer_size / WAKE_WHEN_FULL_TO),
        },
        stacks: capture.stacks,
        nofile_warn,
    })?)
}

/// The file-max watch, unless its ratio (by default the nofile ratio) is 0.
fn file_max_watch(warn: &WarnArgs) -> Option<FileMaxWatch> {
    let ratio = warn.warn_file_max_ratio.unwrap_or(warn.warn_nofile_ratio);
    (ratio > 0.0).then(|| FileMaxWatch::new(ratio, warn.warn_interval))
}

/// Starts shipping to the hubs, if any were given.
fn start_hub(hub: HubArgs, mode: ProbeMode) -> anyhow::Result<Option<HubShipper>> {
    if hub.urls.is_empty() {
        return Ok(None);
    }
    let shipper = HubShipper::start(HubOptions {
        urls: hub.urls,
        node: hub.node_name.unwrap_or_else(host_name),
        buffer_capacity: hub.hub_buffer as usize,
        buffer_bytes: hub.hub_buffer_bytes,
        kernel_release: probe::kernel_release(),
        probe_mode: mode.as_str(),
        credentials: hub_client::Credentials::from_options(
            hub.tls_ca,
            hub.tls_cert,
            hub.tls_key,
            hub.token_file,
        ),
    })?;
    Ok(Some(shipper))
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
        Ok(snapshot) => Some(snapshot),
        Err(err) => {
            if let Some(unlogged) = errors.due() {
                tracing::warn!(unlogged, "cannot read the kernel counters now: {err:#}");
            }
            None
        }
    }
}

/// The machine-readable ready signal, once the probes are attached and the signal
/// handlers installed: one JSON line on stderr, written whole, outside the logs. With
/// `--metrics-listen` it names the metrics endpoint's bound address too.
fn print_ready(probe: &str, io_uring: bool, metrics: Option<SocketAddr>) -> std::io::Result<()> {
    let mut fields =
        serde_json::json!({ "probe": probe, "pid": std::process::id(), "io_uring": io_uring });
    if let Some(addr) = metrics {
        fields["metrics"] = addr.to_string().into();
    }
    let ready = serde_json::json!({ "ready": fields });
    std::io::stderr()
        .lock()
        .write_all(format!("{ready}\n").as_bytes())
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
