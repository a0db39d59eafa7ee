//! The state every request handler shares: the store's writer (on its own thread, with
//! group commit) and reader (used from blocking threads), the fan-out, the connected-tapper
//! registry, settings and the shutdown signal.

use std::{sync::Arc, time::Duration};

use tokio::sync::{Semaphore, watch};

use crate::{
    error::HubError,
    ingest::{
        connected::Connected,
        db_tail::Tail,
        fanout::{Fanout, QueueBound, Subscription},
        filter::Filter,
        group_commit::GroupWriter,
    },
    ops::{commit_observer::CommitObserver, metrics::LiveCounts},
    store::{Reader, Store, StoreError, Writer},
};

/// Tunables from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Queue length per subscriber before it lags.
    pub subscriber_queue: usize,
    /// Encoded bytes queued per subscriber before it lags.
    pub subscriber_queue_bytes: usize,
    /// A subscriber whose queue stays full this long is dropped.
    pub subscriber_stall_timeout: Duration,
    /// Subscribe streams open at once, at most.
    pub max_subscribers: usize,
    /// Encoded bytes of Report messages read and not yet committed, at most.
    pub ingest_queue_bytes: usize,
}

/// Shared hub state.
pub struct HubState {
    pub writer: GroupWriter,
    reader: Arc<dyn Reader>,
    pub fanout: Arc<Fanout>,
    /// With a store shared by replicas, the live stream's source: the store's tail.
    tail: Option<Arc<Tail>>,
    pub connected: Connected,
    /// One permit per open Subscribe stream.
    pub subscriber_slots: Arc<Semaphore>,
    /// One permit per encoded byte of a Report message read and not yet committed.
    pub ingest_budget: Arc<Semaphore>,
    pub settings: Settings,
    /// Told of each commit: the metrics and the alert rules.
    observer: CommitObserver,
    shutdown: watch::Receiver<bool>,
}

impl HubState {
    /// Starts the store's writer thread and the fan-out's; only that can fail.
    pub fn new(
        store: Store,
        settings: Settings,
        observer: CommitObserver,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<Arc<Self>> {
        let fanout = Arc::new(Fanout::new(settings.subscriber_stall_timeout)?);
        let last_hub_seq = store.last_hub_seq();
        let (writer_fanout, tail) = match store.changes {
            // Shared store: subscribers get what the tail reads (every replica's commits);
            // this hub's own commits are published nowhere else.
            Some(changes) => {
                let tail = Tail::spawn(
                    last_hub_seq,
                    fanout.clone(),
                    store.reader.clone(),
                    changes,
                    shutdown.clone(),
                )?;
                let unread = Arc::new(Fanout::new(settings.subscriber_stall_timeout)?);
                (unread, Some(tail))
            }
            None => (fanout.clone(), None),
        };
        let writer = GroupWriter::spawn(store.writer, writer_fanout, observer.commit_timer())?;
        Ok(Arc::new(Self {
            writer,
            reader: store.reader,
            fanout,
            tail,
            connected: Connected::default(),
            subscriber_slots: Arc::new(Semaphore::new(settings.max_subscribers)),
            ingest_budget: Arc::new(Semaphore::new(settings.ingest_queue_bytes)),
            settings,
            observer,
            shutdown,
        }))
    }

    /// What the writer thread tells of each commit: to the metrics and the alert rules.
    pub fn observer(&self) -> CommitObserver {
        self.observer.clone()
    }

    /// Runs `f` with the store's writer (and fan-out) on the writer thread, alone: every
    /// commit queued before it is stored and published, none after it yet.
    pub async fn with_writer<T, F>(&self, f: F) -> Result<T, HubError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Writer, &Fanout) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.alone(f).await
    }

    /// Registers a live subscriber (when `follow`) and returns the seam: records up to it
    /// come from the store, later ones through the subscription.
    pub async fn subscribe_live(
        self: &Arc<Self>,
        filter: Filter,
        follow: bool,
    ) -> Result<(u64, Option<Subscription>), HubError> {
        let queue = QueueBound {
            items: self.settings.subscriber_queue,
            bytes: self.settings.subscriber_queue_bytes,
        };
        if let Some(tail) = &self.tail {
            return Ok(if follow {
                let (seam, live) = tail.subscribe(filter, queue);
                (seam, Some(live))
            } else {
                (tail.position(), None)
            });
        }
        // On the writer thread: everything committed so far is handed to the fan-out
        // already, and the new subscriber gets exactly what is handed over after it.
        let st = self.clone();
        self.with_writer(move |s, _| {
            let live = follow.then(|| st.fanout.subscribe(filter, queue));
            Ok((s.last_hub_seq(), live))
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

impl LiveCounts for HubState {
    fn tappers_connected(&self) -> usize {
        self.connected.len()
    }

    fn subscribers_open(&self) -> usize {
        self.settings.max_subscribers - self.subscriber_slots.available_permits()
    }

    fn subscriber_lagged_total(&self) -> u64 {
        self.fanout.skipped_total()
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
