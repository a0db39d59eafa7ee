//! Reader connections: a small pool, one connection per concurrent query, each read-only,
//! so a long GetStats scan or replay page never holds up the writer.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use rusqlite::Connection;
use tracing::warn;

use super::{Location, gate::Gate, replay, stats, tappers};
use crate::store::{
    InstanceKey, QueryBudget, Reader, Result, StatsQuery, StatsResult, Stored, budget::Work,
};
use tapper_proto::v1::TapperInfo;

/// Idle connections kept for reuse; more are opened when more queries run at once.
const MAX_IDLE: usize = 4;

/// SQLite virtual-machine steps between two deadline checks (a few microseconds of work).
const STEPS_PER_CHECK: i32 = 10_000;

/// Unreadable rows remembered so that each is logged once (beyond this, not logged).
const MAX_UNREADABLE_LOGGED: usize = 1024;

/// The read side of a SQLite store.
pub struct SqliteReader {
    location: Location,
    budget: QueryBudget,
    idle: Mutex<Vec<Connection>>,
    /// Bounds the queries running at once, so the writer keeps a core.
    gate: Gate,
    /// hub_seq numbers of unreadable rows already logged.
    unreadable: Mutex<HashSet<u64>>,
}

impl SqliteReader {
    pub(super) fn new(location: Location, budget: QueryBudget) -> Self {
        Self {
            location,
            budget,
            idle: Mutex::new(Vec::new()),
            gate: Gate::for_this_machine(),
            unreadable: Mutex::new(HashSet::new()),
        }
    }

    /// Logs an unreadable stored row, once per row.
    fn log_unreadable(&self, hub_seq: u64, err: &prost::DecodeError) {
        let mut seen = self
            .unreadable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seen.len() < MAX_UNREADABLE_LOGGED && seen.insert(hub_seq) {
            warn!(hub_seq, error = %err, "stored event does not decode; replays skip it with a loss notice");
        }
    }

