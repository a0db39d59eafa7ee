//! The hub's store behind two traits: one [`Writer`] (ingest, in hub_seq order, used under
//! the hub's writer lock) and a [`Reader`] (stats, replay, tapper list) with its own
//! connections, so a long read never holds up a commit. Traits rather than an engine enum,
//! so that each engine is one implementation; both are synchronous and run on blocking
//! threads. SQLite (`sqlite/`) is embedded, for one hub; PostgreSQL (`postgres/`) is shared
//! by any number of hub replicas, whose live streams then come from the database
//! ([`Changes`] wakes the tail). The exactly-once rules both follow are written once in
//! `policy/`; the engines supply only their queries, and one conformance suite
//! (`conformance/`) runs against both.
//!
//! One clock rule everywhere: the hub's receive time (`received_ns`) drives retention age,
//! GetStats windows and `since_time` replay; the row cap counts events, loss records and
//! warnings.

mod budget;
#[cfg(test)]
mod conformance;
mod error;
mod policy;
mod postgres;
mod query;
mod records;
mod sqlite;
mod stack_blob;

use std::{sync::Arc, time::Duration};

use tapper_proto::v1::{Counters, Event, Hello, Loss, LossNotice, TapperInfo, Warning};

pub use budget::QueryBudget;
pub use error::{StoreError, with_causes};
pub use query::{GroupCol, StatsQuery, StatsResult};
pub use records::{Committed, InstanceKey, Stored};

/// Result of a store call.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The one writer: everything that assigns hub_seq numbers or changes stored rows. The hub
/// calls it under one lock and publishes to subscribers before releasing it, which keeps
/// the live stream in hub_seq order.
pub trait Writer: Send {
    /// The highest hub_seq assigned so far.
    fn last_hub_seq(&self) -> u64;

    /// Opens a group: the commits until [`end_group`](Self::end_group) share one
    /// transaction, each still all-or-nothing on its own.
    fn begin_group(&mut self) -> Result<()>;

    /// Commits the group. If that fails, nothing of the group is stored and the writer
    /// forgets what its commits settled; none of them may be acknowledged.
    fn end_group(&mut self) -> Result<()>;

    /// The open group holds as much as one transaction should: the group writer commits it
    /// and puts the steps still queued in the next.
    fn group_full(&self) -> bool {
        false
    }

    /// Records a Hello (creating or refreshing the tapper row); returns the acked seq.
    fn hello(&mut self, hello: &Hello, now_ns: i64) -> Result<u64>;

    /// A Report stream of `key` from `peer` started here. Shared stores record it for the
    /// other replicas' ListTappers; the embedded one needs nothing (the hub's own registry
    /// knows).
    fn stream_started(&mut self, _key: &InstanceKey, _peer: &str, _now_ns: i64) -> Result<()> {
        Ok(())
    }

    /// Stores the events of one batch in one transaction. Events whose seq is already
    /// committed are duplicates and left out of the result.
    fn commit_events(
        &mut self,
        key: &InstanceKey,
        events: Vec<Event>,
        now_ns: i64,
    ) -> Result<Committed<Event>>;

    /// Stores one loss record; a record whose range is already committed is a duplicate.
    fn commit_loss(
        &mut self,
        key: &InstanceKey,
        loss: Loss,
        now_ns: i64,
    ) -> Result<Committed<LossNotice>>;

    /// Stores one warning (it takes a hub_seq like an event); a warning whose seq is
    /// already committed is a duplicate and left out of the result.
    fn commit_warning(
        &mut self,
        key: &InstanceKey,
        warning: Warning,
        now_ns: i64,
    ) -> Result<Committed<Warning>>;

    /// Keeps the tapper's latest cumulative counters.
    fn set_counters(&mut self, key: &InstanceKey, c: &Counters, now_ns: i64) -> Result<()>;

