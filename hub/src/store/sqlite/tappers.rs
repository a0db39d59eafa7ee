//! Reader queries on the tappers table: the tapper list and whether a node is known.

use prost::Message;
use rusqlite::{Connection, OptionalExtension};
use tapper_proto::v1::{Counters, TapperInfo};

use super::i2u;
use crate::{clock::to_ts, store::Result};

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

/// All tappers, sorted by node then instance id (connection fields left unset).
pub fn list(conn: &Connection) -> Result<Vec<TapperInfo>> {
    let mut st = conn.prepare_cached(
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