    /// Number of unreadable rows logged so far.
    #[cfg(test)]
    pub(super) fn unreadable_logged(&self) -> usize {
        self.unreadable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn connect(&self) -> Result<Connection> {
        let conn = self.location.connect()?;
        conn.pragma_update(None, "query_only", true)?;
        if self.location.memory {
            conn.pragma_update(None, "read_uncommitted", true)?;
        }
        Ok(conn)
    }

    /// Runs `f` on a connection of its own, stopping its SQL at the budget's deadline (an
    /// over-budget error for `work`); the connection goes back to the pool unless `f` left
    /// a transaction open.
    pub(super) fn with_conn<T>(
        &self,
        work: Work,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        // Waiting for a place counts against the query's deadline.
        let deadline = Instant::now().checked_add(self.budget.timeout);
        let _pass = self
            .gate
            .enter(self.budget.timeout)
            .ok_or_else(|| self.budget.over_time(work))?;
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let stopped = Arc::new(AtomicBool::new(false));
        if let Some(deadline) = deadline {
            let stopped = stopped.clone();
            conn.progress_handler(
                STEPS_PER_CHECK,
                Some(move || {
                    let over = Instant::now() >= deadline;
                    if over {
                        stopped.store(true, Ordering::Relaxed);
                    }
                    over
                }),
            )?;
        }
        let r = f(&conn);
        conn.progress_handler(0, None::<fn() -> bool>)?;
        let r = match r {
            Err(_) if stopped.load(Ordering::Relaxed) => Err(self.budget.over_time(work)),
            r => r,
        };
        if conn.is_autocommit() {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        r
    }
}

impl Reader for SqliteReader {
    fn known_node(&self, node: &str) -> Result<bool> {
        self.with_conn(Work::Tappers, |c| tappers::known_node(c, node))
    }

    fn tappers(
        &self,
        after: Option<&InstanceKey>,
        nodes: &[String],
        limit: usize,
    ) -> Result<Vec<TapperInfo>> {
        self.with_conn(Work::Tappers, |c| tappers::page(c, after, nodes, limit))
    }

    fn first_received_since(&self, since_ns: i64) -> Result<Option<u64>> {
        self.with_conn(Work::Replay, |c| replay::first_received_since(c, since_ns))
    }

    fn replay_page(
        &self,
        from: u64,
        to: u64,
        since_ns: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Stored>> {
        self.with_conn(Work::Replay, |c| {
            replay::page(c, from, to, since_ns, limit, &|s, e| {
                self.log_unreadable(s, e)
            })
        })
    }

    fn stats(&self, q: &StatsQuery) -> Result<StatsResult> {
        self.with_conn(Work::Stats, |c| stats::query(c, q, &self.budget))
    }

    fn rows(&self) -> Result<u64> {
        self.with_conn(Work::Stats, |c| {
            let rows: i64 = c.query_row(
                "SELECT (SELECT COUNT(*) FROM events) + (SELECT COUNT(*) FROM losses)
                      + (SELECT COUNT(*) FROM warnings)",
                [],
                |r| r.get(0),
            )?;
            Ok(rows.max(0) as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{TempDb, ev, hello, key};
    use crate::store::{GroupCol, Reader, StatsQuery, StoreError, Writer, budget::Work};

    /// Holds a read transaction open on a reader connection while the writer commits: the
    /// commit must not wait for it (it would fail with "busy" if it did).
    fn writer_commits_under_an_open_read(path: &str) {
        let (mut w, r) = super::super::testkit::open(path).unwrap();
        w.hello(&hello("a"), 1).unwrap();
        w.commit_events(&key("a"), vec![ev(1, 24)], 2).unwrap();
        r.with_conn(Work::Replay, |c| {
            c.execute_batch("BEGIN")?;
            let n: i64 = c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
            assert_eq!(n, 1);
            let done = w.commit_events(&key("a"), vec![ev(2, 24), ev(3, 24)], 3)?;
            assert_eq!(done.acked, 3);
            c.execute_batch("COMMIT")?;
            Ok(())
        })
        .unwrap();
        assert_eq!(r.replay_page(0, u64::MAX, None, 10).unwrap().len(), 3);
    }

    #[test]
    fn readers_do_not_block_the_writer_on_disk() {
        let db = TempDb::new("readers");
        writer_commits_under_an_open_read(&db.path());
    }

    #[test]
    fn readers_do_not_block_the_writer_in_memory() {
        writer_commits_under_an_open_read(":memory:");
    }

    #[test]
    fn queries_past_their_deadline_are_stopped_and_the_connection_reused() {
        let budget = crate::store::QueryBudget {
            timeout: std::time::Duration::from_nanos(1),
            ..Default::default()
        };
        let (mut w, r) = super::super::open(":memory:", budget).unwrap();
        w.hello(&hello("a"), 1).unwrap();
        let evs = (1..=2_000).map(|s| ev(s, 24)).collect();
        w.commit_events(&key("a"), evs, 2).unwrap();
        for _ in 0..2 {
            let e = r
                .stats(&StatsQuery {
                    group: vec![GroupCol::Comm],
                    since_ns: 0,
                    until_ns: i64::MAX,
                    nodes: vec![],
                })
                .unwrap_err();
            let StoreError::OverBudget(m) = e else {
                panic!("{e}")
            };
            assert!(m.contains("1ns deadline (--query-timeout)"), "{m}");
            assert!(m.contains("group by node and errno only"), "{m}");
            assert!(!m.contains("SELECT"), "{m}");
        }
        // Work that stays under the check interval is not stopped.
        assert!(r.known_node("a").unwrap());
        let e = r.replay_page(0, u64::MAX, None, 1_000).unwrap_err();
        assert!(e.to_string().contains("since_hub_seq"), "{e}");
    }

    #[test]
    fn in_memory_stores_are_separate() {
        let (mut w1, r1) = super::super::testkit::open(":memory:").unwrap();
        let (_w2, r2) = super::super::testkit::open(":memory:").unwrap();
        w1.hello(&hello("a"), 1).unwrap();
        assert!(r1.known_node("a").unwrap());
        assert!(!r2.known_node("a").unwrap());
    }
}
