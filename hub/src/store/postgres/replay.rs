//! Reader queries for replay and the live tail: pages of events, loss records and warnings in
//! hub_seq order, read in one snapshot, and where a replay by receive time starts.

use postgres::{Client, IsolationLevel};
use prost::Message;
use tapper_proto::v1::{Event, Loss, LossNotice, Warning};

use super::{i2u, u2i};
use crate::{
    store::{Result, Stored, stack_blob},
    util::clock::to_ts,
};

/// The lowest hub_seq of an event, loss record or warning received at or after `since_ns`.
pub fn first_received_since(client: &mut Client, since_ns: i64) -> Result<Option<u64>> {
    let row = client.query_one(
        "SELECT LEAST((SELECT MIN(hub_seq) FROM events WHERE received_ns >= $1),
                      (SELECT MIN(hub_seq) FROM losses WHERE received_ns >= $1),
                      (SELECT MIN(hub_seq) FROM warnings WHERE received_ns >= $1))",
        &[&since_ns],
    )?;
    Ok(row.get::<_, Option<i64>>(0).map(i2u))
}

/// Up to `limit` items with hub_seq in `[from, to]` (and received at or after `since_ns`),
/// in hub order, from one snapshot (so that a tail never passes a row it did not see). A
/// stored event or warning that does not decode becomes a loss notice of its seq. Pages
/// walk the hub_seq index and stop at the limit: without that (no bitmap or sequential
/// scan, and `received_ns + 0` to keep the receive-time index out), a table that grows
/// faster than its statistics had every page read and sort all rows after `from`.
pub fn page(
    client: &mut Client,
    from: u64,
    to: u64,
    since_ns: Option<i64>,
    limit: usize,
) -> Result<Vec<Stored>> {
    let (from, to) = (u2i(from.min(i64::MAX as u64)), u2i(to.min(i64::MAX as u64)));
    let since_ns = since_ns.unwrap_or(i64::MIN);
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    tx.batch_execute("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off")?;
    let rows = tx.query(
        "SELECT e.hub_seq, e.node, e.instance_id, e.received_ns, e.seq, e.body, s.frames
         FROM events e LEFT JOIN stacks s ON s.id = e.stack_id
         WHERE e.hub_seq >= $1 AND e.hub_seq <= $2 AND e.received_ns + 0 >= $3
         ORDER BY e.hub_seq LIMIT $4",
        &[&from, &to, &since_ns, &(limit as i64)],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let (hub_seq, node, instance_id): (i64, String, String) = (r.get(0), r.get(1), r.get(2));
        let received_ns: i64 = r.get(3);
        let body: &[u8] = r.get(5);
        let frames: Option<&[u8]> = r.get(6);
        let decoded = Event::decode(body).and_then(|mut e| {
            if let Some(frames) = frames {
                e.user_stack = stack_blob::decode(frames)?;
            }
            Ok(e)
        });
        out.push(match decoded {
            Ok(mut e) => {
                e.hub_seq = i2u(hub_seq);
                e.node = node;
                e.instance_id = instance_id;
                e.received = Some(to_ts(received_ns));
                Stored::Event(e)
            }
            Err(_) => {
                Stored::unreadable(node, instance_id, i2u(r.get(4)), i2u(hub_seq), received_ns)
            }
        });
    }
    // Losses and warnings up to the last event of a full page (the next page continues
    // from there).
    let loss_to = match out.last() {
        Some(last) if out.len() == limit => u2i(last.hub_seq()),
        _ => to,
    };
    let rows = tx.query(
        "SELECT hub_seq, node, instance_id, first_seq, last_seq, count, reason, received_ns
         FROM losses WHERE hub_seq >= $1 AND hub_seq <= $2 AND received_ns + 0 >= $3
         ORDER BY hub_seq",
        &[&from, &loss_to, &since_ns],
    )?;
    for r in &rows {
        out.push(Stored::Loss(LossNotice {
            hub_seq: i2u(r.get(0)),
            node: r.get(1),
            instance_id: r.get(2),
            loss: Some(Loss {
                first_seq: i2u(r.get(3)),
                last_seq: i2u(r.get(4)),
                count: i2u(r.get(5)),
                reason: r.get(6),
            }),
            received: Some(to_ts(r.get(7))),
        }));
    }
    let rows = tx.query(
        "SELECT hub_seq, node, instance_id, received_ns, seq, body FROM warnings
         WHERE hub_seq >= $1 AND hub_seq <= $2 AND received_ns + 0 >= $3
         ORDER BY hub_seq",
        &[&from, &loss_to, &since_ns],
    )?;
    for r in &rows {
        let (hub_seq, node, instance_id): (i64, String, String) = (r.get(0), r.get(1), r.get(2));
        let received_ns: i64 = r.get(3);
        let body: &[u8] = r.get(5);
        out.push(match Warning::decode(body) {
            Ok(mut w) => {
                w.hub_seq = i2u(hub_seq);
                w.node = node;
                w.instance_id = instance_id;
                w.received = Some(to_ts(received_ns));
                Stored::Warning(w)
            }
            Err(_) => {
                Stored::unreadable(node, instance_id, i2u(r.get(4)), i2u(hub_seq), received_ns)
            }
        });
    }
    tx.commit()?;
    out.sort_by_key(Stored::hub_seq);
    Ok(out)
}
