//! Retention SQL: deletes what the hub received before a cutoff, then the oldest records
//! beyond a row cap (events and loss records together, oldest hub_seq first), taking the
//! deleted events out of the rollups in the same transaction, and the stacks no remaining
//! event references.

use rusqlite::{Connection, OptionalExtension, params};

use super::{i2u, rollups, stacks, u2i};
use crate::store::{InstanceKey, Result};

/// Applies retention in one transaction; returns how many records were deleted.
pub fn apply(
    conn: &mut Connection,
    max_age_ns: Option<i64>,
    max_rows: Option<u64>,
    now_ns: i64,
) -> Result<u64> {
    let tx = conn.transaction()?;
    let mut deleted = 0;
    if let Some(age) = max_age_ns {
        let cutoff = now_ns.saturating_sub(age);
        rollups::subtract(&tx, "received_ns < ?1", cutoff)?;
        deleted += tx.execute("DELETE FROM events WHERE received_ns < ?1", [cutoff])?;
        deleted += tx.execute("DELETE FROM losses WHERE received_ns < ?1", [cutoff])?;
        deleted += tx.execute("DELETE FROM warnings WHERE received_ns < ?1", [cutoff])?;
    }
    if let Some(rows) = max_rows {
        // The newest record that falls outside the cap; both tables share hub_seq.
        let cut: Option<i64> = tx
            .query_row(
                "SELECT hub_seq FROM events UNION ALL SELECT hub_seq FROM losses
                 UNION ALL SELECT hub_seq FROM warnings ORDER BY hub_seq DESC LIMIT 1 OFFSET ?1",
                params![u2i(rows)],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(cut) = cut {
            rollups::subtract(&tx, "hub_seq <= ?1", cut)?;
            deleted += tx.execute("DELETE FROM events WHERE hub_seq <= ?1", [cut])?;
            deleted += tx.execute("DELETE FROM losses WHERE hub_seq <= ?1", [cut])?;
            deleted += tx.execute("DELETE FROM warnings WHERE hub_seq <= ?1", [cut])?;
        }
    }
    if deleted > 0 {
        stacks::delete_unreferenced(&tx)?;
    }
    tx.commit()?;
    Ok(i2u(deleted as i64))
}

/// Deletes the tappers rows last seen before `cutoff_ns`, except the `live` instances;
/// returns how many went.
pub fn expire_instances(
    conn: &mut Connection,
    cutoff_ns: i64,
    live: &[InstanceKey],
) -> Result<u64> {
    let tx = conn.transaction()?;
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS live (node TEXT, instance_id TEXT); DELETE FROM live",
    )?;
    {
        let mut add = tx.prepare_cached("INSERT INTO live VALUES (?1, ?2)")?;
        for k in live {
            add.execute(params![k.node, k.instance_id])?;
        }
    }
    let n = tx.execute(
        "DELETE FROM tappers WHERE last_seen_ns < ?1
             AND (node, instance_id) NOT IN (SELECT node, instance_id FROM live)",
        [cutoff_ns],
    )?;
    tx.execute_batch("DELETE FROM live")?;
    tx.commit()?;
    Ok(n as u64)
}
