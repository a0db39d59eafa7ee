//! The reporter's configuration: where the hubs are, who we are, and the buffer's bounds.

use std::time::Duration;

use tapper_proto::limits::{MAX_INSTANCE_ID_BYTES, MAX_NODE_BYTES};

use crate::{
    buffer::Limits, connect, credentials::Credentials, error::ClientError, hubs::parse_hub_list,
};

/// How to reach the hubs and who we are. Build it with [`ReporterConfig::new`] and adjust
/// the public fields.
#[derive(Debug, Clone)]
pub struct ReporterConfig {
    /// Hub addresses in the order they are tried, e.g. `https://10.0.0.5:50051` (a bare
    /// `host:port` gets `http://`). The reporter starts with the first; when a connect
    /// fails or a stream breaks it moves on to the next (wrapping around). Only hubs that
    /// share one database keep dedup and acks exact across a move.
    pub hubs: Vec<String>,
    /// Node name (the tapper's `--node-name`, by default the host name).
    pub node: String,
    /// Unique per run of the tapper; seq numbers restart at 1 for each instance. Default:
    /// random.
    pub instance_id: String,
    /// `uname -r`.
    pub kernel_release: String,
    /// "kprobe" or "tracepoint".
    pub probe_mode: String,
    /// Free text, e.g. "tapper 0.1.0".
    pub agent_version: String,
    /// Most un-acked events kept for (re-)sending; beyond that events are dropped and
    /// reported as a "reporter buffer full" loss record. Default 65536.
    pub buffer_capacity: usize,
    /// Most encoded bytes of un-acked events kept; beyond that events are dropped like
    /// beyond [`buffer_capacity`](Self::buffer_capacity). Default 64 MiB.
    pub buffer_bytes: usize,
    /// Most events per EventBatch message. Default 2,000.
    pub max_batch: usize,
    /// Most encoded bytes per EventBatch message (an event bigger than this goes alone).
    /// Default 1 MiB, well below the hub's default message limit of 4 MiB.
    pub max_batch_bytes: usize,
    /// Most messages per second under load: a message goes at most every 1/this of a
    /// second, so batches grow with the event rate; the first event after a quiet spell
    /// goes at once. 0: no bound. Default 100.
    pub max_sends_per_second: u32,
    /// Longest time an event waits for others to share its message (the latency budget):
    /// when it is shorter than 1/[`max_sends_per_second`](Self::max_sends_per_second), it
    /// wins and sends per second go up. Default 20 ms.
    pub linger: Duration,
    /// Most messages sent and not yet acknowledged; beyond that the reporter waits for an
    /// ack, so under load batches grow instead of messages. Default 16 (as many as the hub
    /// reads ahead on one stream).
    pub max_in_flight: usize,
    /// First reconnect wait. Default 100 ms.
    pub backoff_initial: Duration,
    /// Longest reconnect wait. Default 10 s.
    pub backoff_max: Duration,
    /// The wait after every hub refused this reporter's token or certificate (which no
    /// retry fixes): the credentials are read again before the next try. Default 2 min.
    pub refused_retry: Duration,
    /// TCP connect timeout. Default 5 s.
    pub connect_timeout: Duration,
    /// TLS files and token. Default: none.
    pub credentials: Credentials,
}

impl ReporterConfig {
    /// Defaults for everything but the hubs and the node. `hubs` is one address or
    /// several separated by commas (`http://a:50051,http://b:50051`); they are checked by
    /// [`Reporter::spawn`](crate::Reporter::spawn).
    pub fn new(hubs: impl AsRef<str>, node: impl Into<String>) -> Self {
        Self {
            hubs: hubs.as_ref().split(',').map(str::to_owned).collect(),
            node: node.into(),
            instance_id: random_instance_id(),
            kernel_release: String::new(),
            probe_mode: String::new(),
            agent_version: concat!("hub-client ", env!("CARGO_PKG_VERSION")).into(),
            buffer_capacity: 65_536,
            buffer_bytes: 64 << 20,
            max_batch: 2_000,
            max_batch_bytes: 1 << 20,
            max_sends_per_second: 100,
            linger: Duration::from_millis(20),
            max_in_flight: 16,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            refused_retry: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(5),
            credentials: Credentials::default(),
        }
    }

    /// Checks every value; returns the hub addresses (with their schemes) and the buffer's
    /// limits.
    pub(crate) fn validate(&self) -> Result<(Vec<String>, Limits), ClientError> {
        let hubs = parse_hub_list(&self.hubs)?;
        // Files are read now too: a typo fails at start, not in every reconnect.
        for hub in &hubs {
            connect::endpoint(hub, self.connect_timeout, &self.credentials)?;
        }
        self.credentials.bearer()?;
        if self.node.is_empty() {
            return Err(ClientError::InvalidConfig("node is empty".into()));
        }
        if self.instance_id.is_empty() {
            return Err(ClientError::InvalidConfig("instance_id is empty".into()));
        }
        // The hub's limits: it would refuse every Hello beyond them.
        if self.node.len() > MAX_NODE_BYTES || self.instance_id.len() > MAX_INSTANCE_ID_BYTES {
            return Err(ClientError::InvalidConfig(format!(
                "node is over {MAX_NODE_BYTES} bytes or instance_id over {MAX_INSTANCE_ID_BYTES}"
            )));
        }
        let limits = Limits {
            events: self.buffer_capacity,
            bytes: self.buffer_bytes,
            batch_events: self.max_batch,
            batch_bytes: self.max_batch_bytes,
        };
        if [
            limits.events,
            limits.bytes,
            limits.batch_events,
            limits.batch_bytes,
            self.max_in_flight,
        ]
        .contains(&0)
        {
            return Err(ClientError::InvalidConfig(
                "buffer_capacity, buffer_bytes, max_batch, max_batch_bytes and max_in_flight \
                 must be at least 1"
                    .into(),
            ));
        }
        Ok((hubs, limits))
    }

    /// The shortest time between two messages under load.
    pub(crate) fn send_interval(&self) -> Duration {
        match self.max_sends_per_second {
            0 => Duration::ZERO,
            n => Duration::from_secs(1) / n,
        }
    }
}

/// A random 128-bit instance id in hex.
pub fn random_instance_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
