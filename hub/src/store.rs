//! The SQLite store: events, loss records and tappers; dedup by (node, instance, seq), the
//! per-instance acked sequence, replay pages, stats queries and retention.

use std::collections::{BTreeMap, HashMap};

use prost::Message;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter, types::Value};
use tapper_proto::v1::{Counters, Event, Hello, Loss, LossNotice, StatsRow, TapperInfo};

use crate::clock::to_ts;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is locked or busy; retrying may work.
    #[error("database busy: {0}")]
    Busy(rusqlite::Error),
    /// Any other SQLite error.
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    /// A stored blob does not decode.
    #[error("stored record does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                Self::Busy(e)
            }
            _ => Self::Sqlite(e),
        }
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// Identifies one tapper run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKey {
    pub node: String,
    pub instance_id: String,
}

/// Which seq numbers of an instance are committed: all up to `acked`, plus ranges above.
#[derive(Debug, Clone, Default)]
struct SeqState {
    acked: u64,
    /// first -> last of committed ranges above `acked + 1`.
    above: BTreeMap<u64, u64>,
}

impl SeqState {
    fn is_committed(&self, seq: u64) -> bool {
        seq <= self.acked
            || self
                .above
                .range(..=seq)
                .next_back()
                .is_some_and(|(_, &last)| seq <= last)
    }

    fn mark(&mut self, first: u64, last: u64) {
        if last <= self.acked {
            return;
        }
        let e = self.above.entry(first).or_insert(last);
        *e = (*e).max(last);
        while let Some((&f, &l)) = self.above.first_key_value() {
            if f > self.acked + 1 {
                break;
            }
            self.acked = self.acked.max(l);
            self.above.remove(&f);
        }
    }
}

/// What a commit added.
#[derive(Debug, Default)]
pub struct Committed<T> {
    /// New records, with their hub fields set (duplicates left out).
    pub new: Vec<T>,
    /// The instance's acked seq after the commit.
    pub acked: u64,
}

/// An item of a replay, in hub order.
#[allow(clippy::large_enum_variant)] // events are the common case
#[derive(Debug)]
pub enum Stored {
    Event(Event),
    Loss(LossNotice),
}

impl Stored {
    pub fn hub_seq(&self) -> u64 {
        match self {
            Self::Event(e) => e.hub_seq,
            Self::Loss(l) => l.hub_seq,
        }
    }
}

/// Stats query, already validated.
#[derive(Debug)]
pub struct StatsQuery {
    /// Column groups in order (see [`GroupCol`]).
    pub group: Vec<GroupCol>,
    pub since_ns: i64,
    pub until_ns: i64,
    pub nodes: Vec<String>,
}

/// A group-by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupCol {
    Node,
    Errno,
    Family,
    Comm,
    Cgroup,
}

/// Stats result rows and totals.
#[derive(Debug, Default)]
pub struct StatsResult {
    pub rows: Vec<StatsRow>,
    pub per_node: HashMap<String, u64>,
    pub total_events: u64,
    pub total_lost: u64,
}

