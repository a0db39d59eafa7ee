//! The events of a batch or a whole commit group, written under the hub_seq numbers the
//! writer gave them, after their tappers' rows were locked in key order (so that replicas
//! writing the same instances wait on each other in one order, never in a cycle). A group's
//! events, all new, go in by binary `COPY` (a duplicate fails it); a batch that may hold
//! stored events goes through one statement (column arrays through `unnest`) that leaves
//! them out (`ON CONFLICT DO NOTHING`) and returns (seq, hub_seq) of each row stored. User
//! stacks go to `stacks` once per distinct stack, and the event row keeps only `stack_id`.

use std::collections::{BTreeMap, HashMap};

use postgres::{
    Client, Statement,
    binary_copy::BinaryCopyInWriter,
    types::{ToSql, Type},
};
use prost::Message;
use tapper_proto::v1::Event;

use super::{i2u, u2i};
use crate::{
    store::{InstanceKey, stack_blob::StackBlob},
    util::clock::from_ts,
};

/// Locks the tappers' rows `($1, $2)` in key order, for the statements below.
const LOCK: &str = "
    SELECT t.node, t.instance_id FROM tappers t
    JOIN unnest($1::TEXT[], $2::TEXT[]) AS u (node, instance_id)
        ON t.node = u.node AND t.instance_id = u.instance_id
    ORDER BY t.node, t.instance_id
    FOR UPDATE OF t";

/// Locks the tappers' rows in key order, then adds `n` events to each and raises its acked
/// seq (prepared once per connection).
fn tally_sql() -> String {
    format!(
        "WITH locked AS MATERIALIZED ({LOCK})
         UPDATE tappers t SET events_received = t.events_received + u.n,
             acked_seq = GREATEST(t.acked_seq, u.acked), last_seen_ns = u.seen
         FROM locked l JOIN unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[],
                                   $5::BIGINT[]) AS u (node, instance_id, n, acked, seen)
             ON l.node = u.node AND l.instance_id = u.instance_id
         WHERE t.node = l.node AND t.instance_id = l.instance_id"
    )
}

/// The events' columns, in [`Columns`]' order.
const COLUMNS: &str = "hub_seq, node, instance_id, received_ns, seq, ts_ns, pid, errno,
    errno_name, family, family_name, comm, cgroup_id, body, suppressed, source,
    cgroup_path, container_id, container_runtime, container_name, container_image,
    pod_uid, pod_namespace, pod_name, pod_labels, quota_memory_max, quota_memory_current,
    quota_pids_max, quota_pids_current, quota_file_nr, quota_file_max, stack_id";

/// Their types, for binary `COPY`.
const TYPES: [Type; 32] = {
    use Type as T;
    [
        T::INT8,
        T::TEXT,
        T::TEXT,
        T::INT8,
        T::INT8,
        T::INT8,
        T::INT8,
        T::INT4,
        T::TEXT,
        T::INT4,
        T::TEXT,
        T::TEXT,
        T::INT8,
        T::BYTEA,
        T::INT8,
        T::TEXT,
        T::TEXT,
        T::TEXT,
        T::TEXT,
        T::TEXT,
        T::TEXT,
        T::TEXT,
        T::TEXT,
        T::TEXT,
        T::TEXT,
        T::INT8,
        T::INT8,
        T::INT8,
        T::INT8,
        T::INT8,
        T::INT8,
        T::INT8,
    ]
};

