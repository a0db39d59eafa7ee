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

#[cfg(test)]
mod tests {
    use super::super::testkit::{ev, hello, key, loss};
    use crate::store::{Reader, Stored, Writer};

    fn stored(r: &dyn Reader) -> Vec<u64> {
        let page = r.replay_page(0, u64::MAX, None, 100).unwrap();
        page.iter().map(Stored::hub_seq).collect()
    }

    #[test]
    fn the_row_cap_counts_events_and_losses() {
        let (mut w, r) = super::super::testkit::open(":memory:").unwrap();
        w.hello(&hello("a"), 1).unwrap();
        w.commit_events(&key("a"), vec![ev(1, 24), ev(2, 24)], 5)
            .unwrap();
        w.commit_loss(&key("a"), loss(3, 4), 5).unwrap();
        w.commit_events(&key("a"), vec![ev(5, 24)], 5).unwrap();
        assert_eq!(stored(&r), vec![1, 2, 3, 4]);
        assert_eq!(w.apply_retention(None, Some(2), 10).unwrap(), 2);
        assert_eq!(stored(&r), vec![3, 4]);
        assert_eq!(w.apply_retention(None, Some(2), 10).unwrap(), 0);
        assert!(r.known_node("a").unwrap(), "tappers are kept");
    }

    #[test]
    fn idle_instances_expire_unless_live() {
        let (mut w, r) = super::super::testkit::open(":memory:").unwrap();
        for n in ["old", "live", "new"] {
            w.hello(&hello(n), 100).unwrap();
        }
        w.commit_events(&key("old"), vec![ev(1, 24)], 100).unwrap();
        w.stream_ended(&key("old"), 100).unwrap();
        w.stream_ended(&key("new"), 900).unwrap();
        // "live" still has its stream (last seen at 100, quiet since).
        assert_eq!(w.expire_instances(500, 1000).unwrap(), 1);
        let left: Vec<String> = r
            .tappers(None, &[], 10)
            .unwrap()
            .into_iter()
            .map(|t| t.node)
            .collect();
        assert_eq!(left, ["live", "new"]);
        assert!(!r.known_node("old").unwrap());
        assert_eq!(stored(&r), vec![1], "events stay under retention");
        assert_eq!(w.expire_instances(500, 1000).unwrap(), 0);
    }

    #[test]
    fn age_is_the_receive_time_for_events_and_losses() {
        let (mut w, r) = super::super::testkit::open(":memory:").unwrap();
        w.hello(&hello("a"), 1).unwrap();
        // Event times (ts about 1000 ns) are newer than the receive times on purpose.
        w.commit_events(&key("a"), vec![ev(1, 24)], 100).unwrap();
        w.commit_loss(&key("a"), loss(2, 2), 100).unwrap();
        w.commit_events(&key("a"), vec![ev(3, 24)], 200).unwrap();
        w.commit_loss(&key("a"), loss(4, 4), 200).unwrap();
        assert_eq!(w.apply_retention(Some(50), None, 200).unwrap(), 2);
        assert_eq!(stored(&r), vec![3, 4]);
    }
}