/// The hub's store. Not thread-safe by itself: the hub keeps it behind a mutex.
pub struct Store {
    conn: Connection,
    last_hub_seq: u64,
    instances: HashMap<InstanceKey, SeqState>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    hub_seq INTEGER PRIMARY KEY,
    node TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    errno INTEGER NOT NULL,
    errno_name TEXT NOT NULL,
    family INTEGER,
    family_name TEXT NOT NULL,
    comm TEXT NOT NULL,
    cgroup_id INTEGER NOT NULL,
    body BLOB NOT NULL,
    UNIQUE (node, instance_id, seq)
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts_ns);
CREATE TABLE IF NOT EXISTS losses (
    hub_seq INTEGER PRIMARY KEY,
    node TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    reason TEXT NOT NULL,
    received_ns INTEGER NOT NULL,
    UNIQUE (node, instance_id, first_seq)
);
CREATE TABLE IF NOT EXISTS tappers (
    node TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    kernel_release TEXT NOT NULL,
    probe_mode TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    first_seen_ns INTEGER NOT NULL,
    last_seen_ns INTEGER NOT NULL,
    events_received INTEGER NOT NULL DEFAULT 0,
    losses_reported INTEGER NOT NULL DEFAULT 0,
    loss_records INTEGER NOT NULL DEFAULT 0,
    acked_seq INTEGER NOT NULL DEFAULT 0,
    counters BLOB,
    PRIMARY KEY (node, instance_id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

/// SQLite stores u64 as i64 bit patterns (cgroup ids can use the top bit).
fn u2i(v: u64) -> i64 {
    v as i64
}

fn i2u(v: i64) -> u64 {
    v as u64
}

/// Persists the hub_seq high-water mark so retention cannot make numbers repeat.
fn bump_hub_seq(tx: &rusqlite::Transaction<'_>, last: u64) -> Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('last_hub_seq', ?1)
         ON CONFLICT (key) DO UPDATE SET value = ?1",
        params![u2i(last)],
    )?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database at `path`; `:memory:` keeps it in memory.
    pub fn open(path: &str) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        if path != ":memory:" {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        // FULL: an acked commit survives a crash of the hub process and of the machine.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        let last_hub_seq: i64 = conn.query_row(
            "SELECT MAX(
                 COALESCE((SELECT value FROM meta WHERE key = 'last_hub_seq'), 0),
                 COALESCE((SELECT MAX(hub_seq) FROM events), 0),
                 COALESCE((SELECT MAX(hub_seq) FROM losses), 0))",
            [],
            |r| r.get(0),
        )?;
        Ok(Self {
            conn,
            last_hub_seq: i2u(last_hub_seq),
            instances: HashMap::new(),
        })
    }

    /// The highest hub_seq assigned so far.
    pub fn last_hub_seq(&self) -> u64 {
        self.last_hub_seq
    }

    fn seq_state(&mut self, key: &InstanceKey) -> Result<SeqState> {
        if let Some(s) = self.instances.get(key) {
            return Ok(s.clone());
        }
        let acked: Option<i64> = self
            .conn
            .query_row(
                "SELECT acked_seq FROM tappers WHERE node = ?1 AND instance_id = ?2",
                params![key.node, key.instance_id],
                |r| r.get(0),
            )
            .optional()?;
        let s = SeqState {
            acked: i2u(acked.unwrap_or(0)),
            above: BTreeMap::new(),
        };
        self.instances.insert(key.clone(), s.clone());
        Ok(s)
    }

    /// Records a Hello (creating or refreshing the tapper row); returns the acked seq.
    pub fn hello(&mut self, hello: &Hello, now_ns: i64) -> Result<u64> {
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
        Ok(self.seq_state(&key)?.acked)
    }

    /// Stores the events of one batch in one transaction. Events whose seq is already
    /// committed are duplicates and left out of the result.
    pub fn commit_events(
        &mut self,
        key: &InstanceKey,
        events: Vec<Event>,
        now_ns: i64,
    ) -> Result<Committed<Event>> {
        let mut state = self.seq_state(key)?;
        let mut new = Vec::new();
        let mut next = self.last_hub_seq;
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (hub_seq, node, instance_id, seq, ts_ns, received_ns,
                     pid, errno, errno_name, family, family_name, comm, cgroup_id, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?;
            for mut e in events {
                if state.is_committed(e.seq) {
                    continue;
                }
                state.mark(e.seq, e.seq);
                e.node.clone_from(&key.node);
                e.instance_id.clone_from(&key.instance_id);
                e.hub_seq = 0;
                e.received = None;
                let body = e.encode_to_vec();
                let ts_ns = e.ts.as_ref().map_or(0, crate::clock::from_ts);
                let hub_seq = next + 1;
                let inserted = insert.execute(params![
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
                ])?;
                if inserted == 1 {
                    next = hub_seq;
                    e.hub_seq = hub_seq;
                    e.received = Some(to_ts(now_ns));
                    new.push(e);
                }
            }
        }
        tx.execute(
            "UPDATE tappers SET events_received = events_received + ?3, acked_seq = ?4,
                                last_seen_ns = ?5
             WHERE node = ?1 AND instance_id = ?2",
            params![
                key.node,
                key.instance_id,
                new.len() as i64,
                u2i(state.acked),
                now_ns
            ],
        )?;
        let added = next - self.last_hub_seq;
        bump_hub_seq(&tx, self.last_hub_seq + added)?;
        tx.commit()?;
        self.last_hub_seq = next;
        let acked = state.acked;
        self.instances.insert(key.clone(), state);
        Ok(Committed { new, acked })
    }

    /// Stores one loss record; a record whose range is already committed is a duplicate.
    pub fn commit_loss(
        &mut self,
        key: &InstanceKey,
        loss: Loss,
        now_ns: i64,
    ) -> Result<Committed<LossNotice>> {
        let mut state = self.seq_state(key)?;
        let mut new = Vec::new();
        let tx = self.conn.transaction()?;
        let mut added = 0;
        if !state.is_committed(loss.first_seq) {
            let hub_seq = self.last_hub_seq + 1;
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO losses (hub_seq, node, instance_id, first_seq, last_seq,
                                               count, reason, received_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    u2i(hub_seq),
                    key.node,
                    key.instance_id,
                    u2i(loss.first_seq),
                    u2i(loss.last_seq),
                    u2i(loss.count),
                    loss.reason,
                    now_ns
                ],
            )?;
            if inserted == 1 {
                added = 1;
                tx.execute(
                    "UPDATE tappers SET losses_reported = losses_reported + ?3,
                                        loss_records = loss_records + 1
                     WHERE node = ?1 AND instance_id = ?2",
                    params![key.node, key.instance_id, u2i(loss.count)],
                )?;
                new.push(LossNotice {
                    node: key.node.clone(),
                    instance_id: key.instance_id.clone(),
                    loss: Some(loss.clone()),
                    hub_seq,
                    received: Some(to_ts(now_ns)),
                });
            }
        }
        state.mark(loss.first_seq, loss.last_seq);
        tx.execute(
            "UPDATE tappers SET acked_seq = ?3, last_seen_ns = ?4
             WHERE node = ?1 AND instance_id = ?2",
            params![key.node, key.instance_id, u2i(state.acked), now_ns],
        )?;
        bump_hub_seq(&tx, self.last_hub_seq + added)?;
        tx.commit()?;
        self.last_hub_seq += added;
        let acked = state.acked;
        self.instances.insert(key.clone(), state);
        Ok(Committed { new, acked })
    }

    /// Keeps the tapper's latest cumulative counters.
    pub fn set_counters(&mut self, key: &InstanceKey, c: &Counters, now_ns: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE tappers SET counters = ?3, last_seen_ns = ?4 WHERE node = ?1 AND instance_id = ?2",
            params![key.node, key.instance_id, c.encode_to_vec(), now_ns],
        )?;
        Ok(())
    }

    /// Updates last_seen (e.g. on disconnect).
    pub fn touch(&mut self, key: &InstanceKey, now_ns: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE tappers SET last_seen_ns = ?3 WHERE node = ?1 AND instance_id = ?2",
            params![key.node, key.instance_id, now_ns],
        )?;
        Ok(())
    }

    /// Whether any tapper of this node ever reported.
    pub fn known_node(&self, node: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM tappers WHERE node = ?1 LIMIT 1",
                [node],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// All tappers, sorted by node then instance id (connection fields left unset).
    pub fn tappers(&self) -> Result<Vec<TapperInfo>> {
        let mut st = self.conn.prepare(
            "SELECT node, instance_id, kernel_release, probe_mode, agent_version, first_seen_ns,
                    last_seen_ns, events_received, losses_reported, loss_records, acked_seq, counters
             FROM tappers ORDER BY node, instance_id",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                TapperInfo {
                    node: r.get(0)?,
                    instance_id: r.get(1)?,
                    kernel_release: r.get(2)?,
                    probe_mode: r.get(3)?,
                    agent_version: r.get(4)?,
                    first_seen: Some(to_ts(r.get(5)?)),
                    last_seen: Some(to_ts(r.get(6)?)),
                    events_received: i2u(r.get(7)?),
                    losses_reported: i2u(r.get(8)?),
                    loss_records: i2u(r.get(9)?),
                    acked_seq: i2u(r.get(10)?),
                    ..Default::default()
                },
                r.get::<_, Option<Vec<u8>>>(11)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut info, counters) = row?;
            if let Some(blob) = counters {
                info.counters = Some(Counters::decode(blob.as_slice())?);
            }
            out.push(info);
        }
        Ok(out)
    }

    /// Up to `limit` stored items with hub_seq in `[from, to]`, in hub order. `since_ns`
    /// (event time) and `nodes` narrow the events; losses are narrowed by node only.
    pub fn replay_page(
        &self,
        from: u64,
        to: u64,
        since_ns: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Stored>> {
        let to = to.min(i64::MAX as u64);
        let mut out = Vec::new();
        let mut st = self.conn.prepare_cached(
            "SELECT hub_seq, node, instance_id, received_ns, body FROM events
             WHERE hub_seq >= ?1 AND hub_seq <= ?2 AND ts_ns >= ?3
             ORDER BY hub_seq LIMIT ?4",
        )?;
        let rows = st.query_map(
            params![
                u2i(from),
                u2i(to),
                since_ns.unwrap_or(i64::MIN),
                limit as i64
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                ))
            },
        )?;
        for row in rows {
            let (hub_seq, node, instance_id, received_ns, body) = row?;
            let mut e = Event::decode(body.as_slice())?;
            e.hub_seq = i2u(hub_seq);
            e.node = node;
            e.instance_id = instance_id;
            e.received = Some(to_ts(received_ns));
            out.push(Stored::Event(e));
        }
        // Losses up to the last event of a full page (the next page continues from there).
        let loss_to = if out.len() == limit {
            out.last().map_or(to, Stored::hub_seq)
        } else {
            to
        };
        let mut st = self.conn.prepare_cached(
            "SELECT hub_seq, node, instance_id, first_seq, last_seq, count, reason, received_ns
             FROM losses WHERE hub_seq >= ?1 AND hub_seq <= ?2 AND received_ns >= ?3
             ORDER BY hub_seq",
        )?;
        let rows = st.query_map(
            params![u2i(from), u2i(loss_to), since_ns.unwrap_or(i64::MIN)],
            |r| {
                Ok(LossNotice {
                    hub_seq: i2u(r.get(0)?),
                    node: r.get(1)?,
                    instance_id: r.get(2)?,
                    loss: Some(Loss {
                        first_seq: i2u(r.get(3)?),
                        last_seq: i2u(r.get(4)?),
                        count: i2u(r.get(5)?),
                        reason: r.get(6)?,
                    }),
                    received: Some(to_ts(r.get(7)?)),
                })
            },
        )?;
        for row in rows {
            out.push(Stored::Loss(row?));
        }
        out.sort_by_key(Stored::hub_seq);
        Ok(out)
    }

    /// Counts events in the window, grouped as asked.
    pub fn stats(&self, q: &StatsQuery) -> Result<StatsResult> {
        let mut where_sql = String::from("ts_ns >= ? AND ts_ns < ?");
        let mut args: Vec<Value> = vec![q.since_ns.into(), q.until_ns.into()];
        if !q.nodes.is_empty() {
            where_sql.push_str(" AND node IN (");
            where_sql.push_str(&vec!["?"; q.nodes.len()].join(", "));
            where_sql.push(')');
            args.extend(q.nodes.iter().map(|n| Value::from(n.clone())));
        }
        let mut res = StatsResult::default();
        {
            let sql = format!("SELECT node, COUNT(*) FROM events WHERE {where_sql} GROUP BY node");
            let mut st = self.conn.prepare(&sql)?;
            let rows = st.query_map(params_from_iter(args.iter()), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (node, n) = row?;
                res.total_events += i2u(n);
                res.per_node.insert(node, i2u(n));
            }
        }
        if !q.group.is_empty() {
            let cols: Vec<&str> = q
                .group
                .iter()
                .map(|g| match g {
                    GroupCol::Node => "node",
                    GroupCol::Errno => "errno, errno_name",
                    GroupCol::Family => "family, family_name",
                    GroupCol::Comm => "comm",
                    GroupCol::Cgroup => "cgroup_id",
                })
                .collect();
            let cols = cols.join(", ");
            let sql = format!(
                "SELECT {cols}, COUNT(*) AS n FROM events WHERE {where_sql}
                 GROUP BY {cols} ORDER BY n DESC, {cols}"
            );
            let mut st = self.conn.prepare(&sql)?;
            let group = q.group.clone();
            let rows = st.query_map(params_from_iter(args.iter()), move |r| {
                let mut row = StatsRow::default();
                let mut i = 0;
                for g in &group {
                    match g {
                        GroupCol::Node => row.node = r.get(i)?,
                        GroupCol::Errno => {
                            row.errno = r.get(i)?;
                            i += 1;
                            row.errno_name = r.get(i)?;
                        }
                        GroupCol::Family => {
                            row.family = r.get(i)?;
                            i += 1;
                            row.family_name = r.get(i)?;
                        }
                        GroupCol::Comm => row.comm = r.get(i)?,
                        GroupCol::Cgroup => row.cgroup_id = i2u(r.get(i)?),
                    }
                    i += 1;
                }
                row.count = i2u(r.get(i)?);
                Ok(row)
            })?;
            for row in rows {
                res.rows.push(row?);
            }
        }
        let mut loss_sql = String::from(
            "SELECT COALESCE(SUM(count), 0) FROM losses WHERE received_ns >= ? AND received_ns < ?",
        );
        if !q.nodes.is_empty() {
            loss_sql.push_str(" AND node IN (");
            loss_sql.push_str(&vec!["?"; q.nodes.len()].join(", "));
            loss_sql.push(')');
        }
        let lost: i64 = self
            .conn
            .query_row(&loss_sql, params_from_iter(args.iter()), |r| r.get(0))?;
        res.total_lost = i2u(lost);
        Ok(res)
    }

    /// Deletes events (and losses) older than `max_age_ns`, then the oldest events beyond
    /// `max_rows`. Returns how many events were deleted.
    pub fn apply_retention(
        &mut self,
        max_age_ns: Option<i64>,
        max_rows: Option<u64>,
        now_ns: i64,
    ) -> Result<usize> {
        let mut deleted = 0;
        if let Some(age) = max_age_ns {
            let cutoff = now_ns.saturating_sub(age);
            deleted += self
                .conn
                .execute("DELETE FROM events WHERE ts_ns < ?1", [cutoff])?;
            self.conn
                .execute("DELETE FROM losses WHERE received_ns < ?1", [cutoff])?;
        }
        if let Some(rows) = max_rows {
            deleted += self.conn.execute(
                "DELETE FROM events WHERE hub_seq <= (
                     SELECT hub_seq FROM events ORDER BY hub_seq DESC LIMIT 1 OFFSET ?1)",
                [u2i(rows)],
            )?;
        }
        Ok(deleted)
    }

    /// Number of stored events.
    #[cfg(test)]
    pub fn event_count(&self) -> Result<u64> {
        Ok(i2u(self.conn.query_row(
            "SELECT COUNT(*) FROM events",
            [],
            |r| r.get(0),
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(node: &str) -> Hello {
        Hello {
            node: node.into(),
            instance_id: "i1".into(),
            ..Default::default()
        }
    }

    fn key(node: &str) -> InstanceKey {
        InstanceKey {
            node: node.into(),
            instance_id: "i1".into(),
        }
    }

    fn ev(seq: u64, errno: i32) -> Event {
        Event {
            seq,
            errno,
            errno_name: format!("E{errno}"),
            ts: Some(to_ts(1_000 + seq as i64)),
            comm: "x".into(),
            ..Default::default()
        }
    }

    #[test]
    fn seq_state_advances_over_ranges() {
        let mut s = SeqState::default();
        s.mark(2, 2);
        assert_eq!(s.acked, 0);
        s.mark(3, 10);
        s.mark(1, 1);
        assert_eq!(s.acked, 10);
        assert!(s.is_committed(7));
        s.mark(12, 12);
        assert!(s.is_committed(12) && !s.is_committed(11));
    }

    #[test]
    fn dedup_ack_and_hub_seq() {
        let mut st = Store::open(":memory:").unwrap();
        assert_eq!(st.hello(&hello("a"), 1).unwrap(), 0);
        let c = st
            .commit_events(&key("a"), vec![ev(1, 24), ev(2, 24), ev(4, 22)], 5)
            .unwrap();
        assert_eq!(c.new.len(), 3);
        assert_eq!(c.acked, 2);
        assert_eq!(
            c.new.iter().map(|e| e.hub_seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let c = st
            .commit_events(&key("a"), vec![ev(2, 24), ev(3, 24), ev(4, 22)], 6)
            .unwrap();
        assert_eq!(c.new.len(), 1, "only seq 3 is new");
        assert_eq!(c.acked, 4);
        let loss = Loss {
            count: 2,
            reason: "r".into(),
            first_seq: 5,
            last_seq: 6,
        };
        let l = st.commit_loss(&key("a"), loss.clone(), 7).unwrap();
        assert_eq!((l.new.len(), l.acked), (1, 6));
        let l = st.commit_loss(&key("a"), loss, 7).unwrap();
        assert_eq!(l.new.len(), 0, "duplicate loss");
        let t = &st.tappers().unwrap()[0];
        assert_eq!(
            (t.events_received, t.losses_reported, t.acked_seq),
            (4, 2, 6)
        );
        let page = st.replay_page(0, u64::MAX, None, 100).unwrap();
        assert_eq!(page.len(), 5);
        assert_eq!(
            page.iter().map(Stored::hub_seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn stats_and_retention() {
        let mut st = Store::open(":memory:").unwrap();
        for n in ["a", "b"] {
            st.hello(&hello(n), 1).unwrap();
        }
        st.commit_events(&key("a"), vec![ev(1, 24), ev(2, 24), ev(3, 22)], 5)
            .unwrap();
        st.commit_events(&key("b"), vec![ev(1, 24)], 5).unwrap();
        let q = StatsQuery {
            group: vec![GroupCol::Node, GroupCol::Errno],
            since_ns: i64::MIN,
            until_ns: i64::MAX,
            nodes: vec![],
        };
        let r = st.stats(&q).unwrap();
        assert_eq!(r.total_events, 4);
        assert_eq!(r.per_node["a"], 3);
        assert_eq!(
            (r.rows[0].node.as_str(), r.rows[0].errno, r.rows[0].count),
            ("a", 24, 2)
        );
        assert_eq!(r.rows.len(), 3);
        assert_eq!(st.apply_retention(None, Some(2), 10).unwrap(), 2);
        assert_eq!(st.event_count().unwrap(), 2);
        assert!(st.known_node("a").unwrap() && !st.known_node("zz").unwrap());
    }

    #[test]
    fn state_survives_reopen() {
        let dir = std::env::temp_dir().join(format!("hub-store-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let _ = std::fs::remove_file(&path);
        {
            let mut st = Store::open(path.to_str().unwrap()).unwrap();
            st.hello(&hello("a"), 1).unwrap();
            st.commit_events(&key("a"), vec![ev(1, 24), ev(2, 24)], 5)
                .unwrap();
        }
        let mut st = Store::open(path.to_str().unwrap()).unwrap();
        assert_eq!(st.last_hub_seq(), 2);
        assert_eq!(st.hello(&hello("a"), 9).unwrap(), 2);
        let c = st
            .commit_events(&key("a"), vec![ev(2, 24), ev(3, 24)], 9)
            .unwrap();
        assert_eq!((c.new.len(), c.new[0].hub_seq, c.acked), (1, 3, 3));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
