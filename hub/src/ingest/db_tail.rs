//! The live stream of a store shared by hub replicas: a thread tails the events and loss
//! records of the whole fleet by hub_seq (woken by the store's change notifications, with a
//! slow poll as a fallback) and publishes them to this hub's subscribers through the
//! fan-out. The store commits in hub_seq order (see the PostgreSQL writer), so a tail by
//! `hub_seq > cursor` sees every record once, in one global order.

use std::{
    sync::{Arc, Mutex, PoisonError},
    thread,
    time::{Duration, Instant},
};

use tokio::sync::watch;
use tracing::warn;

use crate::{
    ingest::{
        fanout::{Fanout, QueueBound, Subscription},
        filter::Filter,
    },
    store::{Changes, Reader, StoreError, Stored},
};

/// Logs a failed read, at most every [`WARN_EVERY`].
fn warn_now(warned: &mut Option<Instant>, e: &StoreError) {
    if warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
        warn!(error = %e, "reading new records from the database failed; retrying");
        *warned = Some(Instant::now());
    }
}

/// Records read per page.
const PAGE: usize = 512;
/// Longest wait without a notification before looking anyway.
const FALLBACK_POLL: Duration = Duration::from_secs(1);
/// Failed reads are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The tail's position, shared with new subscriptions.
pub struct Tail {
    /// The highest hub_seq published; held while publishing a page.
    cursor: Mutex<u64>,
    fanout: Arc<Fanout>,
}

impl Tail {
    /// Starts tailing after `from` into `fanout`, until `shutdown` turns true.
    pub fn spawn(
        from: u64,
        fanout: Arc<Fanout>,
        reader: Arc<dyn Reader>,
        changes: Box<dyn Changes>,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<Arc<Self>> {
        let tail = Arc::new(Self {
            cursor: Mutex::new(from),
            fanout,
        });
        let t = tail.clone();
        thread::Builder::new()
            .name("store-tail".into())
            .spawn(move || t.run(reader.as_ref(), changes, &shutdown))?;
        Ok(tail)
    }

    /// Registers a subscriber and returns the seam: every record up to it is in the store
    /// already, every later one reaches the subscription.
    pub fn subscribe(&self, filter: Filter, limit: QueueBound) -> (u64, Subscription) {
        let cursor = self.cursor.lock().unwrap_or_else(PoisonError::into_inner);
        (*cursor, self.fanout.subscribe(filter, limit))
    }

    /// The highest hub_seq published (every record up to it is in the store).
    pub fn position(&self) -> u64 {
        *self.cursor.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(
        &self,
        reader: &dyn Reader,
        mut changes: Box<dyn Changes>,
        shutdown: &watch::Receiver<bool>,
    ) {
        let mut warned: Option<Instant> = None;
        while !*shutdown.borrow() {
            if self.fanout.is_empty() {
                // Nobody to publish to: skip ahead instead of reading every record.
                match changes.high_water() {
                    Ok(top) => self.skip_to(top),
                    Err(e) => warn_now(&mut warned, &e),
                }
                changes.wait(FALLBACK_POLL);
                continue;
            }
            let from = *self.cursor.lock().unwrap_or_else(PoisonError::into_inner) + 1;
            match reader.replay_page(from, u64::MAX, None, PAGE) {
                Ok(page) if !page.is_empty() => {
                    let full = page.len() >= PAGE;
                    self.publish(page);
                    if full {
                        continue;
                    }
                }
                Ok(_) => {}
                Err(e) => warn_now(&mut warned, &e),
            }
            changes.wait(FALLBACK_POLL);
        }
    }

    /// Moves the cursor to `top` if nobody subscribed meanwhile (a new subscriber's replay
    /// reads up to the cursor from the store).
    fn skip_to(&self, top: u64) {
        let mut cursor = self.cursor.lock().unwrap_or_else(PoisonError::into_inner);
        if self.fanout.is_empty() && top > *cursor {
            *cursor = top;
        }
    }

    /// Publishes a page in hub_seq order and moves the cursor past it.
    fn publish(&self, page: Vec<Stored>) {
        let mut cursor = self.cursor.lock().unwrap_or_else(PoisonError::into_inner);
        let mut events = Vec::new();
        for item in page {
            *cursor = item.hub_seq();
            match item {
                Stored::Event(e) => events.push(e),
                Stored::Loss(l) => {
                    self.fanout.publish_events(std::mem::take(&mut events));
                    self.fanout.publish_loss(&l);
                }
                Stored::Warning(w) => {
                    self.fanout.publish_events(std::mem::take(&mut events));
                    self.fanout.publish_warning(&w);
                }
            }
        }
        self.fanout.publish_events(events);
    }
}