/// The statement for a batch that may hold stored events.
fn insert_sql() -> String {
    format!(
        "WITH ins AS (
    INSERT INTO events ({COLUMNS})
    SELECT * FROM unnest(
        $1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[],
        $7::BIGINT[], $8::INTEGER[], $9::TEXT[], $10::INTEGER[], $11::TEXT[], $12::TEXT[],
        $13::BIGINT[], $14::BYTEA[], $15::BIGINT[], $16::TEXT[], $17::TEXT[], $18::TEXT[],
        $19::TEXT[], $20::TEXT[], $21::TEXT[], $22::TEXT[], $23::TEXT[], $24::TEXT[],
        $25::TEXT[], $26::BIGINT[], $27::BIGINT[], $28::BIGINT[], $29::BIGINT[],
        $30::BIGINT[], $31::BIGINT[], $32::BIGINT[])
    ON CONFLICT (node, instance_id, seq) DO NOTHING
    RETURNING node, instance_id, seq, hub_seq
), stored AS (
    SELECT node, instance_id, count(*) AS n FROM ins GROUP BY node, instance_id
), tallied AS (
    UPDATE tappers t SET events_received = t.events_received + COALESCE(s.n, 0),
        acked_seq = GREATEST(t.acked_seq, u.acked), last_seen_ns = u.seen
    FROM unnest($33::TEXT[], $34::TEXT[], $35::BIGINT[], $36::BIGINT[])
        AS u (node, instance_id, acked, seen)
    LEFT JOIN stored s ON s.node = u.node AND s.instance_id = u.instance_id
    WHERE t.node = u.node AND t.instance_id = u.instance_id
)
SELECT seq, hub_seq FROM ins"
    )
}

/// The events' columns, one array each, in the statement's order.
#[derive(Default)]
struct Columns {
    hub_seq: Vec<i64>,
    node: Vec<String>,
    instance_id: Vec<String>,
    received_ns: Vec<i64>,
    seq: Vec<i64>,
    ts_ns: Vec<i64>,
    pid: Vec<i64>,
    errno: Vec<i32>,
    errno_name: Vec<String>,
    family: Vec<Option<i32>>,
    family_name: Vec<String>,
    comm: Vec<String>,
    cgroup_id: Vec<i64>,
    body: Vec<Vec<u8>>,
    suppressed: Vec<i64>,
    texts: [Vec<Option<String>>; 10],
    quota: [Vec<Option<i64>>; 6],
    stack_id: Vec<Option<i64>>,
}

/// The tappers' rows as the batch leaves them: events added, acked seq and last-seen time.
#[derive(Default)]
struct Tally {
    node: Vec<String>,
    instance_id: Vec<String>,
    n: Vec<i64>,
    acked: Vec<i64>,
    seen: Vec<i64>,
    /// Where each instance is in the arrays.
    at: HashMap<InstanceKey, usize>,
}
impl Columns {
    /// Row `i`'s values, in the columns' order.
    fn row(&self, i: usize) -> [&(dyn ToSql + Sync); 32] {
        let [t0, t1, t2, t3, t4, t5, t6, t7, t8, t9] = &self.texts;
        let [q0, q1, q2, q3, q4, q5] = &self.quota;
        [
            &self.hub_seq[i],
            &self.node[i],
            &self.instance_id[i],
            &self.received_ns[i],
            &self.seq[i],
            &self.ts_ns[i],
            &self.pid[i],
            &self.errno[i],
            &self.errno_name[i],
            &self.family[i],
            &self.family_name[i],
            &self.comm[i],
            &self.cgroup_id[i],
            &self.body[i],
            &self.suppressed[i],
            &t0[i],
            &t1[i],
            &t2[i],
            &t3[i],
            &t4[i],
            &t5[i],
            &t6[i],
            &t7[i],
            &t8[i],
            &t9[i],
            &q0[i],
            &q1[i],
            &q2[i],
            &q3[i],
            &q4[i],
            &q5[i],
            &self.stack_id[i],
        ]
    }

