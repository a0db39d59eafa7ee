//! Retention SQL, run by the one replica that holds the retention lock: deletes what the
//! hub received before a cutoff, then the oldest records beyond a row cap (events, loss
//! records and warnings together, oldest hub_seq first), and the stacks no remaining event
//! references; forgets idle tapper instances.

use postgres::Client;

use super::{tappers::ALIVE, u2i};
use crate::store::Result;

/// Applies retention in one transaction; returns how many records were deleted.
pub fn apply(
    client: &mut Client,
    max_age_ns: Option<i64>,
    max_rows: Option<u64>,
    now_ns: i64,
) -> Result<u64> {
    let mut tx = client.transaction()?;
    let mut deleted = 0;
    if let Some(age) = max_age_ns {
        let cutoff = now_ns.saturating_sub(age);
        deleted += tx.execute("DELETE FROM events WHERE received_ns < $1", &[&cutoff])?;
        deleted += tx.execute("DELETE FROM losses WHERE received_ns < $1", &[&cutoff])?;
        deleted += tx.execute("DELETE FROM warnings WHERE received_ns < $1", &[&cutoff])?;
    }
    if let Some(rows) = max_rows {
        // The newest record beyond the cap; the three tables share hub_seq.
        let cut: Option<i64> = tx
            .query_opt(
                "SELECT hub_seq FROM (SELECT hub_seq FROM events
                                      UNION ALL SELECT hub_seq FROM losses
                                      UNION ALL SELECT hub_seq FROM warnings) AS s
                 ORDER BY hub_seq DESC LIMIT 1 OFFSET $1",
                &[&u2i(rows)],
            )?
            .map(|r| r.get(0));
        if let Some(cut) = cut {
            deleted += tx.execute("DELETE FROM events WHERE hub_seq <= $1", &[&cut])?;
            deleted += tx.execute("DELETE FROM losses WHERE hub_seq <= $1", &[&cut])?;
            deleted += tx.execute("DELETE FROM warnings WHERE hub_seq <= $1", &[&cut])?;
        }
    }
    if deleted > 0 {
        tx.execute(
            "DELETE FROM stacks s
             WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.stack_id = s.id)",
            &[],
        )?;
    }
    tx.commit()?;
    Ok(deleted)
}

/// Ends the streams of replicas that died, then forgets the instances last seen before
/// `cutoff_ns` that have no stream on any replica; returns how many.
pub fn expire_instances(client: &mut Client, cutoff_ns: i64) -> Result<u64> {
    let mut tx = client.transaction()?;
    tx.execute(
        &format!(
            "UPDATE tappers t SET replica = NULL, peer = NULL
             WHERE replica IS NOT NULL AND NOT {ALIVE}"
        ),
        &[],
    )?;
    let n = tx.execute(
        "DELETE FROM tappers WHERE last_seen_ns < $1 AND replica IS NULL",
        &[&cutoff_ns],
    )?;
    tx.commit()?;
    Ok(n)
}
