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

#[cfg(test)]
mod tests {
    use super::super::testkit::{ev, hello, key, loss};
    use crate::store::{GroupCol, Reader, StatsQuery, StoreError, Writer};
    use tapper_proto::v1::Loss;

    fn totals(r: &dyn Reader) -> (u64, u64) {
        let s = r
            .stats(&StatsQuery {
                group: vec![GroupCol::Node],
                since_ns: i64::MIN,
                until_ns: i64::MAX,
                nodes: vec![],
            })
            .unwrap();
        (s.total_events, s.total_lost)
    }

    #[test]
    fn a_loss_over_stored_events_is_rejected_and_stores_nothing() {
        let (mut w, r) = super::super::testkit::open(":memory:").unwrap();
        w.hello(&hello("a"), 1).unwrap();
        w.commit_events(&key("a"), vec![ev(1, 24), ev(2, 24), ev(3, 24)], 2)
            .unwrap();
        let before = w.last_hub_seq();
        let e = w.commit_loss(&key("a"), loss(2, 4), 3).unwrap_err();
        assert!(
            matches!(e, StoreError::Rejected { field: "loss", .. }),
            "{e}"
        );
        assert_eq!(w.last_hub_seq(), before);
        assert_eq!(totals(&r), (3, 0));
        // The honest record for seq 4 is taken; its resend is a duplicate.
        assert_eq!(w.commit_loss(&key("a"), loss(4, 4), 4).unwrap().acked, 4);
        assert!(
            w.commit_loss(&key("a"), loss(4, 4), 4)
                .unwrap()
                .new
                .is_empty()
        );
        // A record over another record, after a restart of the stream too.
        w.commit_loss(&key("a"), loss(6, 8), 5).unwrap();
        w.stream_ended(&key("a"), 6).unwrap();
        assert!(w.commit_loss(&key("a"), loss(7, 9), 7).is_err());
        assert!(w.commit_loss(&key("a"), loss(5, 6), 7).is_err());
        let t = &r.tappers(None, &[], 10).unwrap()[0];
        assert_eq!(
            (t.events_received, t.losses_reported, t.loss_records),
            (3, 4, 2)
        );
        assert_eq!(totals(&r), (3, 4));
    }

    #[test]
    fn huge_losses_saturate_instead_of_breaking_stats() {
        let (mut w, r) = super::super::testkit::open(":memory:").unwrap();
        w.hello(&hello("a"), 1).unwrap();
        for seq in 1..=3 {
            let huge = Loss {
                count: i64::MAX as u64,
                ..loss(seq, seq)
            };
            w.commit_loss(&key("a"), huge, 2).unwrap();
        }
        assert_eq!(totals(&r), (0, u64::MAX));
        let t = &r.tappers(None, &[], 10).unwrap()[0];
        assert_eq!((t.losses_reported, t.loss_records), (i64::MAX as u64, 3));
    }
}