    /// Adds `e` of `key`, received at `received_ns` and numbered `hub_seq`, whose frames
    /// are stored as `stack_id` (the body then carries none).
    fn push(
        &mut self,
        (key, received_ns, hub_seq): (&InstanceKey, i64, u64),
        e: &Event,
        stack_id: Option<i64>,
    ) {
        let c = e.container.as_ref();
        let p = e.pod.as_ref();
        let q = e.quota.as_ref();
        let labels = p.filter(|p| !p.labels.is_empty()).map(|p| {
            let sorted: BTreeMap<_, _> = p.labels.iter().collect();
            serde_json::to_string(&sorted).unwrap_or_default()
        });
        self.hub_seq.push(u2i(hub_seq));
        self.node.push(key.node.clone());
        self.instance_id.push(key.instance_id.clone());
        self.received_ns.push(received_ns);
        self.seq.push(u2i(e.seq));
        self.ts_ns.push(e.ts.as_ref().map_or(0, from_ts));
        self.pid.push(i64::from(e.pid));
        self.errno.push(e.errno);
        self.errno_name.push(e.errno_name.clone());
        self.family.push(e.family);
        self.family_name.push(e.family_name.clone());
        self.comm.push(e.comm.clone());
        self.cgroup_id.push(u2i(e.cgroup_id));
        self.body.push(match stack_id {
            Some(_) => Event {
                user_stack: Vec::new(),
                ..e.clone()
            }
            .encode_to_vec(),
            None => e.encode_to_vec(),
        });
        self.stack_id.push(stack_id);
        self.suppressed.push(u2i(e.suppressed));
        let texts = [
            Some(e.source.clone()),
            e.cgroup_path.clone(),
            c.and_then(|c| c.id.clone()),
            c.and_then(|c| c.runtime.clone()),
            c.and_then(|c| c.name.clone()),
            c.and_then(|c| c.image.clone()),
            p.and_then(|p| p.uid.clone()),
            p.and_then(|p| p.namespace.clone()),
            p.and_then(|p| p.name.clone()),
            labels,
        ];
        for (col, v) in self.texts.iter_mut().zip(texts) {
            col.push(v);
        }
        let quota = [
            q.and_then(|q| q.memory_max),
            q.and_then(|q| q.memory_current),
            q.and_then(|q| q.pids_max),
            q.and_then(|q| q.pids_current),
            q.and_then(|q| q.file_nr),
            q.and_then(|q| q.file_max),
        ];
        for (col, v) in self.quota.iter_mut().zip(quota) {
            col.push(v.map(u2i));
        }
    }
}

/// The statements, prepared once per connection.
pub struct Prepared {
    lock: Statement,
    tally: Statement,
    insert: Statement,
}

impl Prepared {
    pub fn new(client: &mut Client) -> Result<Self, postgres::Error> {
        Ok(Self {
            lock: client.prepare(LOCK)?,
            tally: client.prepare(&tally_sql())?,
            insert: client.prepare(&insert_sql())?,
        })
    }
}

/// Events waiting to be written, with their tappers' rows.
#[derive(Default)]
pub struct Batch {
    cols: Columns,
    tally: Tally,
    /// Stack ids by digest, stored in the open transaction.
    stacks: HashMap<Vec<u8>, i64>,
}

impl Batch {
    /// Events waiting.
    pub fn len(&self) -> usize {
        self.cols.seq.len()
    }

    /// Nothing to write: no event and no tapper row.
    pub fn is_empty(&self) -> bool {
        self.tally.node.is_empty()
    }

    /// The instances whose rows wait.
    pub fn instances(&self) -> impl Iterator<Item = &InstanceKey> {
        self.tally.at.keys()
    }