    /// A Report stream of `key` ended: updates last_seen and forgets the instance's
    /// in-memory seq state (the next commit reloads it from the store).
    fn stream_ended(&mut self, key: &InstanceKey, now_ns: i64) -> Result<()>;

    /// Deletes events, loss records and warnings the hub received before
    /// `now_ns - max_age_ns`, then the oldest beyond `max_rows` (all three counted together). Returns how
    /// many records were deleted.
    fn apply_retention(
        &mut self,
        max_age_ns: Option<i64>,
        max_rows: Option<u64>,
        now_ns: i64,
    ) -> Result<u64>;

    /// Forgets tapper instances last seen before `now_ns - max_idle_ns` that have no live
    /// stream (their events and loss records stay, under retention). Returns how many.
    fn expire_instances(&mut self, max_idle_ns: i64, now_ns: i64) -> Result<u64>;
}

/// Queries that never wait on the writer; safe to call from many threads at once.
pub trait Reader: Send + Sync {
    /// Whether any tapper of this node ever reported.
    fn known_node(&self, node: &str) -> Result<bool>;

    /// Up to `limit` tappers after `after` in (node, instance id) order, only of `nodes`
    /// when not empty (connection fields left unset).
    fn tappers(
        &self,
        after: Option<&InstanceKey>,
        nodes: &[String],
        limit: usize,
    ) -> Result<Vec<TapperInfo>>;

    /// The lowest hub_seq of a record received at or after `since_ns`, if any.
    fn first_received_since(&self, since_ns: i64) -> Result<Option<u64>>;

    /// Up to `limit` stored items with hub_seq in `[from, to]`, in hub order, narrowed to
    /// records received at or after `since_ns` when given.
    fn replay_page(
        &self,
        from: u64,
        to: u64,
        since_ns: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Stored>>;

    /// Counts events and lost events received in the window, grouped as asked. Groupings
    /// within node and errno come from per-minute rollups (exactly the counts a scan would
    /// give); others scan the window's events under the query budget.
    fn stats(&self, q: &StatsQuery) -> Result<StatsResult>;

    /// Events and loss records stored (read once at start for `hub_store_rows`).
    fn rows(&self) -> Result<u64>;
}

/// Wakes the live tail of a store that other hubs write to as well.
pub trait Changes: Send {
    /// Returns once rows may have been added since the last call, or after `timeout`.
    fn wait(&mut self, timeout: Duration);

    /// The highest hub_seq stored: every record up to it is committed and visible.
    fn high_water(&mut self) -> Result<u64>;
}

/// An open store: its one writer and its shared reader.
pub struct Store {
    pub writer: Box<dyn Writer>,
    pub reader: Arc<dyn Reader>,
    /// For a store shared by hub replicas: the live stream must come from the store (what
    /// the other replicas commit), woken by these.
    pub changes: Option<Box<dyn Changes>>,
}

/// Whether `db` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres(db: &str) -> bool {
    postgres::is_url(db)
}

/// `db` as it may be logged (a URL's password masked).
pub fn display_db(db: &str) -> String {
    postgres::redact(db)
}

impl Store {
    /// Opens (creating or migrating if needed) the database `db`: a `postgres://` URL, or
    /// else a SQLite file (`:memory:` keeps it in memory). Reader queries run under
    /// `budget`. Blocks: call it on a blocking thread.
    pub fn open(db: &str, budget: QueryBudget) -> Result<Self> {
        if is_postgres(db) {
            let (writer, reader, changes) = postgres::open(db, budget)?;
            return Ok(Self {
                writer: Box::new(writer),
                reader: Arc::new(reader),
                changes: Some(Box::new(changes)),
            });
        }
        let (writer, reader) = sqlite::open(db, budget)?;
        Ok(Self {
            writer: Box::new(writer),
            reader: Arc::new(reader),
            changes: None,
        })
    }

    /// The highest hub_seq assigned so far.
    pub fn last_hub_seq(&self) -> u64 {
        self.writer.last_hub_seq()
    }
}
