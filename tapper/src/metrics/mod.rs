//! The tapper's `/metrics` (`--metrics-listen`): the kernel's counters read at each scrape,
//! the hub reporter's state, and build info. Labels stay low-cardinality: errno and reason.

use std::{
    fmt,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use hub_client::ReporterHandle;
use metrics_http::{ConnectionLimits, MetricsEndpoint};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge, info::Info},
    registry::Registry,
};
use tapper_logging::LogBudget;

use crate::{
    counters::{KernelCounters, UserCounters},
    warnings::WarningCounts,
};

/// `reason` values of `tapper_events_dropped_total`; each is a place that really drops.
/// (The rate limit drops nothing: its failures are in `tapper_events_suppressed_total`.)
const KERNEL_RING_FULL: &str = "kernel_ring_full";
const REPORTER_BUFFER_FULL: &str = "reporter_buffer_full";
const HUB_REJECTED: &str = "hub_rejected";
/// The one `reason` of `tapper_events_suppressed_total`.
const RATE_LIMITED: &str = "rate_limited";

/// At most one log line per this interval about a scrape that could not read the kernel.
const READ_ERRORS_EVERY: Duration = Duration::from_secs(10);

/// Reads everything at scrape time, so a scrape always sees the kernel's exact counts.
pub struct TapperCollector {
    kernel: Arc<KernelCounters>,
    read_errors: Mutex<LogBudget>,
    hub: Option<ReporterHandle>,
    warnings: Arc<WarningCounts>,
    probe: &'static str,
}

impl fmt::Debug for TapperCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapperCollector")
            .field("probe", &self.probe)
            .field("hub", &self.hub.is_some())
            .finish()
    }
}

/// Binds `addr` (logging the bound address) and serves the tapper's metrics until `stop`,
/// holding connections within `limits`.
pub async fn start(
    addr: SocketAddr,
    limits: ConnectionLimits,
    collector: TapperCollector,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<SocketAddr> {
    let endpoint = MetricsEndpoint::bind(addr, limits).await?;
    let local = endpoint.local_addr();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collector));
    tokio::spawn(endpoint.serve(registry, stop));
    Ok(local)
}

impl TapperCollector {
    pub fn new(
        kernel: Arc<KernelCounters>,
        hub: Option<ReporterHandle>,
        warnings: Arc<WarningCounts>,
        probe: &'static str,
    ) -> Self {
        Self {
            kernel,
            read_errors: Mutex::new(LogBudget::one_per(READ_ERRORS_EVERY)),
            hub,
            warnings,
            probe,
        }
    }

    /// The help of `tapper_hub_connected`, naming the hub in use of the `--hub` list.
    fn hub_connected_help(&self) -> String {
        let (hub, of) = self
            .hub
            .as_ref()
            .map_or(("", 0), |r| (r.hub(), r.hubs().len()));
        format!(
            "1 while a Report stream to a hub is open; the hub in use (or tried next) of the \
             {of} configured: {hub}"
        )
    }
}

type Labels<'a> = [(&'static str, &'a str)];

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: &[(&Labels<'_>, u64)],
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: i64) -> fmt::Result {
    let family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(family)
}

impl Collector for TapperCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        // A map that cannot be read fails the scrape rather than report wrong numbers.
        let kernel = self
            .kernel
            .snapshot(UserCounters::default())
            .map_err(|err| {
                let due = self.read_errors.lock().map(|mut log| log.due());
                if let Ok(Some(unlogged)) = due {
                    tracing::warn!(unlogged, "metrics: reading the kernel counters: {err:#}");
                }
                fmt::Error
            })?;
        counter(
            &mut encoder,
            "tapper_socket_calls",
            "socket() calls seen by the kernel probes",
            &[(&[], kernel.calls)],
        )?;
        let by_errno: Vec<_> = kernel
            .errnos
            .iter()
            .map(|(name, n)| ([("errno", name.as_str())], *n))
            .collect();
        let by_errno: Vec<(&Labels<'_>, u64)> =
            by_errno.iter().map(|(l, n)| (&l[..], *n)).collect();
        counter(
            &mut encoder,
            "tapper_socket_failures",
            "socket() calls that returned an error, by errno",
            &by_errno,
        )?;
        let mut dropped = vec![(&[("reason", KERNEL_RING_FULL)][..], kernel.drops)];
        let hub = self.hub.as_ref().map(ReporterHandle::stats);
        if let Some(hub) = &hub {
            dropped.push((&[("reason", REPORTER_BUFFER_FULL)], hub.dropped_events));
            dropped.push((&[("reason", HUB_REJECTED)], hub.rejected_events));
        }
        counter(
            &mut encoder,
            "tapper_events_dropped",
            "failures whose event was lost, by where: kernel_ring_full, reporter_buffer_full, \
             hub_rejected",
            &dropped,
        )?;
        counter(
            &mut encoder,
            "tapper_events_suppressed",
            "failures the in-kernel rate limit (--rate-limit) kept out of the event stream, \
             by reason (rate_limited); not lost: each is counted in a later event's suppressed \
             field",
            &[(&[("reason", RATE_LIMITED)], kernel.suppressed)],
        )?;
        let by_kind = self.warnings.by_kind();
        let by_kind: Vec<_> = by_kind
            .iter()
            .map(|(k, n)| ([("kind", k.as_str())], *n))
            .collect();
        let by_kind: Vec<(&Labels<'_>, u64)> = by_kind.iter().map(|(l, n)| (&l[..], *n)).collect();
        counter(
            &mut encoder,
            "tapper_warnings",
            "warnings of descriptor exhaustion ahead written, by kind: nofile, file-max",
            &by_kind,
        )?;
        counter(
            &mut encoder,
            "tapper_warnings_skipped",
            "nofile warnings skipped because too many were waiting to be written at once",
            &[(&[], self.warnings.skipped())],
        )?;
        if let Some(hub) = hub {
            gauge(
                &mut encoder,
                "tapper_hub_connected",
                &self.hub_connected_help(),
                i64::from(hub.connected),
            )?;
            gauge(
                &mut encoder,
                "tapper_hub_refused",
                "1 while the hub refuses this tapper's token or certificate (which no retry \
                 fixes; the log says why); retried every 2 minutes with the files read again",
                i64::from(hub.refused),
            )?;
            gauge(
                &mut encoder,
                "tapper_hub_unacked_events",
                "events kept for the hub until it acknowledges them",
                hub.buffered_events as i64,
            )?;
        }
        let build = Info::new([
            ("version", env!("CARGO_PKG_VERSION")),
            ("probe", self.probe),
        ]);
        build.encode(encoder.encode_descriptor(
            "tapper_build",
            "the tapper's version and probe mode",
            None,
            build.metric_type(),
        )?)
    }
}
