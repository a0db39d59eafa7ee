//! The writer connection: the engine's queries under the store's commit policy (Hello,
//! event, loss and warning commits with dedup by (node, instance, seq)), the per-minute
//! rollups of the events, counters, and the hub_seq high-water mark. Each commit is a
//! savepoint, so many of them can share one group transaction.

use std::collections::{HashMap, HashSet};

use prost::Message;
use rusqlite::{Connection, OptionalExtension, Savepoint, params};
use tapper_proto::v1::{Counters, Event, Hello, Loss, LossNotice, Warning};

use super::{
    Location, checkpoint::Checkpointer, i2u, insert, losses, retention, rollups, schema, u2i,
    warnings,
};
use crate::store::{
    Committed, InstanceKey, Result, Writer,
    policy::{CommitQueries, Ledger, LossRows},
};

/// Prepared statements the writer keeps.
const WRITER_STATEMENTS: usize = 64;

/// The one connection that writes, with the state that numbering and dedup need.
pub struct SqliteWriter {
    /// Declared before `_checkpointer`, so it closes first (which ends that thread).
    conn: Connection,
    ledger: Ledger,
    /// None in memory, where there is no WAL.
    _checkpointer: Option<Checkpointer>,
}

/// The writer connection's commit steps; new records are numbered after `last_hub_seq`.
struct Steps<'a> {
    conn: &'a mut Connection,
    last_hub_seq: u64,
    /// Inside a group transaction, which persists the high-water mark at its end.
    grouped: bool,
}

/// Persists the hub_seq high-water mark, so that retention cannot make numbers repeat.
fn store_last_hub_seq(conn: &Connection, last_hub_seq: u64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('last_hub_seq', ?1)
         ON CONFLICT (key) DO UPDATE SET value = ?1",
    )?
    .execute(params![u2i(last_hub_seq)])?;
    Ok(())
}

/// Releases the savepoint (which commits, unless a group transaction is open). Outside a
/// group it persists the high-water mark first; a group does that once, at its end.
fn commit_through(tx: Savepoint<'_>, grouped: bool, last_hub_seq: u64) -> Result<()> {
    if !grouped {
        store_last_hub_seq(&tx, last_hub_seq)?;
    }
    tx.commit()?;
    Ok(())
}

/// Sets the tapper row's acked seq and last_seen.
fn set_acked(tx: &Connection, key: &InstanceKey, acked: u64, now_ns: i64) -> Result<()> {
    tx.prepare_cached(
        "UPDATE tappers SET acked_seq = ?3, last_seen_ns = ?4
         WHERE node = ?1 AND instance_id = ?2",
    )?
    .execute(params![key.node, key.instance_id, u2i(acked), now_ns])?;
    Ok(())
}

