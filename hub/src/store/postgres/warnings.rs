//! Warnings on the writer side, as in SQLite: stored in the same hub_seq space as events
//! and loss records, deduplicated by (node, instance, seq), the full message as its body.

use postgres::Client;
use prost::Message;
use tapper_proto::v1::Warning;

use super::{i2u, numbering::Pool, u2i};
use crate::{
    store::{InstanceKey, Result},
    util::clock::from_ts,
};

/// Stores `warning` of `key` (its hub fields cleared) under the next hub_seq of `pool`;
/// returns that hub_seq, or `None` when that seq is stored already (a resend).
pub fn insert(
    client: &mut Client,
    key: &InstanceKey,
    warning: &Warning,
    pool: &mut Pool,
    now_ns: i64,
) -> Result<Option<u64>> {
    let hub_seq = pool.take(client, 1)?[0];
    let pid = warning.pid.map(i64::from);
    let row = client.query_opt(
        "INSERT INTO warnings (hub_seq, node, instance_id, seq, kind, ts_ns, received_ns, pid,
                               comm, body)
         VALUES ($10, $1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (node, instance_id, seq) DO NOTHING RETURNING hub_seq",
        &[
            &key.node,
            &key.instance_id,
            &u2i(warning.seq),
            &warning.kind,
            &warning.ts.as_ref().map_or(0, from_ts),
            &now_ns,
            &pid,
            &warning.comm,
            &warning.encode_to_vec(),
            &u2i(hub_seq),
        ],
    )?;
    if row.is_none() {
        pool.give_back(&[hub_seq]);
    }
    Ok(row.map(|row| i2u(row.get(0))))
}
