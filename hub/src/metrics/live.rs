//! Gauges read from the running hub at each scrape: connected tappers, open subscriptions
//! and the items subscribers missed.

use std::{
    fmt,
    sync::{Arc, Weak},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};

use crate::state::HubState;

/// Holds the hub weakly: the registry must not keep a stopped hub alive.
pub struct LiveGauges {
    state: Weak<HubState>,
}

impl LiveGauges {
    pub fn new(state: Weak<HubState>) -> Self {
        Self { state }
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
        let Some(state) = self.state.upgrade() else {
            return Ok(());
        };
        let state: Arc<HubState> = state;
        encode_one(
            &mut encoder,
            "hub_tappers_connected",
            "tapper instances with a Report stream open",
            ConstGauge::new(state.connected.len() as i64),
        )?;
        let open = state.settings.max_subscribers - state.subscriber_slots.available_permits();
        encode_one(
            &mut encoder,
            "hub_subscribers",
            "Subscribe streams open",
            ConstGauge::new(open as i64),
        )?;
        encode_one(
            &mut encoder,
            "hub_subscriber_lagged",
            "items subscribers missed because their queue was full (each told in a lagged notice)",
            ConstCounter::new(state.fanout.skipped_total()),
        )
    }
}
