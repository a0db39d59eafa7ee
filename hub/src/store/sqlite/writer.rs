//! The writer connection: the engine's queries under the store's commit policy (Hello,
//! event, loss and warning commits with dedup by (node, instance, seq)), the per-minute
//! rollups of the events, counters, and the hub_seq high-water mark. Each commit is a
//! savepoint, so many of them can share one group transaction.

use std::collections::{HashMap, HashSet};

use prost::Message;
use rusqlite::{Connection, OptionalExtension, Savepoint, params, params_from_iter};
use tapper_proto::v1::{Counters, Event, Hello, Loss, LossNotice, Warning};

use super::{Location, i2u, identity, losses, retention, rollups, schema, stacks, u2i, warnings};
use crate::{
    clock::from_ts,
    store::{
        Committed, InstanceKey, Result, Writer,
        policy::{CommitQueries, Ledger, LossRows},
    },
};

/// The one connection that writes, with the state that numbering and dedup need.
pub struct SqliteWriter {
    conn: Connection,
    ledger: Ledger,
}

/// The writer connection's commit steps; new records are numbered after `last_hub_seq`.
struct Steps<'a> {
    conn: &'a mut Connection,
    last_hub_seq: u64,
}

/// Persists the hub_seq high-water mark (so retention cannot make numbers repeat) and
/// releases the savepoint (which commits, unless a group transaction is open).
fn commit_through(tx: Savepoint<'_>, last_hub_seq: u64) -> Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('last_hub_seq', ?1)
         ON CONFLICT (key) DO UPDATE SET value = ?1",
        params![u2i(last_hub_seq)],
    )?;
    tx.commit()?;
    Ok(())
}

/// Sets the tapper row's acked seq and last_seen.
fn set_acked(tx: &Connection, key: &InstanceKey, acked: u64, now_ns: i64) -> Result<()> {
    tx.execute(
        "UPDATE tappers SET acked_seq = ?3, last_seen_ns = ?4
         WHERE node = ?1 AND instance_id = ?2",
        params![key.node, key.instance_id, u2i(acked), now_ns],
    )?;
    Ok(())
}

impl CommitQueries for Steps<'_> {
    fn stored_acked(&mut self, key: &InstanceKey) -> Result<u64> {
        let acked: Option<i64> = self
            .conn
            .query_row(
                "SELECT acked_seq FROM tappers WHERE node = ?1 AND instance_id = ?2",
                params![key.node, key.instance_id],
                |r| r.get(0),
            )
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
        let mut stored = Vec::new();
        let mut next = self.last_hub_seq;
        let tx = self.conn.savepoint()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (hub_seq, node, instance_id, seq, ts_ns, received_ns,
                     pid, errno, errno_name, family, family_name, comm, cgroup_id, body,
                     source, cgroup_path, container_id, container_runtime, container_name,
                     container_image, pod_uid, pod_namespace, pod_name, pod_labels,
                     quota_memory_max, quota_memory_current, quota_pids_max,
                     quota_pids_current, quota_file_nr, quota_file_max, suppressed, stack_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                     ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32)",
            )?;
            for e in events.iter_mut() {
                // The body keeps no frames: they are stored once per distinct stack.
                let frames = std::mem::take(&mut e.user_stack);
                let stack_id = stacks::store(&tx, &frames)?;
                let body = e.encode_to_vec();
                e.user_stack = frames;
                let ts_ns = e.ts.as_ref().map_or(0, from_ts);
                let hub_seq = next + 1;
                let identity = identity::values(e);
                let columns = params![
                    u2i(hub_seq),
                    key.node,
                    key.instance_id,
                    u2i(e.seq),
                    ts_ns,
                    now_ns,
                    e.pid,
                    e.errno,
                    e.errno_name,
                    e.family,
                    e.family_name,
                    e.comm,
                    u2i(e.cgroup_id),
                    body
                ];
                let identity = identity.iter().map(|v| v as &dyn rusqlite::ToSql);
                let suppressed = u2i(e.suppressed);
                let tail = [
                    &suppressed as &dyn rusqlite::ToSql,
                    &stack_id as &dyn rusqlite::ToSql,
                ];
                let inserted = insert.execute(params_from_iter(
                    columns.iter().copied().chain(identity).chain(tail),
                ))?;
                if inserted == 1 {
                    next = hub_seq;
                    stored.push((e.seq, hub_seq));
                }
            }
        }
        let stored_seqs: HashSet<u64> = stored.iter().map(|&(seq, _)| seq).collect();
        let mut counts = HashMap::<(i32, &str), i64>::new();
        for e in events.iter().filter(|e| stored_seqs.contains(&e.seq)) {
            // An event stands for the failures the tapper's rate limit suppressed too.
            *counts.entry((e.errno, e.errno_name.as_str())).or_default() += 1 + u2i(e.suppressed);
        }
        rollups::add(&tx, &key.node, rollups::minute(now_ns), &counts)?;
        tx.execute(
            "UPDATE tappers SET events_received = events_received + ?3, acked_seq = ?4,
                                last_seen_ns = ?5
             WHERE node = ?1 AND instance_id = ?2",
            params![
                key.node,
                key.instance_id,
                stored.len() as i64,
                u2i(acked),
                now_ns
            ],
        )?;
        commit_through(tx, next)?;
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
        commit_through(tx, hub_seq.unwrap_or(self.last_hub_seq))?;
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
        commit_through(tx, stored.unwrap_or(self.last_hub_seq))?;
        Ok(stored)
    }
}

