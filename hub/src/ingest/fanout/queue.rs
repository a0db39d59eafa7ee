//! One subscriber's queue: bounded in items and in bytes. What does not fit is counted and
//! told in a `lagged` notice where it was skipped; a queue that stays full past the stall
//! timeout gets its subscriber evicted.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::{
    Notify,
    mpsc::{self, error::TrySendError},
};

use super::Encoded;
use crate::ingest::filter::Filter;

/// What travels through a subscriber's queue: committed items encoded once and shared.
#[derive(Debug, Clone)]
pub enum Item {
    Event(Arc<Encoded>),
    Loss(Arc<Encoded>),
    Warning(Arc<Encoded>),
    /// `n` items were skipped right here.
    Lagged(u64),
}

/// How much one subscriber's queue holds before it lags.
#[derive(Debug, Clone, Copy)]
pub struct QueueBound {
    /// Items queued at most.
    pub items: usize,
    /// Encoded bytes of the queued items at most; an item alone in the queue always fits.
    pub bytes: usize,
}

/// An item in a queue, with its encoded size (counted against the byte budget).
type Queued = (Item, usize);

/// A subscriber's backlog as the publisher sees it.
#[derive(Debug, Default)]
struct Lag {
    /// Items skipped and not yet reported.
    skipped: u64,
    /// When the queue was first found full, since the last successful send.
    full_since: Option<Instant>,
    /// Dropped for staying full too long: it gets nothing more.
    evicted: bool,
}

/// How [`Subscriber::offer`] went.
pub enum Offered {
    /// Queued, or skipped and counted: the subscriber stays.
    Kept,
    /// Its queue stayed full past the stall timeout: evicted now, it gets nothing more.
    Evicted,
}

/// One subscriber as the fan-out sees it.
pub struct Subscriber {
    pub id: u64,
    pub filter: Filter,
    /// Publications numbered up to this one happened before it subscribed.
    pub after: u64,
    tx: mpsc::Sender<Queued>,
    /// Encoded bytes queued now.
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    /// Locked by the publisher while it sends to this subscriber, and by the reader when it
    /// finds the queue empty, so a lagged notice is always placed exactly where the items
    /// were skipped.
    lag: Mutex<Lag>,
    /// Woken when the subscriber is evicted, so a reader blocked on its client notices.
    evicted: Notify,
}

/// Why an item was not queued.
enum Refused {
    Full,
    Closed,
}

impl Subscriber {
    /// A subscriber and the receiving end of its queue.
    pub fn new(
        id: u64,
        filter: Filter,
        after: u64,
        limit: QueueBound,
    ) -> (Arc<Self>, mpsc::Receiver<Queued>) {
        let (tx, rx) = mpsc::channel(limit.items.max(1));
        let sub = Arc::new(Self {
            id,
            filter,
            after,
            tx,
            queued_bytes: AtomicUsize::new(0),
            max_bytes: limit.bytes,
            lag: Mutex::new(Lag::default()),
            evicted: Notify::new(),
        });
        (sub, rx)
    }

    fn lag(&self) -> std::sync::MutexGuard<'_, Lag> {
        self.lag.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_evicted(&self) -> bool {
        self.lag().evicted
    }

    /// Queues `item` (of `bytes` encoded bytes), after the lagged notice of what was
    /// skipped before it; or counts it as skipped (adding to `skipped_total`).
    pub fn offer(
        &self,
        item: Item,
        bytes: usize,
        now: Instant,
        stall_timeout: Duration,
        skipped_total: &std::sync::atomic::AtomicU64,
    ) -> Offered {
        let mut lag = self.lag();
        if lag.evicted {
            return Offered::Kept;
        }
        // The notice of what was skipped goes only in front of an item that fits.
        let mut sent = if self.has_room_for(bytes) {
            Ok(())
        } else {
            Err(Refused::Full)
        };
        if sent.is_ok() && lag.skipped > 0 {
            sent = self.send(Item::Lagged(lag.skipped), 0);
            if sent.is_ok() {
                lag.skipped = 0;
            }
        }
        if sent.is_ok() {
            sent = self.send(item, bytes);
        }
        match sent {
            Ok(()) => {
                lag.full_since = None;
                Offered::Kept
            }
            Err(Refused::Closed) => Offered::Kept,
            Err(Refused::Full) => {
                lag.skipped += 1;
                skipped_total.fetch_add(1, Ordering::Relaxed);
                let since = *lag.full_since.get_or_insert(now);
                if now.duration_since(since) < stall_timeout {
                    return Offered::Kept;
                }
                lag.evicted = true;
                self.evicted.notify_one();
                Offered::Evicted
            }
        }
    }

