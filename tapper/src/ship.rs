//! Ships events to a hub through the hub-client reporter, turns kernel ring-buffer drops
//! into loss records, and sends counters.

use std::time::Duration;

use hub_client::{
    Credentials, Reporter, ReporterConfig, ReporterHandle,
    proto::{
        self,
        v1::{Counters, Event, Warning},
    },
};

use crate::counters::Snapshot;

/// Why the kernel lost failures: the ring buffer had no room for their events.
pub const REASON_RING_BUFFER_FULL: &str = "kernel ring buffer full";
/// How long shutdown waits for the hub to acknowledge what is buffered.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

pub struct HubShipper {
    reporter: ReporterHandle,
    /// Kernel drops already reported as loss records.
    drops_reported: u64,
}

pub struct HubOptions {
    /// Hub addresses, tried in order.
    pub urls: Vec<String>,
    pub node: String,
    pub buffer_capacity: usize,
    pub buffer_bytes: usize,
    pub max_sends_per_second: u32,
    pub max_linger: Duration,
    pub kernel_release: String,
    pub probe_mode: &'static str,
    pub credentials: Credentials,
}

impl HubShipper {
    /// Starts the reporter; it connects (and reconnects) in the background.
    pub fn start(options: HubOptions) -> anyhow::Result<Self> {
        let mut config = ReporterConfig::new(options.urls.join(","), options.node);
        config.kernel_release = options.kernel_release;
        config.probe_mode = options.probe_mode.into();
        config.agent_version = concat!("tapper ", env!("CARGO_PKG_VERSION")).into();
        config.buffer_capacity = options.buffer_capacity;
        config.buffer_bytes = options.buffer_bytes;
        config.max_sends_per_second = options.max_sends_per_second;
        config.linger = options.max_linger;
        config.credentials = options.credentials;
        let reporter = Reporter::spawn(config)?;
        tracing::info!(
            node = reporter.node(),
            instance = reporter.instance_id(),
            hubs = ?reporter.hubs(),
            "shipping events to the hub (the first that answers, in order)"
        );
        Ok(Self {
            reporter,
            drops_reported: 0,
        })
    }

    /// The reporter, for reading its state (the metrics endpoint).
    pub fn reporter(&self) -> ReporterHandle {
        self.reporter.clone()
    }

    /// Ships an event: its own fields, then its process's encoded part (see
    /// `event::process_part`).
    pub fn ship(&self, event: Event, process_part: &[u8]) {
        self.reporter.send_event_with(event, process_part);
    }

    pub fn ship_warning(&self, warning: Warning) {
        self.reporter.send_warning(warning);
    }

    /// Sends the counters, and a loss record for kernel drops not yet reported.
    pub fn sync_counters(&mut self, snapshot: &Snapshot) {
        let new_drops = snapshot.drops.saturating_sub(self.drops_reported);
        if new_drops > 0 {
            self.reporter
                .report_loss(new_drops, REASON_RING_BUFFER_FULL);
            self.drops_reported = snapshot.drops;
        }
        self.reporter.send_counters(Counters {
            ts: Some(proto::timestamp_from_unix_nanos(crate::clock::now_unix_ns())),
            calls: snapshot.calls,
            failures: snapshot.failures,
            drops: snapshot.drops,
            misses: snapshot.misses,
            per_errno: snapshot.errnos.clone().into_iter().collect(),
        });
    }

    /// The state of the link for the status line: `connected`, `refused` (the hub refused
    /// the token or certificate, see the ERROR logged) or `down` (connecting, or between
    /// attempts).
    pub fn link(&self) -> &'static str {
        let stats = self.reporter.stats();
        match (stats.connected, stats.refused) {
            (true, _) => "connected",
            (false, true) => "refused",
            (false, false) => "down",
        }
    }

    /// Waits (bounded) until the hub acknowledged everything, and says how it went: what
    /// was not delivered, and why.
    pub async fn shutdown(self) {
        let hubs = self.reporter.hubs().join(",");
        let refusal = self.reporter.refusal();
        let stats = self.reporter.shutdown(FLUSH_TIMEOUT).await;
        let why = match refusal {
            Some(reason) => format!("the hub refused this tapper: {reason}"),
            None if stats.connects == 0 => {
                "the hub was never reached: check --hub and that the hub is up".to_owned()
            }
            None => format!(
                "the hub did not acknowledge them within {}s (is it still reachable?)",
                FLUSH_TIMEOUT.as_secs()
            ),
        };
        match (stats.last_seq, stats.acked_seq == stats.last_seq) {
            (0, _) if stats.connects == 0 => {
                tracing::warn!(%hubs, "no event to deliver, but {why}")
            }
            (0, _) => tracing::info!("no event to deliver"),
            (last, true) => tracing::info!(
                acked = last,
                messages = stats.messages_sent,
                "the hub acknowledged every event and loss record (seq 1 to {last})"
            ),
            (last, false) => tracing::warn!(
                acked = stats.acked_seq,
                last,
                undelivered_events = stats.buffered_events,
                %hubs,
                "stopping with {} events not delivered (seq {} to {last}): {why}",
                stats.buffered_events,
                stats.acked_seq + 1
            ),
        }
        if stats.dropped_events > 0 {
            tracing::warn!(
                dropped = stats.dropped_events,
                "events dropped while the hub was slow or away (reported to it as losses)"
            );
        }
    }
}
