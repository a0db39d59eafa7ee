//! Fan-out of committed events and losses to subscribers: one bounded queue per subscriber,
//! filled with `try_send` so a slow subscriber never blocks anyone; what it misses is counted
//! and delivered as a lagged notice. A subscriber whose queue stays full longer than the
//! stall timeout is dropped, so stuck readers cost the publisher nothing. Each item is
//! allocated once and shared by every subscriber's queue.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tapper_proto::v1::{Event, LossNotice, Warning};
use tokio::sync::{
    Notify,
    mpsc::{self, error::TrySendError},
};

use crate::filter::Filter;

/// What travels through a subscriber's queue.
#[derive(Debug, Clone)]
pub enum Item {
    Event(Arc<Event>),
    Loss(Arc<LossNotice>),
    Warning(Arc<Warning>),
    /// `n` items were skipped right here.
    Lagged(u64),
}

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

/// One subscriber as the fan-out sees it.
pub struct Subscriber {
    id: u64,
    filter: Filter,
    tx: mpsc::Sender<Item>,
    /// Locked by the publisher while it sends to this subscriber, and by the reader when it
    /// finds the queue empty, so a lagged notice is always placed exactly where the items
    /// were skipped.
    lag: Mutex<Lag>,
    /// Woken when the subscriber is evicted, so a reader blocked on its client notices.
    evicted: Notify,
}

