//! Reader queries on the tappers table: the tapper list and whether a node is known.

use prost::Message;
use rusqlite::{Connection, OptionalExtension, params_from_iter, types::Value};
use tapper_proto::v1::{Counters, TapperInfo};

use super::i2u;
use crate::{
    store::{InstanceKey, Result},
    util::clock::to_ts,
};

/// Whether any tapper of this node ever reported.
pub fn known_node(conn: &Connection, node: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM tappers WHERE node = ?1 LIMIT 1",
            [node],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Up to `limit` tappers after `after` (in node, instance id order), only of `nodes` when
/// given; connection fields left unset.
pub fn page(
    conn: &Connection,
    after: Option<&InstanceKey>,
    nodes: &[String],
    limit: usize,
) -> Result<Vec<TapperInfo>> {
    let mut sql = String::from(
        "SELECT node, instance_id, kernel_release, probe_mode, agent_version, first_seen_ns,
                last_seen_ns, events_received, losses_reported, loss_records, acked_seq, counters
         FROM tappers WHERE (node, instance_id) > (?, ?)",
    );
    let (node, instance) = after.map_or(("", ""), |k| (&k.node, &k.instance_id));
    let mut args: Vec<Value> = vec![node.to_owned().into(), instance.to_owned().into()];
    if !nodes.is_empty() {
        sql.push_str(" AND node IN (");
        sql.push_str(&vec!["?"; nodes.len()].join(", "));
        sql.push(')');
        args.extend(nodes.iter().map(|n| Value::from(n.clone())));
    }
    sql.push_str(" ORDER BY node, instance_id LIMIT ?");
    args.push(Value::from(limit as i64));
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map(params_from_iter(args.iter()), |r| {
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
