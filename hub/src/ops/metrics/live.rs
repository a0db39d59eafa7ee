//! Gauges read from the running hub at each scrape: connected tappers, open subscriptions
//! and the items subscribers missed.

use std::{fmt, sync::Weak};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};

/// What the live gauges read from the running hub at each scrape.
pub trait LiveCounts: Send + Sync {
    /// Tapper instances with a Report stream open.
    fn tappers_connected(&self) -> usize;
    /// Subscribe streams open.
    fn subscribers_open(&self) -> usize;
    /// Items subscribers missed because their queue was full, since start.
    fn subscriber_lagged_total(&self) -> u64;
}

/// Holds the hub weakly: the registry must not keep a stopped hub alive.
pub struct LiveGauges {
    hub: Weak<dyn LiveCounts>,
}

impl LiveGauges {
    pub fn new(hub: Weak<dyn LiveCounts>) -> Self {
        Self { hub }
    }
}

impl fmt::Debug for LiveGauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LiveGauges")
    }
}

fn encode_one(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: impl EncodeMetric,
) -> fmt::Result {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for LiveGauges {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let Some(hub) = self.hub.upgrade() else {
            return Ok(());
        };
        encode_one(
            &mut encoder,
            "hub_tappers_connected",
            "tapper instances with a Report stream open",
            ConstGauge::new(hub.tappers_connected() as i64),
        )?;
        encode_one(
            &mut encoder,
            "hub_subscribers",
            "Subscribe streams open",
            ConstGauge::new(hub.subscribers_open() as i64),
        )?;
        encode_one(
            &mut encoder,
            "hub_subscriber_lagged",
            "items subscribers missed because their queue was full (each told in a lagged notice)",
            ConstCounter::new(hub.subscriber_lagged_total()),
        )
    }
}
