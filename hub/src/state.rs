//! The state every request handler shares: the store (behind a mutex, used from blocking
//! threads), the fan-out, the connected-tapper registry, settings and the shutdown signal.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{Semaphore, watch};

use crate::{
    error::HubError,
    fanout::Fanout,
    store::{Store, StoreError},
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
    store: Mutex<Store>,
    pub fanout: Arc<Fanout>,
    pub connected: Connected,
    /// One permit per open Subscribe stream.
    pub subscriber_slots: Arc<Semaphore>,
    pub settings: Settings,
    shutdown: watch::Receiver<bool>,
}

impl HubState {
    pub fn new(store: Store, settings: Settings, shutdown: watch::Receiver<bool>) -> Arc<Self> {
        Arc::new(Self {
            store: Mutex::new(store),
            fanout: Arc::new(Fanout::new(settings.subscriber_stall_timeout)),
            connected: Connected::default(),
            subscriber_slots: Arc::new(Semaphore::new(settings.max_subscribers)),
            settings,
            shutdown,
        })
    }

    /// Runs `f` with the store (and fan-out) on a blocking thread. Publishing from inside
    /// `f`, while the store is locked, keeps subscribers in hub_seq order.
    pub async fn with_store<T, F>(self: &Arc<Self>, f: F) -> Result<T, HubError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store, &Fanout) -> Result<T, StoreError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = this.store.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut store, &this.fanout)
        })
        .await
        .map_err(|_| HubError::ShuttingDown)?
        .map_err(HubError::from)
    }

    /// Resolves when the hub starts shutting down.
    pub fn shutting_down(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }
}
