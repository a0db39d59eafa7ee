//! The agent's main loop: attach, drain the ring buffer as it fills, report counters on
//! intervals, and on SIGINT/SIGTERM detach, drain what is left and report final counters.

use std::{
    io::{IsTerminal, Write},
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use aya::maps::{MapData, RingBuf};
use tapper_common::Wakeup;
use tapper_logging::LogBudget;
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
    time::{Interval, Sleep, interval, sleep},
};

use crate::{
    cli::Cli,
    clock::monotonic_ns,
    counters::{CountersFormat, KernelCounters, Snapshot},
    filter::Filter,
    identity::{IdentityOptions, IdentityResolver},
    metrics::{self, TapperCollector},
    output::{EventWriter, Format},
    pipeline::Pipeline,
    probe::{self, Capture, NofileWarn},
    rate_limit::{self, Sweep},
    ship::{HubOptions, HubShipper},
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

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Caps of its own (metrics connections, caches) bound what the tapper holds open, not
    // the soft limit: running out would cost events their process and identity details.
    match sys_limits::raise_nofile_limit() {
        Ok(limit) => tracing::info!(
            open_files_limit = limit,
            "open-files limit raised to the hard limit"
        ),
        Err(err) => tracing::warn!(error = %err, "cannot raise the open-files limit"),
    }
    let format = cli.output.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    });
    let counters_format = cli.counters.unwrap_or(match format {
        Format::Json => CountersFormat::Json,
        Format::Table | Format::None => CountersFormat::Text,
    });
    let filter = Filter {
        pids: cli.pids,
        comms: cli.comms,
        errnos: cli.errnos,
    };
    // Before attaching, so that a wrong runtime path stops the tapper at once.
    let identity = IdentityResolver::start(IdentityOptions {
        cri_socket: cli.cri_socket,
        podman_storage: cli.podman_storage,
        refresh_every: cli.runtime_refresh,
        kubelet_roots: cli.kubelet_cgroup_roots,
    })?;
    // Before attaching: from the ready line on, a signal must mean a clean stop.
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let nofile_warn = (cli.warn_nofile_ratio > 0.0).then_some(NofileWarn {
        ratio: cli.warn_nofile_ratio,
        floor: cli.warn_nofile_floor,
        interval: cli.warn_interval,
    });
    let file_max_ratio = cli.warn_file_max_ratio.unwrap_or(cli.warn_nofile_ratio);
    let mut file_max =
        (file_max_ratio > 0.0).then(|| FileMaxWatch::new(file_max_ratio, cli.warn_interval));
    let Capture {
        probes,
        mode,
        events,
        warnings,
        counters,
        io_uring,
        early_records,
        rate_buckets,
    } = probe::attach(&probe::Request {
        mode: cli.probe,
        ring_buffer_bytes: cli.ring_buffer_size,
        io_uring: !cli.no_io_uring,
        rate_limit: rate_limit::kernel_limit(cli.rate_limit, cli.rate_limit_burst),
        wakeup: Wakeup {
            interval_ns: cli.ring_wakeup_interval.as_nanos() as u64,
            max_bytes: u64::from(cli.ring_buffer_size / WAKE_WHEN_FULL_TO),
        },
        stacks: cli.stacks,
        nofile_warn,
    })?;
    // Events the kernel submitted without a wake-up just after one are picked up by a
    // second look this long after a drain that found events; it stops when one finds none.
    let recheck_after = (!cli.ring_wakeup_interval.is_zero()).then(|| 2 * cli.ring_wakeup_interval);

    let hub = match cli.hub.is_empty() {
        false => Some(HubShipper::start(HubOptions {
            urls: cli.hub,
            node: cli.node_name.unwrap_or_else(host_name),
            buffer_capacity: cli.hub_buffer as usize,
            buffer_bytes: cli.hub_buffer_bytes,
            kernel_release: probe::kernel_release(),
            probe_mode: mode.as_str(),
            credentials: hub_client::Credentials::from_options(
                cli.tls_ca,
                cli.tls_cert,
                cli.tls_key,
                cli.token_file,
            ),
        })?),
        true => None,
    };
    let counters = Arc::new(counters);
    let warning_counts = Arc::new(WarningCounts::default());
    let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics_addr = match cli.metrics_listen {
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
            Some(metrics::start(addr, cli.metrics_limits, collector, stop).await?)
        }
        None => None,
    };
    let sweep = rate_buckets.map(Sweep::new);
    let mut pipeline = Pipeline::new(
        filter,
        identity,
        EventWriter::new(format),
        sweep,
        hub,
        warning_counts.clone(),
        cli.stacks_cache_bytes as u64,
    );
    for record in &early_records {
        pipeline
            .handle(record)
            .context("writing an event to stdout")?;
    }
    // SAFETY: the ring buffer owns its map fd, which stays open and unchanged for as long
    // as the AsyncFd owns the ring buffer.
    let mut ring = unsafe { AsyncFd::register_with_interest(events, Interest::READABLE) }
        .map_err(|err| anyhow::anyhow!("polling the ring buffer: {err}"))?;
    // Sampled in a task of its own: a flood of warnings never holds up the events.
    let mut nofile = NofileSampling::start(warnings, warning_counts)?;
    let mut file_max_tick =
        skip_first_tick(file_max.as_ref().map(|_| interval(cli.warn_file_max_every))).await;

    let mut stats_tick = skip_first_tick(cli.stats_interval.map(interval)).await;
    let hub_every = pipeline.hub.as_ref().map(|_| HUB_COUNTERS_EVERY);
    let mut hub_tick = skip_first_tick(hub_every.map(interval)).await;
    // Both run only after activity: a recheck after a drain that found events, a sweep
    // of the rate limit's buckets while keys are left.
    let mut recheck: Option<Pin<Box<Sleep>>> = None;
    let mut sweep_due: Option<Pin<Box<Sleep>>> = None;
    let sweeping = cli.rate_limit > 0;
    let mut counter_errors = LogBudget::one_per(COUNTER_ERRORS_EVERY);
    print_ready(mode.as_str(), io_uring, metrics_addr).context("writing the ready line")?;

    let signal_name = loop {
        let found = tokio::select! {
            readable = ring.readable_mut() => {
                let mut guard = readable.context("waiting on the ring buffer")?;
                let found = drain(guard.get_inner_mut(), &mut pipeline)?;
                guard.clear_ready();
                found
            }
            _ = wait(&mut recheck), if recheck.is_some() => {
                recheck = None;
                drain(ring.get_mut(), &mut pipeline)?
            }
            _ = wait(&mut sweep_due), if sweep_due.is_some() => {
                let found = drain(ring.get_mut(), &mut pipeline)?;
                let left = pipeline.sweep_suppressed(monotonic_ns())?;
                sweep_due = left.then(|| Box::pin(sleep(rate_limit::QUIET)));
                found
            }
            Some(sampled) = nofile.completed.recv() => {
                handle_sampled(sampled, &mut pipeline)?;
                0
            }
            _ = tick(&mut file_max_tick), if file_max_tick.is_some() => {
                if let Some(warning) = file_max.as_mut().and_then(FileMaxWatch::sample) {
                    pipeline.warn(warning).context("writing a warning to stdout")?;
                }
                0
            }
            _ = sigint.recv() => break "SIGINT",
            _ = sigterm.recv() => break "SIGTERM",
            _ = tick(&mut stats_tick), if stats_tick.is_some() => {
                if let Some(snapshot) = snapshot(&counters, &pipeline, &mut counter_errors) {
                    snapshot.print(counters_format, "interval");
                }
                0
            }
            _ = tick(&mut hub_tick), if hub_tick.is_some() => {
                let snapshot = snapshot(&counters, &pipeline, &mut counter_errors);
                if let (Some(hub), Some(snapshot)) = (pipeline.hub.as_mut(), snapshot) {
                    hub.sync_counters(&snapshot);
                }
                0
            }
        };
        if found > 0 {
            if let Some(after) = recheck_after {
                recheck.get_or_insert_with(|| Box::pin(sleep(after)));
            }
            if sweeping {
                sweep_due.get_or_insert_with(|| Box::pin(sleep(rate_limit::QUIET)));
            }
        }
    };

    tracing::info!("{signal_name} received; detaching {} probes", mode.as_str());
    drop(probes);
    tokio::time::sleep(DETACH_GRACE).await;
    drain(ring.get_mut(), &mut pipeline)?;
    // Detached: no program touches the buckets any more, so every pending count is taken.
    pipeline.sweep_suppressed(u64::MAX)?;
    for sampled in nofile.finish().await {
        handle_sampled(sampled, &mut pipeline)?;
    }
    // Never skipped for the rate limit of the log: the last chance to say so.
    let last = snapshot(
        &counters,
        &pipeline,
        &mut LogBudget::one_per(Duration::ZERO),
    );
    if let Some(last) = &last {
        last.print(counters_format, "final");
    }
    if let Some(mut hub) = pipeline.hub.take() {
        if let Some(last) = &last {
            hub.sync_counters(last);
        }
        hub.shutdown().await;
    }
    let _ = metrics_stop.send(());
    Ok(())
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

/// An interval's first tick is immediate; consume it so the first report comes after one
/// period.
async fn skip_first_tick(mut timer: Option<Interval>) -> Option<Interval> {
    if let Some(timer) = timer.as_mut() {
        timer.tick().await;
    }
    timer
}

async fn wait(timer: &mut Option<Pin<Box<Sleep>>>) {
    match timer {
        Some(timer) => timer.await,
        None => std::future::pending().await,
    }
}

async fn tick(timer: &mut Option<Interval>) {
    match timer {
        Some(timer) => {
            timer.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
