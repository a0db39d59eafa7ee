//! Loss records on the writer side, as in SQLite: a new record must not cover any seq
//! number already stored (as an event, a warning or in another record); a re-sent identical record is
//! a duplicate.

use postgres::Client;
use tapper_proto::v1::Loss;

use super::u2i;
use crate::store::{InstanceKey, Result, seq::SeqState};

/// What to do with a loss record.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// Not stored yet and covers nothing stored: store it.
    New,
    /// The same record is stored already (a resend): ack, store nothing.
    Duplicate,
    /// Covers seq numbers already stored: reject, store nothing.
    Overlaps,
}

/// Classifies `loss` of `key` against the committed `state` and the stored rows.
pub fn check(
    client: &mut Client,
    key: &InstanceKey,
    state: &SeqState,
    loss: &Loss,
) -> Result<Check> {
    let (first, last) = (u2i(loss.first_seq), u2i(loss.last_seq));
    // Stored loss records never overlap: only the one starting last at or before `last`
    // can reach into the range.
    let before: Option<(i64, i64, i64)> = client
        .query_opt(
            "SELECT first_seq, last_seq, count FROM losses
             WHERE node = $1 AND instance_id = $2 AND first_seq <= $3
             ORDER BY first_seq DESC LIMIT 1",
            &[&key.node, &key.instance_id, &last],
        )?
        .map(|r| (r.get(0), r.get(1), r.get(2)));
    if before == Some((first, last, u2i(loss.count))) {
        return Ok(Check::Duplicate);
    }
    if state.overlaps(loss.first_seq, loss.last_seq) || before.is_some_and(|(_, l, _)| l >= first) {
        return Ok(Check::Overlaps);
    }
    let event = client.query_opt(
        "SELECT seq FROM events
         WHERE node = $1 AND instance_id = $2 AND seq BETWEEN $3 AND $4
         UNION ALL
         SELECT seq FROM warnings
         WHERE node = $1 AND instance_id = $2 AND seq BETWEEN $3 AND $4 LIMIT 1",
        &[&key.node, &key.instance_id, &first, &last],
    )?;
    Ok(if event.is_some() {
        Check::Overlaps
    } else {
        Check::New
    })
}

/// Stores `loss` under the next hub_seq and adds it to the tapper's totals (saturating);
/// returns its hub_seq.
pub fn insert(client: &mut Client, key: &InstanceKey, loss: &Loss, now_ns: i64) -> Result<u64> {
    let row = client.query_one(
        "INSERT INTO losses (hub_seq, node, instance_id, first_seq, last_seq, count, reason,
                             received_ns)
         VALUES (nextval('hub_seq'), $1, $2, $3, $4, $5, $6, $7) RETURNING hub_seq",
        &[
            &key.node,
            &key.instance_id,
            &u2i(loss.first_seq),
            &u2i(loss.last_seq),
            &u2i(loss.count),
            &loss.reason,
            &now_ns,
        ],
    )?;
    client.execute(
        "UPDATE tappers SET losses_reported = LEAST(losses_reported::NUMERIC + $3::BIGINT,
                                                   9223372036854775807)::BIGINT,
                            loss_records = loss_records + 1
         WHERE node = $1 AND instance_id = $2",
        &[&key.node, &key.instance_id, &u2i(loss.count)],
    )?;
    Ok(super::i2u(row.get(0)))
}