    /// Adds `events` of `key` (their hub fields cleared) under `hub_seqs` (one each), and
    /// the tapper row's new acked seq; stores their stacks now. Returns (seq, hub_seq) of
    /// each event.
    pub fn push(
        &mut self,
        client: &mut Client,
        key: &InstanceKey,
        events: &[Event],
        hub_seqs: &[u64],
        (acked, now_ns): (u64, i64),
    ) -> Result<Vec<(u64, u64)>, postgres::Error> {
        let mut numbered = Vec::with_capacity(events.len());
        for (e, &hub_seq) in events.iter().zip(hub_seqs) {
            let stack_id = match StackBlob::of(&e.user_stack) {
                Some(blob) => Some(match self.stacks.get(&blob.digest) {
                    Some(&id) => id,
                    None => {
                        let id = store_stack(client, &blob)?;
                        self.stacks.insert(blob.digest, id);
                        id
                    }
                }),
                None => None,
            };
            self.cols.push((key, now_ns, hub_seq), e, stack_id);
            numbered.push((e.seq, hub_seq));
        }
        let t = &mut self.tally;
        match t.at.get(key) {
            Some(&i) => {
                t.n[i] += events.len() as i64;
                t.acked[i] = t.acked[i].max(u2i(acked));
                t.seen[i] = now_ns;
            }
            None => {
                t.at.insert(key.clone(), t.node.len());
                t.node.push(key.node.clone());
                t.instance_id.push(key.instance_id.clone());
                t.n.push(events.len() as i64);
                t.acked.push(u2i(acked));
                t.seen.push(now_ns);
            }
        }
        Ok(numbered)
    }

    /// Writes what waits, leaving out events stored already (the stack ids stay known until
    /// [`Self::clear`]); returns (seq, hub_seq) of each event stored.
    pub fn write(
        &mut self,
        client: &mut Client,
        prepared: &Prepared,
    ) -> Result<Vec<(u64, u64)>, postgres::Error> {
        let (c, t) = (&self.cols, &self.tally);
        client.execute(&prepared.lock, &[&t.node, &t.instance_id])?;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &c.hub_seq,
            &c.node,
            &c.instance_id,
            &c.received_ns,
            &c.seq,
            &c.ts_ns,
            &c.pid,
            &c.errno,
            &c.errno_name,
            &c.family,
            &c.family_name,
            &c.comm,
            &c.cgroup_id,
            &c.body,
            &c.suppressed,
        ];
        params.extend(c.texts.iter().map(|c| c as &(dyn ToSql + Sync)));
        params.extend(c.quota.iter().map(|c| c as &(dyn ToSql + Sync)));
        params.extend([
            &c.stack_id as &(dyn ToSql + Sync),
            &t.node,
            &t.instance_id,
            &t.acked,
            &t.seen,
        ]);
        let rows = client.query(&prepared.insert, &params)?;
        self.cols = Columns::default();
        self.tally = Tally::default();
        Ok(rows
            .iter()
            .map(|r| (i2u(r.get(0)), i2u(r.get(1))))
            .collect())
    }

    /// Writes what waits, every event new (one stored already fails the transaction with a
    /// unique violation): the tappers' rows first, then the events by binary `COPY`.
    /// Returns how many events were stored.
    pub fn copy(
        &mut self,
        client: &mut Client,
        prepared: &Prepared,
    ) -> Result<u64, postgres::Error> {
        let (c, t) = (&self.cols, &self.tally);
        client.execute(
            &prepared.tally,
            &[&t.node, &t.instance_id, &t.n, &t.acked, &t.seen],
        )?;
        let sink = client.copy_in(&format!(
            "COPY events ({COLUMNS}) FROM STDIN (FORMAT binary)"
        ))?;
        let mut rows = BinaryCopyInWriter::new(sink, &TYPES);
        for i in 0..c.seq.len() {
            rows.write(&c.row(i))?;
        }
        let stored = rows.finish()?;
        self.cols = Columns::default();
        self.tally = Tally::default();
        Ok(stored)
    }

    /// Forgets everything, the known stack ids too (their transaction ended).
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

/// The id of the stored stack equal to `blob` (stored now if new).
fn store_stack(client: &mut Client, blob: &StackBlob) -> Result<i64, postgres::Error> {
    let row = client.query_one(
        "INSERT INTO stacks (digest, frames) VALUES ($1, $2)
         ON CONFLICT (digest) DO UPDATE SET digest = EXCLUDED.digest
         RETURNING id",
        &[&blob.digest, &blob.frames],
    )?;
    Ok(row.get(0))
}
