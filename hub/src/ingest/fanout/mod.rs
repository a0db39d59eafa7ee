//! Fan-out of committed events, losses and warnings to subscribers, off the publisher's
//! thread: the store's writer (or the tail of a shared store) hands each publication over
//! in commit order, and the fan-out's own thread finds the subscribers whose filters match
//! ([`registry`]) and fills each one's bounded queue ([`queue`]) without waiting, so neither
//! matching nor a slow subscriber holds up a commit. Each item is encoded once ([`encoded`])
//! and shared by every queue.

mod encoded;
mod queue;
mod registry;

use std::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, AtomicUsize, Ordering},
        mpsc::{Receiver as Jobs, SyncSender, sync_channel},
    },
    thread,
    time::{Duration, Instant},
};

use prost::Message;
use tapper_proto::v1::{Event, LossNotice, Warning};

pub use encoded::Encoded;
pub use queue::{Item, Next, QueueBound};
use queue::{Offered, Receiver, Subscriber};
use registry::Registry;

use crate::ingest::filter::Filter;

/// Publications handed over and not fanned out yet, at most; beyond that the publisher
/// waits (the store's writer slows down instead of the hub's memory growing).
const PUBLICATIONS_QUEUED: usize = 64;

/// What one commit publishes.
enum Publication {
    Events(Vec<Event>),
    Loss(Box<LossNotice>),
    Warning(Box<Warning>),
}

/// Work for the fan-out thread.
enum Job {
    /// The publication numbered so (from 1, in commit order), handed over at that time:
    /// stalls are measured in commit time, however late the fan-out thread gets to it.
    Publish(u64, Instant, Publication),
    /// Answered once every earlier publication is fanned out.
    #[cfg(test)]
    Barrier(std::sync::mpsc::Sender<()>),
}

/// What the publisher and the fan-out thread share.
struct Shared {
    subs: Mutex<Registry>,
    /// `subs.len()`, read without the lock.
    live: AtomicUsize,
    /// How long a subscriber's queue may stay full before it is dropped.
    stall_timeout: Duration,
    /// Items skipped for full queues, ever (the metrics' `hub_subscriber_lagged_total`).
    skipped: AtomicU64,
}

/// The set of live subscribers, and the hand-over to the fan-out thread.
pub struct Fanout {
    shared: Arc<Shared>,
    jobs: SyncSender<Job>,
    /// The number of the last publication handed over.
    published: AtomicU64,
    next_id: AtomicU64,
}

/// The receiving end a subscription task drains; dropping it unregisters the subscriber.
pub struct Subscription {
    queue: Receiver,
    fanout: Arc<Fanout>,
}

impl Subscription {
    /// The next item: queued items first; when the queue is empty, a pending lagged notice
    /// (or the eviction); otherwise waits.
    pub async fn next(&mut self) -> Next {
        self.queue.next().await
    }

    /// Resolves once the subscriber has been evicted.
    pub async fn evicted(&self) {
        self.queue.evicted().await;
    }

    /// After an eviction: how many items this subscriber will never get, counting those
    /// still queued and the skipped ones not yet reported. Empties the queue.
    pub fn drain_undelivered(&mut self) -> u64 {
        self.queue.drain_undelivered()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.fanout.shared.remove(self.queue.id());
    }
}