impl CommitQueries for Steps<'_> {
    fn stored_acked(&mut self, key: &InstanceKey) -> Result<u64> {
        let acked: Option<i64> = self
            .conn
            .prepare_cached("SELECT acked_seq FROM tappers WHERE node = ?1 AND instance_id = ?2")?
            .query_row(params![key.node, key.instance_id], |r| r.get(0))
            .optional()?;
        Ok(i2u(acked.unwrap_or(0)))
    }

    fn store_events(
        &mut self,
        key: &InstanceKey,
        events: &mut [Event],
        acked: u64,
        now_ns: i64,
    ) -> Result<Vec<(u64, u64)>> {
        let tx = self.conn.savepoint()?;
        let stored = insert::events(&tx, key, events, self.last_hub_seq, now_ns)?;
        let next = stored
            .last()
            .map_or(self.last_hub_seq, |&(_, hub_seq)| hub_seq);
        let stored_seqs: HashSet<u64> = stored.iter().map(|&(seq, _)| seq).collect();
        let mut counts = HashMap::<(i32, &str), i64>::new();
        for e in events.iter().filter(|e| stored_seqs.contains(&e.seq)) {
            // An event stands for the failures the tapper's rate limit suppressed too.
            *counts.entry((e.errno, e.errno_name.as_str())).or_default() += 1 + u2i(e.suppressed);
        }
        rollups::add(&tx, &key.node, rollups::minute(now_ns), &counts)?;
        tx.prepare_cached(
            "UPDATE tappers SET events_received = events_received + ?3, acked_seq = ?4,
                                last_seen_ns = ?5
             WHERE node = ?1 AND instance_id = ?2",
        )?
        .execute(params![
            key.node,
            key.instance_id,
            stored.len() as i64,
            u2i(acked),
            now_ns
        ])?;
        commit_through(tx, self.grouped, next)?;
        Ok(stored)
    }

    fn store_loss<F>(
        &mut self,
        key: &InstanceKey,
        acked: u64,
        now_ns: i64,
        store: F,
    ) -> Result<Option<u64>>
    where
        F: FnOnce(&mut dyn LossRows) -> Result<Option<u64>>,
    {
        let tx = self.conn.savepoint()?;
        let hub_seq = store(&mut losses::Rows {
            tx: &tx,
            hub_seq: self.last_hub_seq + 1,
        })?;
        set_acked(&tx, key, acked, now_ns)?;
        commit_through(tx, self.grouped, hub_seq.unwrap_or(self.last_hub_seq))?;
        Ok(hub_seq)
    }

    fn store_warning(
        &mut self,
        key: &InstanceKey,
        warning: Option<&Warning>,
        acked: u64,
        now_ns: i64,
    ) -> Result<Option<u64>> {
        let tx = self.conn.savepoint()?;
        let hub_seq = self.last_hub_seq + 1;
        let stored = match warning {
            Some(w) => warnings::insert(&tx, key, w, hub_seq, now_ns)?,
            None => false,
        };
        set_acked(&tx, key, acked, now_ns)?;
        let stored = stored.then_some(hub_seq);
        commit_through(tx, self.grouped, stored.unwrap_or(self.last_hub_seq))?;
        Ok(stored)
    }
}

impl SqliteWriter {
    /// Opens the writer connection and brings the schema up to date.
    pub(super) fn open(location: &Location) -> Result<Self> {
        let mut conn = location.connect()?;
        // Room for every statement a commit runs, the multi-row inserts' among them.
        conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
        if !location.memory {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        // FULL: an acked commit survives a crash of the hub process and of the machine.
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Each batch's savepoint journals the pages it changes; in memory that is no file
        // write per page (a batch changes a few hundred pages at most). Crash safety is
        // the WAL's, not the savepoint's.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        schema::migrate(&mut conn)?;
        let ledger = Ledger::new(stored_last_hub_seq(&conn)?);
        let checkpointer = match location.memory {
            true => None,
            false => Some(Checkpointer::start(location, &mut conn)?),
        };
        Ok(Self {
            conn,
            ledger,
            _checkpointer: checkpointer,
        })
    }

    /// The connection's commit steps, numbering after the ledger's high-water mark.
    fn steps(&mut self) -> (&mut Ledger, Steps<'_>) {
        let last_hub_seq = self.ledger.last_hub_seq();
        let grouped = !self.conn.is_autocommit();
        (
            &mut self.ledger,
            Steps {
                conn: &mut self.conn,
                last_hub_seq,
                grouped,
            },
        )
    }

    /// Number of instances whose seq state is cached.
    #[cfg(test)]
    pub(super) fn cached_instances(&self) -> usize {
        self.ledger.cached_instances()
    }
}

/// The highest hub_seq ever assigned, as stored.
fn stored_last_hub_seq(conn: &Connection) -> Result<u64> {
    let last: i64 = conn.query_row(
        "SELECT MAX(
             COALESCE((SELECT value FROM meta WHERE key = 'last_hub_seq'), 0),
             COALESCE((SELECT MAX(hub_seq) FROM events), 0),
             COALESCE((SELECT MAX(hub_seq) FROM losses), 0),
             COALESCE((SELECT MAX(hub_seq) FROM warnings), 0))",
        [],
        |r| r.get(0),
    )?;
    Ok(i2u(last))
}

impl Writer for SqliteWriter {
    fn last_hub_seq(&self) -> u64 {
        self.ledger.last_hub_seq()
    }

