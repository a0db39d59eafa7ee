//! Starting the tapper: the flags become the probes' request, the hub shipper, the
//! metrics endpoint, the pipeline and the timer set, then the ready line is printed.

use std::{
    io::{IsTerminal, Write},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use tapper_common::Wakeup;
use tapper_logging::LogBudget;
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
    sync::oneshot,
};

use super::{Agent, COUNTER_ERRORS_EVERY};
use crate::{
    cli::{CaptureArgs, Cli, HubArgs, MetricsArgs, OutputArgs, WarnArgs},
    counters::CountersFormat,
    identity::IdentityResolver,
    metrics::{self, TapperCollector},
    output::{EventWriter, Format},
    pipeline::Pipeline,
    probe::{self, Capture, NofileWarn, ProbeMode},
    rate_limit::{self, Sweep},
    ship::{HubOptions, HubShipper},
    timers::{Due, Timers},
    warnings::{FileMaxWatch, NofileSampling, WarningCounts},
};

/// The kernel wakes the tapper at once when the ring is fuller than 1/this.
const WAKE_WHEN_FULL_TO: u32 = 8;
/// How often counters (and kernel drops, as losses) go to the hub.
const HUB_COUNTERS_EVERY: Duration = Duration::from_secs(5);

impl Agent {
    /// Attaches the probes, starts every helper (identity, hub, metrics, sampling) and
    /// prints the ready line.
    pub(super) async fn start(cli: Cli) -> anyhow::Result<Self> {
        let (format, counters_format) = output_formats(&cli.output);
        // Before attaching, so that a wrong runtime path or a missing certificate or token
        // file stops the tapper at once.
        let identity = IdentityResolver::start(cli.identity)?;
        let credentials = hub_credentials(&cli.hub)?;
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
            rate_maps,
        } = attach(capture, &cli.warn)?;
        let node = cli.hub.node_name.clone().unwrap_or_else(host_name);
        let hub = start_hub(cli.hub, node.clone(), credentials, mode)?;
        let counters = Arc::new(counters);
        let warning_counts = Arc::new(WarningCounts::default());
        let (metrics_stop, metrics_stopped) = oneshot::channel::<()>();
        let collector = TapperCollector::new(
            counters.clone(),
            hub.as_ref().map(HubShipper::reporter),
            warning_counts.clone(),
            mode.as_str(),
        );
        let metrics_addr = start_metrics(cli.metrics, collector, metrics_stopped).await?;
        let mut pipeline = Pipeline::new(
            cli.filter,
            identity,
            EventWriter::new(format, node),
            rate_maps.map(Sweep::new),
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

        let timers = periodic_timers(
            file_max.as_ref().map(|_| cli.warn.warn_file_max_every),
            cli.output.stats_interval,
            pipeline.hub.is_some(),
        );
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

/// Serves the metrics endpoint if `--metrics-listen` asks for it, until `stopped` fires;
/// returns its bound address.
async fn start_metrics(
    metrics: MetricsArgs,
    collector: TapperCollector,
    stopped: oneshot::Receiver<()>,
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(addr) = metrics.metrics_listen else {
        return Ok(None);
    };
    let stop = async {
        let _ = stopped.await;
    };
    Ok(Some(
        metrics::start(addr, metrics.limits, collector, stop).await?,
    ))
}

/// The periodic work, each first due one period from now: file-max samples, counters on
/// stderr, counters to the hub.
fn periodic_timers(
    file_max_every: Option<Duration>,
    stats_every: Option<Duration>,
    hub: bool,
) -> Timers {
    let mut timers = Timers::default();
    if let Some(every) = file_max_every {
        timers.every(Due::FileMax, every);
    }
    if let Some(every) = stats_every {
        timers.every(Due::Stats, every);
    }
    if hub {
        timers.every(Due::HubCounters, HUB_COUNTERS_EVERY);
    }
    timers
}

/// The hub credentials the flags name, every file read once to check it.
fn hub_credentials(hub: &HubArgs) -> anyhow::Result<hub_client::Credentials> {
    let credentials = hub_client::Credentials::from_options(
        hub.tls_ca.clone(),
        hub.tls_cert.clone(),
        hub.tls_key.clone(),
        hub.token_file.clone(),
    );
    credentials.check(&hub.urls)?;
    Ok(credentials)
}

/// Starts shipping to the hubs, if any were given.
fn start_hub(
    hub: HubArgs,
    node: String,
    credentials: hub_client::Credentials,
    mode: ProbeMode,
) -> anyhow::Result<Option<HubShipper>> {
    if hub.urls.is_empty() {
        return Ok(None);
    }
    let shipper = HubShipper::start(HubOptions {
        urls: hub.urls,
        node,
        buffer_capacity: hub.hub_buffer as usize,
        buffer_bytes: hub.hub_buffer_bytes,
        max_sends_per_second: hub.hub_max_sends_per_second,
        max_linger: hub.hub_max_linger,
        kernel_release: probe::kernel_release(),
        probe_mode: mode.as_str(),
        credentials,
    })?;
    Ok(Some(shipper))
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
