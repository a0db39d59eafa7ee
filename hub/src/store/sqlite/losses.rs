//! Loss records on the writer side: the rows the loss check reads (the check itself is the
//! store's policy), the insert, and saturating sums of loss counts.

use rusqlite::{Connection, OptionalExtension, params};
use tapper_proto::v1::Loss;

use super::{i2u, u2i};
use crate::store::{
    InstanceKey, Result,
    policy::{LossRows, StoredLoss},
};

/// The loss check's rows inside the open savepoint; a new record takes `hub_seq`.
pub struct Rows<'a> {
    pub tx: &'a Connection,
    pub hub_seq: u64,
}

impl LossRows for Rows<'_> {
    fn loss_at_or_before(
        &mut self,
        key: &InstanceKey,
        last_seq: u64,
    ) -> Result<Option<StoredLoss>> {
        let found: Option<(i64, i64, i64)> = self
            .tx
            .query_row(
                "SELECT first_seq, last_seq, count FROM losses
                 WHERE node = ?1 AND instance_id = ?2 AND first_seq <= ?3
                 ORDER BY first_seq DESC LIMIT 1",
                params![key.node, key.instance_id, u2i(last_seq)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(found.map(|(first, last, count)| StoredLoss {
            first_seq: i2u(first),
            last_seq: i2u(last),
            count: i2u(count),
        }))
    }

    fn seq_stored_in(&mut self, key: &InstanceKey, first_seq: u64, last_seq: u64) -> Result<bool> {
        let seq: Option<i64> = self
            .tx
            .query_row(
                "SELECT seq FROM events
                 WHERE node = ?1 AND instance_id = ?2 AND seq BETWEEN ?3 AND ?4
                 UNION ALL
                 SELECT seq FROM warnings
                 WHERE node = ?1 AND instance_id = ?2 AND seq BETWEEN ?3 AND ?4 LIMIT 1",
                params![key.node, key.instance_id, u2i(first_seq), u2i(last_seq)],
                |r| r.get(0),
            )
            .optional()?;
        Ok(seq.is_some())
    }

    fn insert_loss(&mut self, key: &InstanceKey, loss: &Loss, now_ns: i64) -> Result<u64> {
        insert(self.tx, key, loss, self.hub_seq, now_ns)?;
        Ok(self.hub_seq)
    }
}

/// Stores `loss` as `hub_seq` and adds it to the tapper's totals (saturating at 2^63-1).
fn insert(
    tx: &Connection,
    key: &InstanceKey,
    loss: &Loss,
    hub_seq: u64,
    now_ns: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO losses (hub_seq, node, instance_id, first_seq, last_seq, count, reason,
                             received_ns)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            u2i(hub_seq),
            key.node,
            key.instance_id,
            u2i(loss.first_seq),
            u2i(loss.last_seq),
            u2i(loss.count),
            loss.reason,
            now_ns
        ],
    )?;
    tx.execute(
        &format!(
            "UPDATE tappers SET losses_reported = {}, loss_records = loss_records + 1
             WHERE node = ?1 AND instance_id = ?2",
            saturating_add("losses_reported", "?3")
        ),
        params![key.node, key.instance_id, u2i(loss.count)],
    )?;
    Ok(())
}

/// SQL for `column + value` (both non-negative) that stops at 2^63-1 instead of turning
/// into a floating-point number.
pub fn saturating_add(column: &str, value: &str) -> String {
    format!(
        "CASE WHEN {column} > 9223372036854775807 - {value} THEN 9223372036854775807
              ELSE {column} + {value} END"
    )
}

/// Sums non-negative stored counts without overflowing: saturates at `u64::MAX`.
pub fn saturating_sum(counts: impl IntoIterator<Item = i64>) -> u64 {
    counts
        .into_iter()
        .fold(0u64, |acc, n| acc.saturating_add(i2u(n.max(0))))
}
