//! The batched insert of a batch's events: one statement over column arrays (`unnest`),
//! hub_seq from the global sequence, duplicates left out by the unique key
//! (`ON CONFLICT DO NOTHING`); it returns the hub_seq of each stored seq. User stacks go to
//! `stacks` once per distinct stack, and the event row keeps only `stack_id`.

use std::collections::{BTreeMap, HashMap};

use postgres::{Client, Statement, types::ToSql};
use prost::Message;
use tapper_proto::v1::Event;

use super::{i2u, u2i};
use crate::{
    store::{InstanceKey, stack_blob::StackBlob},
    util::clock::from_ts,
};

/// The statement, prepared once per connection.
pub const SQL: &str = "
INSERT INTO events (hub_seq, node, instance_id, received_ns, seq, ts_ns, pid, errno,
    errno_name, family, family_name, comm, cgroup_id, body, suppressed, source, cgroup_path,
    container_id, container_runtime, container_name, container_image, pod_uid,
    pod_namespace, pod_name, pod_labels, quota_memory_max, quota_memory_current,
    quota_pids_max, quota_pids_current, quota_file_nr, quota_file_max, stack_id)
SELECT nextval('hub_seq'), $1, $2, $3, u.* FROM unnest(
    $4::BIGINT[], $5::BIGINT[], $6::BIGINT[], $7::INTEGER[], $8::TEXT[], $9::INTEGER[],
    $10::TEXT[], $11::TEXT[], $12::BIGINT[], $13::BYTEA[], $14::BIGINT[], $15::TEXT[],
    $16::TEXT[], $17::TEXT[], $18::TEXT[], $19::TEXT[], $20::TEXT[], $21::TEXT[],
    $22::TEXT[], $23::TEXT[], $24::TEXT[], $25::BIGINT[], $26::BIGINT[], $27::BIGINT[],
    $28::BIGINT[], $29::BIGINT[], $30::BIGINT[], $31::BIGINT[]) AS u
ON CONFLICT (node, instance_id, seq) DO NOTHING
RETURNING seq, hub_seq";

/// The events' columns, one array each, in the statement's order.
#[derive(Default)]
struct Columns {
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

impl Columns {
    /// Adds `e`, whose frames are stored as `stack_id` (the body then carries none).
    fn push(&mut self, e: &Event, stack_id: Option<i64>) {
        let c = e.container.as_ref();
        let p = e.pod.as_ref();
        let q = e.quota.as_ref();
        let labels = p.filter(|p| !p.labels.is_empty()).map(|p| {
            let sorted: BTreeMap<_, _> = p.labels.iter().collect();
            serde_json::to_string(&sorted).unwrap_or_default()
        });
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

/// Inserts `events` (their hub fields cleared) of `key`; returns `(seq, hub_seq)` of each
/// row stored now.
pub fn events(
    client: &mut Client,
    statement: &Statement,
    key: &InstanceKey,
    events: &[Event],
    now_ns: i64,
) -> Result<Vec<(u64, u64)>, postgres::Error> {
    let mut cols = Columns::default();
    let mut stacks = HashMap::new();
    for e in events {
        let stack_id = match StackBlob::of(&e.user_stack) {
            Some(blob) => Some(match stacks.get(&blob.digest) {
                Some(&id) => id,
                None => {
                    let id = store_stack(client, &blob)?;
                    stacks.insert(blob.digest, id);
                    id
                }
            }),
            None => None,
        };
        cols.push(e, stack_id);
    }
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &key.node,
        &key.instance_id,
        &now_ns,
        &cols.seq,
        &cols.ts_ns,
        &cols.pid,
        &cols.errno,
        &cols.errno_name,
        &cols.family,
        &cols.family_name,
        &cols.comm,
        &cols.cgroup_id,
        &cols.body,
        &cols.suppressed,
    ];
    params.extend(cols.texts.iter().map(|c| c as &(dyn ToSql + Sync)));
    params.extend(cols.quota.iter().map(|c| c as &(dyn ToSql + Sync)));
    params.push(&cols.stack_id);
    let rows = client.query(statement, &params)?;
    Ok(rows
        .iter()
        .map(|r| (i2u(r.get(0)), i2u(r.get(1))))
        .collect())
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
