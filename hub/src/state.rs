//! The state every request handler shares: the store's writer (behind a mutex) and reader
//! (used from blocking threads), the fan-out, the connected-tapper registry, settings and
//! the shutdown signal.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{Semaphore, watch};

use tapper_proto::v1::{Event, LossNotice};

use crate::{
    alerts::Alerting,
    error::HubError,
    fanout::Fanout,
    metrics::HubMetrics,
    store::{Reader, Store, StoreError, Writer},
    tappers::Connected,
};

/// Tunables from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Queue length per subscriber before it lags.
    pub subscriber_queue: usize,
    /// A subscriber whose queue stays full this long is dropped.
    pub subscriber_stall_timeout: Duration,
    /// Subscribe streams open at once, at most.
    pub max_subscribers: usize,
}

/// Shared hub state.
pub struct HubState {
    writer: Mutex<Box<dyn Writer>>,
    reader: Arc<dyn Reader>,
    pub fanout: Arc<Fanout>,
    pub connected: Connected,
    /// One permit per open Subscribe stream.
    pub subscriber_slots: Arc<Semaphore>,
    pub settings: Settings,
    /// What ingest counts for `/metrics`.
    pub metrics: HubMetrics,
    /// The alert rules, when `--alert-rules` gave some.
    pub alerts: Option<Arc<Alerting>>,
    shutdown: watch::Receiver<bool>,
}

impl HubState {
    pub fn new(
        store: Store,
        settings: Settings,
        observers: (HubMetrics, Option<Arc<Alerting>>),
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        let (metrics, alerts) = observers;
        Arc::new(Self {
            writer: Mutex::new(store.writer),
            reader: store.reader,
            fanout: Arc::new(Fanout::new(settings.subscriber_stall_timeout)),
            connected: Connected::default(),
            subscriber_slots: Arc::new(Semaphore::new(settings.max_subscribers)),
            settings,
            metrics,
            alerts,
            shutdown,
        })
    }

    /// After a commit of events (`took` long): counted, and offered to the alert rules.
    pub fn events_committed(&self, events: &[Event], took: Duration) {
        self.metrics.events_committed(events, took);
        if let Some(alerts) = &self.alerts {
            alerts.observe(events);
        }
    }

    /// After a commit of a loss record (`took` long): counted.
    pub fn loss_committed(&self, loss: &LossNotice, took: Duration) {
        self.metrics.loss_committed(loss, took);
    }

    /// Runs `f` with the store's writer (and fan-out) on a blocking thread. Publishing from
    /// inside `f`, while the writer is locked, keeps subscribers in hub_seq order.
    pub async fn with_writer<T, F>(self: &Arc<Self>, f: F) -> Result<T, HubError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Writer, &Fanout) -> Result<T, StoreError> + Send + 'static,
    {
        let this = self.clone();
        blocking(move || {
            let mut writer = this.writer.lock().unwrap_or_else(|e| e.into_inner());
            f(writer.as_mut(), &this.fanout)
        })
        .await
    }

    /// Runs `f` with the store's reader on a blocking thread, without waiting for the writer.
    pub async fn with_reader<T, F>(&self, f: F) -> Result<T, HubError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Reader) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = self.reader.clone();
        blocking(move || f(reader.as_ref())).await
    }

    /// Resolves when the hub starts shutting down.
    pub fn shutting_down(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }
}

/// Runs a store call on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, HubError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| HubError::ShuttingDown)?
        .map_err(HubError::from)
}
