//! Reader connections: a small pool, one connection per concurrent query, each with the
//! budget's `statement_timeout` (a query stopped there is RESOURCE_EXHAUSTED, as in SQLite).

use std::sync::{Mutex, PoisonError};

use postgres::{Client, error::SqlState};
use tapper_proto::v1::TapperInfo;

use super::{Database, numbering::Watermark, replay, stats, tappers};
use crate::store::{
    InstanceKey, QueryBudget, Reader, Result, StatsQuery, StatsResult, StoreError, Stored,
    budget::Work,
};

/// Idle connections kept for reuse; more are opened when more queries run at once.
const MAX_IDLE: usize = 4;

/// The read side of a PostgreSQL store.
pub struct PgReader {
    db: Database,
    budget: QueryBudget,
    idle: Mutex<Vec<Client>>,
    /// Replays and the live tail read no row above it.
    watermark: Watermark,
}

impl PgReader {
    pub(super) fn new(db: Database, budget: QueryBudget, watermark: Watermark) -> Self {
        Self {
            db,
            budget,
            idle: Mutex::new(Vec::new()),
            watermark,
        }
    }

    fn connect(&self) -> Result<Client> {
        let mut client = self.db.connect()?;
        let ms = self.budget.timeout.as_millis().clamp(1, i32::MAX as u128);
        client.batch_execute(&format!("SET statement_timeout = {ms}"))?;
        Ok(client)
    }

    /// Runs `f` on a pooled connection; a statement stopped at the deadline is an
    /// over-budget error for `work`. A connection that failed is not reused.
    fn with_client<T>(&self, work: Work, f: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut client = match pooled {
            Some(c) if !c.is_closed() => c,
            _ => self.connect()?,
        };
        let result = f(&mut client);
        if let Err(StoreError::Engine { source, .. }) = &result
            && source
                .downcast_ref::<postgres::Error>()
                .and_then(postgres::Error::code)
                == Some(&SqlState::QUERY_CANCELED)
        {
            return Err(self.budget.over_time(work));
        }
        if result.is_ok() && !client.is_closed() {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push(client);
            }
        }
        result
    }
}

impl Drop for PgReader {
    /// A client closes by blocking on its own runtime, which an async task may not do: the
    /// pooled ones close on a thread of their own.
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(PoisonError::into_inner));
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

impl Reader for PgReader {
    fn known_node(&self, node: &str) -> Result<bool> {
        self.with_client(Work::Tappers, |c| tappers::known_node(c, node))
    }

    fn tappers(
        &self,
        after: Option<&InstanceKey>,
        nodes: &[String],
        limit: usize,
    ) -> Result<Vec<TapperInfo>> {
        self.with_client(Work::Tappers, |c| tappers::page(c, after, nodes, limit))
    }

    fn first_received_since(&self, since_ns: i64) -> Result<Option<u64>> {
        self.with_client(Work::Replay, |c| replay::first_received_since(c, since_ns))
    }

    fn replay_page(
        &self,
        from: u64,
        to: u64,
        since_ns: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Stored>> {
        self.with_client(Work::Replay, |c| {
            let to = to.min(self.watermark.read(c)?);
            replay::page(c, from, to, since_ns, limit)
        })
    }

    fn stats(&self, q: &StatsQuery) -> Result<StatsResult> {
        self.with_client(Work::Stats, |c| stats::query(c, q, &self.budget))
    }

    fn rows(&self) -> Result<u64> {
        self.with_client(Work::Stats, |c| {
            let n: i64 = c
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM events) + (SELECT COUNT(*) FROM losses)
                          + (SELECT COUNT(*) FROM warnings)",
                    &[],
                )?
                .get(0);
            Ok(n.max(0) as u64)
        })
    }
}
