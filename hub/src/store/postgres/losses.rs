//! Loss records on the writer side: the rows the loss check reads (the check itself is the
//! store's policy) and the insert.

use postgres::Client;
use tapper_proto::v1::Loss;

use super::{i2u, numbering::Pool, u2i};
use crate::store::{
    InstanceKey, Result,
    policy::{LossRows, StoredLoss},
};

/// The loss check's rows inside the open step, and the transaction's hub_seq numbers.
pub struct Rows<'a> {
    pub client: &'a mut Client,
    pub pool: &'a mut Pool,
}

impl LossRows for Rows<'_> {
    fn loss_at_or_before(
        &mut self,
        key: &InstanceKey,
        last_seq: u64,
    ) -> Result<Option<StoredLoss>> {
        let found = self.client.query_opt(
            "SELECT first_seq, last_seq, count FROM losses
             WHERE node = $1 AND instance_id = $2 AND first_seq <= $3
             ORDER BY first_seq DESC LIMIT 1",
            &[&key.node, &key.instance_id, &u2i(last_seq)],
        )?;
        Ok(found.map(|r| StoredLoss {
            first_seq: i2u(r.get(0)),
            last_seq: i2u(r.get(1)),
            count: i2u(r.get(2)),
        }))
    }

    fn seq_stored_in(&mut self, key: &InstanceKey, first_seq: u64, last_seq: u64) -> Result<bool> {
        let found = self.client.query_opt(
            "SELECT seq FROM events
             WHERE node = $1 AND instance_id = $2 AND seq BETWEEN $3 AND $4
             UNION ALL
             SELECT seq FROM warnings
             WHERE node = $1 AND instance_id = $2 AND seq BETWEEN $3 AND $4 LIMIT 1",
            &[&key.node, &key.instance_id, &u2i(first_seq), &u2i(last_seq)],
        )?;
        Ok(found.is_some())
    }

    fn insert_loss(&mut self, key: &InstanceKey, loss: &Loss, now_ns: i64) -> Result<u64> {
        let hub_seq = self.pool.take(self.client, 1)?[0];
        insert(self.client, key, loss, hub_seq, now_ns)?;
        Ok(hub_seq)
    }
}

/// Stores `loss` under `hub_seq` and adds it to the tapper's totals (saturating).
fn insert(
    client: &mut Client,
    key: &InstanceKey,
    loss: &Loss,
    hub_seq: u64,
    now_ns: i64,
) -> Result<()> {
    client.execute(
        "INSERT INTO losses (hub_seq, node, instance_id, first_seq, last_seq, count, reason,
                             received_ns)
         VALUES ($8, $1, $2, $3, $4, $5, $6, $7)",
        &[
            &key.node,
            &key.instance_id,
            &u2i(loss.first_seq),
            &u2i(loss.last_seq),
            &u2i(loss.count),
            &loss.reason,
            &now_ns,
            &u2i(hub_seq),
        ],
    )?;
    client.execute(
        "UPDATE tappers SET losses_reported = LEAST(losses_reported::NUMERIC + $3::BIGINT,
                                                   9223372036854775807)::BIGINT,
                            loss_records = loss_records + 1
         WHERE node = $1 AND instance_id = $2",
        &[&key.node, &key.instance_id, &u2i(loss.count)],
    )?;
    Ok(())
}