impl Fanout {
    /// An empty fan-out, with its thread, that drops subscribers whose queue stays full
    /// past `stall_timeout`. The thread ends when the fan-out is dropped.
    pub fn new(stall_timeout: Duration) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            subs: Mutex::new(Registry::default()),
            live: AtomicUsize::new(0),
            stall_timeout,
            skipped: AtomicU64::new(0),
        });
        let (jobs, queue) = sync_channel(PUBLICATIONS_QUEUED);
        let fan_out = shared.clone();
        thread::Builder::new()
            .name("fanout".into())
            .spawn(move || fan_out.run(&queue))?;
        Ok(Self {
            shared,
            jobs,
            published: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
        })
    }

    /// Registers a subscriber with a queue of `limit`. It gets exactly the publications
    /// handed over after this call (the publisher calls both in one order: the writer
    /// thread, or the tail under its cursor).
    pub fn subscribe(self: &Arc<Self>, filter: Filter, limit: QueueBound) -> Subscription {
        let mut subs = self.shared.lock();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let after = self.published.load(Ordering::Acquire);
        let (sub, rx) = Subscriber::new(id, filter, after, limit);
        subs.add(sub.clone());
        self.shared.live.store(subs.len(), Ordering::Release);
        Subscription {
            queue: Receiver::new(rx, sub),
            fanout: self.clone(),
        }
    }

    /// Items skipped so far because a subscriber's queue was full.
    pub fn skipped_total(&self) -> u64 {
        self.shared.skipped.load(Ordering::Relaxed)
    }

    /// Whether nobody subscribes.
    pub fn is_empty(&self) -> bool {
        self.shared.live.load(Ordering::Acquire) == 0
    }

    /// Number of live subscribers.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shared.lock().len()
    }

    /// Waits until everything handed over so far is fanned out.
    #[cfg(test)]
    pub fn flush(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        self.jobs.send(Job::Barrier(done)).unwrap();
        wait.recv().unwrap();
    }

    /// Hands committed events over, for every subscriber whose filter matches.
    pub fn publish_events(&self, events: Vec<Event>) {
        if !events.is_empty() {
            self.publish(Publication::Events(events));
        }
    }

    /// Hands a committed loss notice over, for every subscriber whose node filter matches.
    pub fn publish_loss(&self, loss: &LossNotice) {
        self.publish(Publication::Loss(Box::new(loss.clone())));
    }

    /// Hands a committed warning over, for every subscriber whose filter matches.
    pub fn publish_warning(&self, warning: &Warning) {
        self.publish(Publication::Warning(Box::new(warning.clone())));
    }

    /// Numbers the publication and hands it to the fan-out thread (waiting while that has
    /// [`PUBLICATIONS_QUEUED`] to do); nothing when nobody subscribes.
    fn publish(&self, publication: Publication) {
        if self.is_empty() {
            return;
        }
        let n = self.published.fetch_add(1, Ordering::AcqRel) + 1;
        // Fails only once the thread is gone, when the hub is going away.
        let _ = self.jobs.send(Job::Publish(n, Instant::now(), publication));
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.subs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remove(&self, id: u64) {
        let mut subs = self.lock();
        subs.remove(id);
        self.live.store(subs.len(), Ordering::Release);
    }

    /// The fan-out thread: each publication, in order, to the subscribers that match.
    fn run(&self, jobs: &Jobs<Job>) {
        for job in jobs {
            match job {
                Job::Publish(n, at, publication) => self.fan_out(n, at, publication),
                #[cfg(test)]
                Job::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    fn fan_out(&self, n: u64, now: Instant, publication: Publication) {
        let mut subs = self.lock();
        let new_enough = |s: &&Arc<Subscriber>| s.after < n;
        let mut targets: Vec<&Arc<Subscriber>> = Vec::new();
        let mut evicted = false;
        match publication {
            Publication::Events(events) => {
                for event in &events {
                    let id = event.container.as_ref().and_then(|c| c.id.as_deref());
                    targets.clear();
                    targets.extend(
                        subs.for_container(id)
                            .filter(new_enough)
                            .filter(|s| s.filter.matches_event(event)),
                    );
                    let bytes = event.encoded_len();
                    evicted |= self.offer_all(&targets, bytes, now, || {
                        Item::Event(Arc::new(Encoded::event(event)))
                    });
                }
            }
            Publication::Loss(loss) => {
                targets.extend(
                    subs.all()
                        .filter(new_enough)
                        .filter(|s| s.filter.matches_loss(&loss)),
                );
                let bytes = loss.encoded_len();
                evicted |= self.offer_all(&targets, bytes, now, || {
                    Item::Loss(Arc::new(Encoded::loss(&loss)))
                });
            }
            Publication::Warning(warning) => {
                targets.extend(
                    subs.all()
                        .filter(new_enough)
                        .filter(|s| s.filter.matches_warning(&warning)),
                );
                let bytes = warning.encoded_len();
                evicted |= self.offer_all(&targets, bytes, now, || {
                    Item::Warning(Arc::new(Encoded::warning(&warning)))
                });
            }
        }
        drop(targets);
        if evicted {
            subs.remove_where(Subscriber::is_evicted);
            self.live.store(subs.len(), Ordering::Release);
        }
    }

    /// Offers the item `make` builds (encoding it: only when some target takes it, and once
    /// for all) to each target, counting it against their budgets as `bytes`; whether any
    /// target was evicted.
    fn offer_all(
        &self,
        targets: &[&Arc<Subscriber>],
        bytes: usize,
        now: Instant,
        make: impl FnOnce() -> Item,
    ) -> bool {
        if targets.is_empty() {
            return false;
        }
        let item = make();
        let mut evicted = false;
        for s in targets {
            let offered = s.offer(item.clone(), bytes, now, self.stall_timeout, &self.skipped);
            evicted |= matches!(offered, Offered::Evicted);
        }
        evicted
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

    fn all() -> Filter {
        Filter::from_request(&SubscribeRequest::default()).unwrap()
    }

    /// The hub sequence numbers of the events among the next `reads` items, and the sum
    /// of the lagged notices among them.
    async fn events_and_lag(sub: &mut Subscription, reads: usize) -> (Vec<u64>, u64) {
        let mut seen = Vec::new();
        let mut lag = 0;
        for _ in 0..reads {
            match sub.next().await {
                Next::Item(Item::Event(e)) => seen.push(e.hub_seq),
                Next::Item(Item::Lagged(n)) => lag += n,
                _ => panic!("expected an event or a lagged notice"),
            }
        }
        (seen, lag)
    }

    fn items(items: usize) -> QueueBound {
        QueueBound {
            items,
            bytes: usize::MAX,
        }
    }

    #[tokio::test]
    async fn slow_subscriber_gets_exact_lag_and_fast_one_everything() {
        let f = Arc::new(Fanout::new(Duration::from_secs(3600)).unwrap());
        let mut slow = f.subscribe(all(), items(3));
        let mut fast = f.subscribe(all(), items(100));
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
        f.flush();
        let (seen, lag) = events_and_lag(&mut slow, 4).await;
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
    async fn a_queue_is_bounded_in_bytes_too() {
        let f = Arc::new(Fanout::new(Duration::from_secs(3600)).unwrap());
        let big = |hub_seq| Event {
            cmdline: "a".repeat(4000),
            ..ev(hub_seq)
        };
        let size = big(1).encoded_len();
        let limit = QueueBound {
            items: 1000,
            bytes: 3 * size,
        };
        let mut slow = f.subscribe(all(), limit);
        f.publish_events((1..=10).map(big).collect());
        f.flush();
        let (seen, lag) = events_and_lag(&mut slow, 4).await;
        assert_eq!((seen, lag), (vec![1, 2, 3], 7));
        // Alone in its queue, an item always fits, however big.
        let mut tiny = f.subscribe(
            all(),
            QueueBound {
                items: 1000,
                bytes: 1,
            },
        );
        // The slow queue emptied: its bytes are free again.
        f.publish_events((11..=13).map(big).collect());
        f.flush();
        for want in [11, 12, 13] {
            assert!(matches!(slow.next().await, Next::Item(Item::Event(e)) if e.hub_seq == want));
        }
        assert!(matches!(tiny.next().await, Next::Item(Item::Event(e)) if e.hub_seq == 11));
        assert!(matches!(tiny.next().await, Next::Item(Item::Lagged(2))));
    }

    #[tokio::test]
    async fn a_subscriber_gets_exactly_what_is_published_after_it_subscribed() {
        let f = Arc::new(Fanout::new(Duration::from_secs(3600)).unwrap());
        let _early = f.subscribe(all(), items(100));
        f.publish_events(vec![ev(1)]);
        let mut late = f.subscribe(all(), items(100));
        f.publish_events(vec![ev(2)]);
        assert!(matches!(late.next().await, Next::Item(Item::Event(e)) if e.hub_seq == 2));
    }

    #[tokio::test]
    async fn container_id_subscribers_get_exactly_their_containers_events() {
        let f = Arc::new(Fanout::new(Duration::from_secs(3600)).unwrap());
        let by_ids = |ids: &[&str]| {
            let req = SubscribeRequest {
                container_id: ids.iter().map(|i| i.to_string()).collect(),
                ..Default::default()
            };
            f.subscribe(Filter::from_request(&req).unwrap(), items(100))
        };
        let mut web = by_ids(&["3f2a", "3f2a9c", "77aa00ff"]);
        let mut db = by_ids(&["77aa00ff11", "abcd"]);
        let gone = by_ids(&["3f2a"]);
        let mut everything = f.subscribe(all(), items(100));
        drop(gone);
        assert_eq!(f.len(), 3);
        let in_container = |hub_seq, id: &str| Event {
            container: Some(tapper_proto::v1::Container {
                id: Some(id.into()),
                ..Default::default()
            }),
            ..ev(hub_seq)
        };
        f.publish_events(vec![
            in_container(1, "3f2a9c01"),
            in_container(2, "77aa00ff1122"),
            ev(3),
            in_container(4, "abcd0000"),
            in_container(5, "ffff0000"),
        ]);
        f.flush();
        async fn seqs(sub: &mut Subscription, n: usize) -> Vec<u64> {
            let mut got = Vec::new();
            for _ in 0..n {
                match sub.next().await {
                    Next::Item(Item::Event(e)) => got.push(e.hub_seq),
                    _ => panic!("expected an event"),
                }
            }
            // Everything is fanned out already: a further read finds nothing.
            let more = tokio::time::timeout(Duration::from_millis(50), sub.next()).await;
            assert!(more.is_err(), "nothing more");
            got
        }
        assert_eq!(seqs(&mut web, 2).await, [1, 2]);
        assert_eq!(seqs(&mut db, 2).await, [2, 4]);
        assert_eq!(seqs(&mut everything, 5).await, [1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn stuck_subscriber_is_evicted_and_told_what_it_missed() {
        let f = Arc::new(Fanout::new(Duration::ZERO).unwrap());
        let mut stuck = f.subscribe(all(), items(2));
        let mut fine = f.subscribe(all(), items(100));
        f.publish_events((1..=5).map(ev).collect());
        f.flush();
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