    fn begin_group(&mut self) -> Result<()> {
        self.conn.execute_batch("BEGIN")?;
        Ok(())
    }

    fn end_group(&mut self) -> Result<()> {
        if self.conn.is_autocommit() {
            return Ok(());
        }
        let committed = store_last_hub_seq(&self.conn, self.ledger.last_hub_seq())
            .and_then(|()| Ok(self.conn.execute_batch("COMMIT")?));
        let Err(err) = committed else {
            return Ok(());
        };
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        // Forgets what the rolled-back commits had settled.
        self.ledger = Ledger::new(stored_last_hub_seq(&self.conn)?);
        Err(err)
    }

    fn hello(&mut self, hello: &Hello, now_ns: i64) -> Result<u64> {
        self.conn.execute(
            "INSERT INTO tappers (node, instance_id, kernel_release, probe_mode, agent_version,
                                  first_seen_ns, last_seen_ns)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (node, instance_id) DO UPDATE SET
                 kernel_release = ?3, probe_mode = ?4, agent_version = ?5, last_seen_ns = ?6",
            params![
                hello.node,
                hello.instance_id,
                hello.kernel_release,
                hello.probe_mode,
                hello.agent_version,
                now_ns
            ],
        )?;
        let key = InstanceKey {
            node: hello.node.clone(),
            instance_id: hello.instance_id.clone(),
        };
        let (ledger, mut steps) = self.steps();
        ledger.acked(&mut steps, &key)
    }

    fn commit_events(
        &mut self,
        key: &InstanceKey,
        events: Vec<Event>,
        now_ns: i64,
    ) -> Result<Committed<Event>> {
        let (ledger, mut steps) = self.steps();
        ledger.commit_events(&mut steps, key, events, now_ns)
    }

    fn commit_loss(
        &mut self,
        key: &InstanceKey,
        loss: Loss,
        now_ns: i64,
    ) -> Result<Committed<LossNotice>> {
        let (ledger, mut steps) = self.steps();
        ledger.commit_loss(&mut steps, key, loss, now_ns)
    }

    fn commit_warning(
        &mut self,
        key: &InstanceKey,
        warning: Warning,
        now_ns: i64,
    ) -> Result<Committed<Warning>> {
        let (ledger, mut steps) = self.steps();
        ledger.commit_warning(&mut steps, key, warning, now_ns)
    }

    fn set_counters(&mut self, key: &InstanceKey, c: &Counters, now_ns: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE tappers SET counters = ?3, last_seen_ns = ?4
                 WHERE node = ?1 AND instance_id = ?2",
            )?
            .execute(params![
                key.node,
                key.instance_id,
                c.encode_to_vec(),
                now_ns
            ])?;
        Ok(())
    }

    fn stream_ended(&mut self, key: &InstanceKey, now_ns: i64) -> Result<()> {
        self.ledger.forget(key);
        self.conn.execute(
            "UPDATE tappers SET last_seen_ns = ?3 WHERE node = ?1 AND instance_id = ?2",
            params![key.node, key.instance_id, now_ns],
        )?;
        Ok(())
    }

    fn apply_retention(
        &mut self,
        max_age_ns: Option<i64>,
        max_rows: Option<u64>,
        now_ns: i64,
    ) -> Result<u64> {
        retention::apply(&mut self.conn, max_age_ns, max_rows, now_ns)
    }

    fn expire_instances(&mut self, max_idle_ns: i64, now_ns: i64) -> Result<u64> {
        let live = self.ledger.live();
        retention::expire_instances(&mut self.conn, now_ns.saturating_sub(max_idle_ns), &live)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{ev, hello, key, open};
    use crate::store::Writer;

    #[test]
    fn ended_streams_are_forgotten() {
        let (mut w, _r) = open(":memory:").unwrap();
        w.hello(&hello("a"), 1).unwrap();
        w.commit_events(&key("a"), vec![ev(1, 24), ev(2, 24)], 2)
            .unwrap();
        assert_eq!(w.cached_instances(), 1);
        w.stream_ended(&key("a"), 3).unwrap();
        assert_eq!(w.cached_instances(), 0);
    }
}
