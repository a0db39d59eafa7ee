//! Warnings on the writer side: stored in the same hub_seq space as events and loss
//! records, deduplicated by (node, instance, seq), the full message kept as its body.

use prost::Message;
use rusqlite::{Connection, params};
use tapper_proto::v1::Warning;

use super::u2i;
use crate::{
    store::{InstanceKey, Result},
    util::clock::from_ts,
};

/// Stores `warning` of `key` (its hub fields cleared) as `hub_seq`; false when that seq is
/// stored already (a resend).
pub fn insert(
    tx: &Connection,
    key: &InstanceKey,
    warning: &Warning,
    hub_seq: u64,
    now_ns: i64,
) -> Result<bool> {
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO warnings (hub_seq, node, instance_id, seq, kind, ts_ns,
                                         received_ns, pid, comm, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            u2i(hub_seq),
            key.node,
            key.instance_id,
            u2i(warning.seq),
            warning.kind,
            warning.ts.as_ref().map_or(0, from_ts),
            now_ns,
            warning.pid,
            warning.comm,
            warning.encode_to_vec()
        ],
    )?;
    Ok(inserted == 1)
}
