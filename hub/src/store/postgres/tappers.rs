//! Reader queries on the tappers table for the whole fleet: the tapper list, with each
//! tapper's live stream (the replica holding it must be alive), and whether a node is known.

use postgres::Client;
use prost::Message;
use tapper_proto::v1::{Counters, TapperInfo};

use super::i2u;
use crate::{
    store::{InstanceKey, Result},
    util::clock::to_ts,
};

/// SQL: the replica named in `t.replica` is alive (one of its connections is open; every
/// connection of a replica carries its id in `application_name`).
pub const ALIVE: &str = "EXISTS (SELECT 1 FROM pg_stat_activity a
     WHERE a.application_name = 'tapper-hub ' || t.replica)";

/// Whether any tapper of this node ever reported.
pub fn known_node(client: &mut Client, node: &str) -> Result<bool> {
    Ok(client
        .query_opt("SELECT 1 FROM tappers WHERE node = $1 LIMIT 1", &[&node])?
        .is_some())
}

/// Up to `limit` tappers after `after` (in node, instance id order), only of `nodes` when
/// given, with their connection fields.
pub fn page(
    client: &mut Client,
    after: Option<&InstanceKey>,
    nodes: &[String],
    limit: usize,
) -> Result<Vec<TapperInfo>> {
    let (node, instance) = after.map_or(("", ""), |k| (k.node.as_str(), k.instance_id.as_str()));
    let rows = client.query(
        &format!(
            "SELECT node, instance_id, kernel_release, probe_mode, agent_version, first_seen_ns,
                    last_seen_ns, events_received, losses_reported, loss_records, acked_seq,
                    counters, peer, replica IS NOT NULL AND {ALIVE}
             FROM tappers t
             WHERE (node, instance_id) > ($1, $2)
               AND (cardinality($3::TEXT[]) = 0 OR node = ANY($3))
             ORDER BY node, instance_id LIMIT $4"
        ),
        &[&node, &instance, &nodes, &(limit as i64)],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let connected: bool = r.get(13);
        let counters: Option<Vec<u8>> = r.get(11);
        out.push(TapperInfo {
            node: r.get(0),
            instance_id: r.get(1),
            kernel_release: r.get(2),
            probe_mode: r.get(3),
            agent_version: r.get(4),
            first_seen: Some(to_ts(r.get(5))),
            last_seen: Some(to_ts(r.get(6))),
            events_received: i2u(r.get(7)),
            losses_reported: i2u(r.get(8)),
            loss_records: i2u(r.get(9)),
            acked_seq: i2u(r.get(10)),
            counters: counters
                .map(|b| Counters::decode(b.as_slice()))
                .transpose()?,
            connected,
            peer: if connected {
                r.get::<_, Option<String>>(12).unwrap_or_default()
            } else {
                String::new()
            },
        });
    }
    Ok(out)
}