impl SqliteWriter {
    /// Opens the writer connection and brings the schema up to date.
    pub(super) fn open(location: &Location) -> Result<Self> {
        let mut conn = location.connect()?;
        if !location.memory {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        // FULL: an acked commit survives a crash of the hub process and of the machine.
        conn.pragma_update(None, "synchronous", "FULL")?;
        schema::migrate(&mut conn)?;
        let ledger = Ledger::new(stored_last_hub_seq(&conn)?);
        Ok(Self { conn, ledger })
    }

    /// The connection's commit steps, numbering after the ledger's high-water mark.
    fn steps(&mut self) -> (&mut Ledger, Steps<'_>) {
        let last_hub_seq = self.ledger.last_hub_seq();
        (
            &mut self.ledger,
            Steps {
                conn: &mut self.conn,
                last_hub_seq,
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
        let Err(err) = self.conn.execute_batch("COMMIT") else {
            return Ok(());
        };
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        // Forgets what the rolled-back commits had settled.
        self.ledger = Ledger::new(stored_last_hub_seq(&self.conn)?);
        Err(err.into())
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
        self.conn.execute(
            "UPDATE tappers SET counters = ?3, last_seen_ns = ?4 WHERE node = ?1 AND instance_id = ?2",
            params![key.node, key.instance_id, c.encode_to_vec(), now_ns],
        )?;
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
    use super::super::testkit::{TempDb, ev, hello, key, loss};
    use crate::store::{QueryBudget, Reader, Store, Writer};

    #[test]
    fn dedup_ack_and_hub_seq() {
        let st = Store::open(":memory:", QueryBudget::default()).unwrap();
        let (mut w, r) = (st.writer, st.reader);
        assert_eq!(w.hello(&hello("a"), 1).unwrap(), 0);
        let c = w
            .commit_events(&key("a"), vec![ev(1, 24), ev(2, 24), ev(4, 22)], 5)
            .unwrap();
        assert_eq!(c.new.len(), 3);
        assert_eq!(c.acked, 2);
        assert_eq!(
            c.new.iter().map(|e| e.hub_seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let c = w
            .commit_events(&key("a"), vec![ev(2, 24), ev(3, 24), ev(4, 22)], 6)
            .unwrap();
        assert_eq!(c.new.len(), 1, "only seq 3 is new");
        assert_eq!(c.acked, 4);
        let l = w.commit_loss(&key("a"), loss(5, 6), 7).unwrap();
        assert_eq!((l.new.len(), l.acked), (1, 6));
        let l = w.commit_loss(&key("a"), loss(5, 6), 7).unwrap();
        assert_eq!(l.new.len(), 0, "duplicate loss");
        let t = &r.tappers(None, &[], 10).unwrap()[0];
        assert_eq!(
            (t.events_received, t.losses_reported, t.acked_seq),
            (4, 2, 6)
        );
        let page = r.replay_page(0, u64::MAX, None, 100).unwrap();
        assert_eq!(
            page.iter().map(|s| s.hub_seq()).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn ended_streams_are_forgotten_and_dedup_still_holds() {
        let (mut w, r) = super::super::testkit::open(":memory:").unwrap();
        w.hello(&hello("a"), 1).unwrap();
        // seq 3 is missing: 4 and 5 are committed above the acked seq.
        let c = w
            .commit_events(
                &key("a"),
                vec![ev(1, 24), ev(2, 24), ev(4, 24), ev(5, 24)],
                2,
            )
            .unwrap();
        assert_eq!(c.acked, 2);
        assert_eq!(w.cached_instances(), 1);
        w.stream_ended(&key("a"), 3).unwrap();
        assert_eq!(w.cached_instances(), 0);
        // The reconnecting tapper re-sends everything above its ack.
        assert_eq!(w.hello(&hello("a"), 4).unwrap(), 2);
        let c = w
            .commit_events(&key("a"), vec![ev(3, 24), ev(4, 24), ev(5, 24)], 5)
            .unwrap();
        assert_eq!(c.new.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3]);
        assert_eq!(c.acked, 5);
        assert_eq!(r.tappers(None, &[], 10).unwrap()[0].events_received, 5);
    }

    #[test]
    fn a_group_is_stored_at_its_end_and_a_refused_step_undoes_only_itself() {
        let db = TempDb::new("group");
        let st = Store::open(&db.path(), QueryBudget::default()).unwrap();
        let (mut w, r) = (st.writer, st.reader);
        w.hello(&hello("a"), 1).unwrap();
        w.hello(&hello("b"), 1).unwrap();
        w.begin_group().unwrap();
        let a = w
            .commit_events(&key("a"), vec![ev(1, 24), ev(2, 24)], 2)
            .unwrap();
        assert!(
            w.commit_loss(&key("a"), loss(2, 3), 2).is_err(),
            "a loss over a stored event is refused"
        );
        let b = w.commit_events(&key("b"), vec![ev(1, 22)], 2).unwrap();
        assert_eq!((a.acked, b.acked, w.last_hub_seq()), (2, 1, 3));
        assert!(
            r.replay_page(0, u64::MAX, None, 10).unwrap().is_empty(),
            "nothing is visible before the group commits"
        );
        w.end_group().unwrap();
        let stored = r.replay_page(0, u64::MAX, None, 10).unwrap();
        assert_eq!(
            stored.iter().map(|s| s.hub_seq()).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let acked: Vec<u64> = r
            .tappers(None, &[], 10)
            .unwrap()
            .iter()
            .map(|t| t.acked_seq)
            .collect();
        assert_eq!(acked, vec![2, 1]);
        // The refused loss left seq 3 free for a later event.
        let c = w.commit_events(&key("a"), vec![ev(3, 24)], 4).unwrap();
        assert_eq!((c.new.len(), c.acked), (1, 3));
    }

    #[test]
    fn state_survives_reopen() {
        let db = TempDb::new("reopen");
        {
            let mut st = Store::open(&db.path(), QueryBudget::default()).unwrap();
            st.writer.hello(&hello("a"), 1).unwrap();
            st.writer
                .commit_events(&key("a"), vec![ev(1, 24), ev(2, 24)], 5)
                .unwrap();
        }
        let mut st = Store::open(&db.path(), QueryBudget::default()).unwrap();
        assert_eq!(st.last_hub_seq(), 2);
        assert_eq!(st.writer.hello(&hello("a"), 9).unwrap(), 2);
        let c = st
            .writer
            .commit_events(&key("a"), vec![ev(2, 24), ev(3, 24)], 9)
            .unwrap();
        assert_eq!((c.new.len(), c.new[0].hub_seq, c.acked), (1, 3, 3));
    }
}
