//! Fan-out of committed events and losses to subscribers: one bounded queue per subscriber,
//! filled with `try_send` so a slow subscriber never blocks anyone; what it misses is counted
//! and delivered as a lagged notice.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use tapper_proto::v1::{Event, LossNotice};
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::filter::Filter;

/// What travels through a subscriber's queue.
#[derive(Debug, Clone)]
pub enum Item {
    Event(Arc<Event>),
    Loss(Arc<LossNotice>),
    /// `n` items were skipped right here.
    Lagged(u64),
}

/// One subscriber as the fan-out sees it.
pub struct Subscriber {
    id: u64,
    filter: Filter,
    tx: mpsc::Sender<Item>,
    /// Items skipped and not yet reported. Locked by the publisher while it sends to this
    /// subscriber, and by the reader when it finds the queue empty, so a lagged notice is
    /// always placed exactly where the items were skipped.
    skipped: Mutex<u64>,
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
    Closed,
}

impl Subscription {
    /// The next item: queued items first; when the queue is empty, a pending lagged notice;
    /// otherwise waits.
    pub async fn next(&mut self) -> Next {
        {
            let mut skipped = self.sub.skipped.lock().unwrap_or_else(|e| e.into_inner());
            match self.rx.try_recv() {
                Ok(item) => return Next::Item(item),
                Err(mpsc::error::TryRecvError::Disconnected) => return Next::Closed,
                Err(mpsc::error::TryRecvError::Empty) if *skipped > 0 => {
                    return Next::Item(Item::Lagged(std::mem::take(&mut *skipped)));
                }
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
        }
        match self.rx.recv().await {
            Some(item) => Next::Item(item),
            None => Next::Closed,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.fanout.remove(self.sub.id);
    }
}

/// The set of live subscribers.
#[derive(Default)]
pub struct Fanout {
    subs: Mutex<Vec<Arc<Subscriber>>>,
    next_id: AtomicU64,
}

impl Fanout {
    /// Registers a subscriber with a queue of `capacity` items.
    pub fn subscribe(self: &Arc<Self>, filter: Filter, capacity: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let sub = Arc::new(Subscriber {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            filter,
            tx,
            skipped: Mutex::new(0),
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

    /// Number of live subscribers.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.subs.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Offers committed events to every subscriber whose filter matches. Never waits.
    pub fn publish_events(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        if subs.is_empty() {
            return;
        }
        for e in events {
            let item = Arc::new(e.clone());
            for s in subs.iter().filter(|s| s.filter.matches_event(e)) {
                deliver(s, Item::Event(item.clone()));
            }
        }
    }

    /// Offers a committed loss notice to every subscriber whose node filter matches.
    pub fn publish_loss(&self, loss: &LossNotice) {
        let subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        let item = Arc::new(loss.clone());
        for s in subs.iter().filter(|s| s.filter.matches_loss(loss)) {
            deliver(s, Item::Loss(item.clone()));
        }
    }
}

fn deliver(s: &Subscriber, item: Item) {
    let mut skipped = s.skipped.lock().unwrap_or_else(|e| e.into_inner());
    if *skipped > 0 {
        match s.tx.try_send(Item::Lagged(*skipped)) {
            Ok(()) => *skipped = 0,
            Err(TrySendError::Full(_)) => {
                *skipped += 1;
                return;
            }
            Err(TrySendError::Closed(_)) => return,
        }
    }
    if let Err(TrySendError::Full(_)) = s.tx.try_send(item) {
        *skipped += 1;
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
        let f = Arc::new(Fanout::default());
        let filter = || Filter::from_request(&SubscribeRequest::default()).unwrap();
        let mut slow = f.subscribe(filter(), 3);
        let mut fast = f.subscribe(filter(), 100);
        let events: Vec<_> = (1..=10).map(ev).collect();
        f.publish_events(&events);
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
        // A later event comes after the notice, and the accounting stays exact.
        f.publish_events(&[ev(11)]);
        assert!(matches!(slow.next().await, Next::Item(Item::Event(e)) if e.hub_seq == 11));
        drop(slow);
        assert_eq!(f.len(), 1);
    }
}