/// The receiving end a subscription task drains.
pub struct Subscription {
    pub rx: mpsc::Receiver<Item>,
    sub: Arc<Subscriber>,
    fanout: Arc<Fanout>,
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

impl Subscription {
    /// The next item: queued items first; when the queue is empty, a pending lagged notice
    /// (or the eviction); otherwise waits.
    pub async fn next(&mut self) -> Next {
        loop {
            {
                let mut lag = self.sub.lag.lock().unwrap_or_else(|e| e.into_inner());
                match self.rx.try_recv() {
                    Ok(item) => return Next::Item(item),
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
                item = self.rx.recv() => return match item {
                    Some(item) => Next::Item(item),
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
        let mut lag = self.sub.lag.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = std::mem::take(&mut lag.skipped);
        while let Ok(item) = self.rx.try_recv() {
            n += match item {
                Item::Lagged(skipped) => skipped,
                Item::Event(_) | Item::Loss(_) | Item::Warning(_) => 1,
            };
        }
        n
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.fanout.remove(self.sub.id);
    }
}

/// The set of live subscribers.
pub struct Fanout {
    subs: Mutex<Vec<Arc<Subscriber>>>,
    next_id: AtomicU64,
    /// How long a subscriber's queue may stay full before it is dropped.
    stall_timeout: Duration,
    /// Items skipped for full queues, ever (the metrics' `hub_subscriber_lagged_total`).
    skipped: AtomicU64,
}

impl Fanout {
    /// An empty fan-out that drops subscribers whose queue stays full past `stall_timeout`.
    pub fn new(stall_timeout: Duration) -> Self {
        Self {
            subs: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            stall_timeout,
            skipped: AtomicU64::new(0),
        }
    }

    /// Registers a subscriber with a queue of `capacity` items.
    pub fn subscribe(self: &Arc<Self>, filter: Filter, capacity: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let sub = Arc::new(Subscriber {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            filter,
            tx,
            lag: Mutex::new(Lag::default()),
            evicted: Notify::new(),
        });
        self.subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sub.clone());
        Subscription {
            rx,
            sub,
            fanout: self.clone(),
        }
    }

    fn remove(&self, id: u64) {
        self.subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|s| s.id != id);
    }

    /// Items skipped so far because a subscriber's queue was full.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Whether nobody subscribes.
    pub fn is_empty(&self) -> bool {
        self.subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Number of live subscribers.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.subs.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Offers committed events to every subscriber whose filter matches. Never waits.
    pub fn publish_events(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        if subs.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut evicted = false;
        for e in events {
            let item = Arc::new(e);
            for s in subs.iter().filter(|s| s.filter.matches_event(&item)) {
                evicted |= self.deliver(s, Item::Event(item.clone()), now);
            }
        }
        if evicted {
            subs.retain(|s| !s.is_evicted());
        }
    }

    /// Offers a committed loss notice to every subscriber whose node filter matches.
    pub fn publish_loss(&self, loss: &LossNotice) {
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        let item = Arc::new(loss.clone());
        let now = Instant::now();
        let mut evicted = false;
        for s in subs.iter().filter(|s| s.filter.matches_loss(loss)) {
            evicted |= self.deliver(s, Item::Loss(item.clone()), now);
        }
        if evicted {
            subs.retain(|s| !s.is_evicted());
        }
    }

    /// Offers a committed warning to every subscriber whose filter matches.
    pub fn publish_warning(&self, warning: &Warning) {
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        let item = Arc::new(warning.clone());
        let now = Instant::now();
        let mut evicted = false;
        for s in subs.iter().filter(|s| s.filter.matches_warning(warning)) {
            evicted |= self.deliver(s, Item::Warning(item.clone()), now);
        }
        if evicted {
            subs.retain(|s| !s.is_evicted());
        }
    }

    /// Queues `item` for `s`, or counts it as skipped; returns true if `s` was evicted now.
    fn deliver(&self, s: &Subscriber, item: Item, now: Instant) -> bool {
        let mut lag = s.lag.lock().unwrap_or_else(|e| e.into_inner());
        if lag.evicted {
            return false;
        }
        let mut sent = Ok(());
        if lag.skipped > 0 {
            sent = s.tx.try_send(Item::Lagged(lag.skipped));
            if sent.is_ok() {
                lag.skipped = 0;
            }
        }
        if sent.is_ok() {
            sent = s.tx.try_send(item);
        }
        match sent {
            Ok(()) => {
                lag.full_since = None;
                false
            }
            Err(TrySendError::Closed(_)) => false,
            Err(TrySendError::Full(_)) => {
                lag.skipped += 1;
                self.skipped.fetch_add(1, Ordering::Relaxed);
                let since = *lag.full_since.get_or_insert(now);
                if now.duration_since(since) < self.stall_timeout {
                    return false;
                }
                lag.evicted = true;
                s.evicted.notify_one();
                true
            }
        }
    }
}

impl Subscriber {
    fn is_evicted(&self) -> bool {
        self.lag.lock().unwrap_or_else(|e| e.into_inner()).evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapper_proto::v1::SubscribeRequest;

    fn ev(hub_seq: u64) -> Event {
        Event {
            hub_seq,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn slow_subscriber_gets_exact_lag_and_fast_one_everything() {
        let f = Arc::new(Fanout::new(Duration::from_secs(3600)));
        let filter = || Filter::from_request(&SubscribeRequest::default()).unwrap();
        let mut slow = f.subscribe(filter(), 3);
        let mut fast = f.subscribe(filter(), 100);
        let events: Vec<_> = (1..=10).map(ev).collect();
        f.publish_events(events);
        let mut got = Vec::new();
        for _ in 0..10 {
            match fast.next().await {
                Next::Item(Item::Event(e)) => got.push(e.hub_seq),
                _ => panic!("fast subscriber got something else"),
            }
        }
        assert_eq!(got, (1..=10).collect::<Vec<_>>());
        let mut seen = Vec::new();
        let mut lag = 0;
        for _ in 0..4 {
            match slow.next().await {
                Next::Item(Item::Event(e)) => seen.push(e.hub_seq),
                Next::Item(Item::Lagged(n)) => lag += n,
                _ => panic!(),
            }
        }
        assert_eq!(seen, vec![1, 2, 3]);
        assert_eq!(lag, 7);
        assert_eq!(f.skipped_total(), 7);
        // A later event comes after the notice, and the accounting stays exact.
        f.publish_events(vec![ev(11)]);
        assert!(matches!(slow.next().await, Next::Item(Item::Event(e)) if e.hub_seq == 11));
        drop(slow);
        assert_eq!(f.len(), 1);
    }

    #[tokio::test]
    async fn stuck_subscriber_is_evicted_and_told_what_it_missed() {
        let f = Arc::new(Fanout::new(Duration::ZERO));
        let filter = || Filter::from_request(&SubscribeRequest::default()).unwrap();
        let mut stuck = f.subscribe(filter(), 2);
        let mut fine = f.subscribe(filter(), 100);
        f.publish_events((1..=5).map(ev).collect());
        assert_eq!(f.len(), 1, "the stuck subscriber is gone from the fan-out");
        for want in 1..=2 {
            assert!(matches!(stuck.next().await, Next::Item(Item::Event(e)) if e.hub_seq == want));
        }
        // Evicted at the first item that did not fit (no stall allowed): that one is counted.
        assert!(matches!(stuck.next().await, Next::Evicted { skipped: 1 }));
        for want in 1..=5 {
            assert!(matches!(fine.next().await, Next::Item(Item::Event(e)) if e.hub_seq == want));
        }
    }
}
