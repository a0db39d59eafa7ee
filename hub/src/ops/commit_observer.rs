//! What each commit tells the hub's observers, on the writer thread: the metrics count it,
//! the alert rules evaluate it.

use std::{sync::Arc, time::Duration};

use tapper_proto::v1::{Event, LossNotice, Warning};

use crate::ops::{alerts::Alerting, metrics::HubMetrics};

/// Told of what each commit stored, on the writer thread, before it is published.
#[derive(Clone)]
pub struct CommitObserver {
    metrics: HubMetrics,
    alerts: Option<Arc<Alerting>>,
}

impl CommitObserver {
    pub fn new(metrics: HubMetrics, alerts: Option<Arc<Alerting>>) -> Self {
        Self { metrics, alerts }
    }

    /// What the writer thread calls with each group's transaction time.
    pub fn commit_timer(&self) -> impl Fn(Duration) + Send + 'static {
        self.metrics.commit_observer()
    }

    /// New events: counted, and offered to the alert rules.
    pub fn events_committed(&self, events: &[Event]) {
        self.metrics.events_committed(events);
        if let Some(alerts) = &self.alerts {
            alerts.observe(events);
        }
    }

    /// A new loss record: counted.
    pub fn loss_committed(&self, loss: &LossNotice) {
        self.metrics.loss_committed(loss);
    }

    /// A new warning: counted, and offered to the alert rules.
    pub fn warning_committed(&self, warning: &Warning) {
        self.metrics.warning_committed(warning);
        if let Some(alerts) = &self.alerts {
            alerts.observe_warning(warning);
        }
    }
}
