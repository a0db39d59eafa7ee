//! The insert of a batch's events: one cached statement a row, hub_seq numbers taken in
//! order after the high-water mark, duplicates left out by the unique key (`OR IGNORE`).
//! User stacks go to `stacks` once per distinct stack, and the event row keeps `stack_id`.

use prost::Message;
use rusqlite::{Connection, params, params_from_iter};
use tapper_proto::v1::Event;

use super::{identity, stacks, u2i};
use crate::{
    store::{InstanceKey, Result},
    util::clock::from_ts,
};

/// Stores `events` of `key` numbered after `last_hub_seq`; returns (seq, hub_seq) of each
/// event stored, in hub_seq order.
pub fn events(
    tx: &Connection,
    key: &InstanceKey,
    events: &mut [Event],
    last_hub_seq: u64,
    now_ns: i64,
) -> Result<Vec<(u64, u64)>> {
    let mut stored = Vec::new();
    let mut next = last_hub_seq;
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
        let stack_id = stacks::store(tx, &frames)?;
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
    Ok(stored)
}