    /// Whether `bytes` more fit in the byte budget (an item alone in the queue always
    /// does). Only the publisher adds, so the room it sees cannot shrink before it sends.
    fn has_room_for(&self, bytes: usize) -> bool {
        let queued = self.queued_bytes.load(Ordering::Acquire);
        queued == 0 || queued.saturating_add(bytes) <= self.max_bytes
    }

    /// Queues `item` if the queue has room for one more item.
    fn send(&self, item: Item, bytes: usize) -> Result<(), Refused> {
        // Counted before it is queued, so the reader never takes away more than was added.
        self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        self.tx.try_send((item, bytes)).map_err(|e| {
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            match e {
                TrySendError::Full(_) => Refused::Full,
                TrySendError::Closed(_) => Refused::Closed,
            }
        })
    }

    /// Takes `bytes` off the queue's count once an item left it.
    fn taken(&self, bytes: usize) {
        self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// What the next read of a subscription yields.
pub enum Next {
    Item(Item),
    /// The subscriber was dropped for being too slow; `skipped` items were not delivered
    /// since the last notice. Nothing follows.
    Evicted {
        skipped: u64,
    },
    Closed,
}

/// The receiving end of a subscriber's queue.
pub struct Receiver {
    rx: mpsc::Receiver<Queued>,
    sub: Arc<Subscriber>,
}

impl Receiver {
    pub fn new(rx: mpsc::Receiver<Queued>, sub: Arc<Subscriber>) -> Self {
        Self { rx, sub }
    }

    pub fn id(&self) -> u64 {
        self.sub.id
    }

    fn take(&self, (item, bytes): Queued) -> Item {
        self.sub.taken(bytes);
        item
    }

    /// The next item: queued items first; when the queue is empty, a pending lagged notice
    /// (or the eviction); otherwise waits.
    pub async fn next(&mut self) -> Next {
        loop {
            {
                let mut lag = self.sub.lag();
                match self.rx.try_recv() {
                    Ok(queued) => return Next::Item(self.take(queued)),
                    Err(mpsc::error::TryRecvError::Disconnected) => return Next::Closed,
                    Err(mpsc::error::TryRecvError::Empty) if lag.evicted => {
                        return Next::Evicted {
                            skipped: std::mem::take(&mut lag.skipped),
                        };
                    }
                    Err(mpsc::error::TryRecvError::Empty) if lag.skipped > 0 => {
                        return Next::Item(Item::Lagged(std::mem::take(&mut lag.skipped)));
                    }
                    Err(mpsc::error::TryRecvError::Empty) => {}
                }
            }
            tokio::select! {
                queued = self.rx.recv() => return match queued {
                    Some(queued) => Next::Item(self.take(queued)),
                    None => Next::Closed,
                },
                // An eviction: go back to the checks above.
                () = self.sub.evicted.notified() => {}
            }
        }
    }

    /// Resolves once the subscriber has been evicted.
    pub async fn evicted(&self) {
        self.sub.evicted.notified().await;
    }

    /// After an eviction: how many items this subscriber will never get, counting those
    /// still queued and the skipped ones not yet reported. Empties the queue.
    pub fn drain_undelivered(&mut self) -> u64 {
        let mut lag = self.sub.lag();
        let mut n = std::mem::take(&mut lag.skipped);
        while let Ok((item, bytes)) = self.rx.try_recv() {
            self.sub.taken(bytes);
            n += match item {
                Item::Lagged(skipped) => skipped,
                Item::Event(_) | Item::Loss(_) | Item::Warning(_) => 1,
            };
        }
        n
    }
}
