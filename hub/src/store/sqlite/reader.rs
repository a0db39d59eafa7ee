//! Reader connections: a small pool, one connection per concurrent query, each read-only,
//! so a long GetStats scan or replay page never holds up the writer.

use std::{
    collections::HashSet,
    sync::{Mutex, PoisonError},
};

use rusqlite::Connection;
use tracing::warn;

use super::{Location, replay, stats, tappers};
use crate::store::{InstanceKey, Reader, Result, StatsQuery, StatsResult, Stored};
use tapper_proto::v1::TapperInfo;

/// Idle connections kept for reuse; more are opened when more queries run at once.
const MAX_IDLE: usize = 4;

/// Unreadable rows remembered so that each is logged once (beyond this, not logged).
const MAX_UNREADABLE_LOGGED: usize = 1024;

/// The read side of a SQLite store.
pub struct SqliteReader {
    location: Location,
    idle: Mutex<Vec<Connection>>,
    /// hub_seq numbers of unreadable rows already logged.
    unreadable: Mutex<HashSet<u64>>,
}

impl SqliteReader {
    pub(super) fn new(location: Location) -> Self {
        Self {
            location,
            idle: Mutex::new(Vec::new()),
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

    /// Runs `f` on a connection of its own; the connection goes back to the pool unless
    /// `f` left a transaction open.
    pub(super) fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let r = f(&conn);
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
        self.with_conn(|c| tappers::known_node(c, node))
    }

    fn tappers(
        &self,
        after: Option<&InstanceKey>,
        nodes: &[String],
        limit: usize,
    ) -> Result<Vec<TapperInfo>> {
        self.with_conn(|c| tappers::page(c, after, nodes, limit))
    }

    fn first_received_since(&self, since_ns: i64) -> Result<Option<u64>> {
        self.with_conn(|c| replay::first_received_since(c, since_ns))
    }

    fn replay_page(
        &self,
        from: u64,
        to: u64,
        since_ns: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Stored>> {
        self.with_conn(|c| {
            replay::page(c, from, to, since_ns, limit, &|s, e| {
                self.log_unreadable(s, e)
            })
        })
    }

    fn stats(&self, q: &StatsQuery) -> Result<StatsResult> {
        self.with_conn(|c| stats::query(c, q))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{TempDb, ev, hello, key};
    use crate::store::{Reader, Writer};

    /// Holds a read transaction open on a reader connection while the writer commits: the
    /// commit must not wait for it (it would fail with "busy" if it did).
    fn writer_commits_under_an_open_read(path: &str) {
        let (mut w, r) = super::super::open(path).unwrap();
        w.hello(&hello("a"), 1).unwrap();
        w.commit_events(&key("a"), vec![ev(1, 24)], 2).unwrap();
        r.with_conn(|c| {
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
    fn in_memory_stores_are_separate() {
        let (mut w1, r1) = super::super::open(":memory:").unwrap();
        let (_w2, r2) = super::super::open(":memory:").unwrap();
        w1.hello(&hello("a"), 1).unwrap();
        assert!(r1.known_node("a").unwrap());
        assert!(!r2.known_node("a").unwrap());
    }
}
