//! Reader queries for replay: pages of events and loss records in hub_seq order, and where
//! a replay by receive time starts.

use prost::Message;
use rusqlite::{Connection, params};
use tapper_proto::v1::{Event, Loss, LossNotice};

use super::{i2u, u2i};
use crate::{
    clock::to_ts,
    store::{Result, Stored},
};

/// The lowest hub_seq of an event or loss record received at or after `since_ns`.
pub fn first_received_since(conn: &Connection, since_ns: i64) -> Result<Option<u64>> {
    // INDEXED BY: read only the window's index entries; the min/max shortcut SQLite would
    // pick instead walks hub_seq from the oldest record.
    let first: Option<i64> = conn.query_row(
        "SELECT MIN(first) FROM (
             SELECT MIN(hub_seq) AS first FROM events INDEXED BY events_received
                 WHERE received_ns >= ?1
             UNION ALL
             SELECT MIN(hub_seq) FROM losses INDEXED BY losses_received
                 WHERE received_ns >= ?1)",
        [since_ns],
        |r| r.get(0),
    )?;
    Ok(first.map(i2u))
}

/// Up to `limit` items with hub_seq in `[from, to]` (and received at or after `since_ns`),
/// in hub order.
pub fn page(
    conn: &Connection,
    from: u64,
    to: u64,
    since_ns: Option<i64>,
    limit: usize,
) -> Result<Vec<Stored>> {
    let to = to.min(i64::MAX as u64);
    let since_ns = since_ns.unwrap_or(i64::MIN);
    let mut out = Vec::new();
    // `+received_ns`: walk the hub_seq range, never the receive-time index (which would
    // sort the whole window for every page).
    let mut st = conn.prepare_cached(
        "SELECT hub_seq, node, instance_id, received_ns, body FROM events
         WHERE hub_seq >= ?1 AND hub_seq <= ?2 AND +received_ns >= ?3
         ORDER BY hub_seq LIMIT ?4",
    )?;
    let rows = st.query_map(params![u2i(from), u2i(to), since_ns, limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Vec<u8>>(4)?,
        ))
    })?;
    for row in rows {
        let (hub_seq, node, instance_id, received_ns, body) = row?;
        let mut e = Event::decode(body.as_slice())?;
        e.hub_seq = i2u(hub_seq);
        e.node = node;
        e.instance_id = instance_id;
        e.received = Some(to_ts(received_ns));
        out.push(Stored::Event(e));
    }
    // Losses up to the last event of a full page (the next page continues from there).
    let loss_to = if out.len() == limit {
        out.last().map_or(to, Stored::hub_seq)
    } else {
        to
    };
    let mut st = conn.prepare_cached(
        "SELECT hub_seq, node, instance_id, first_seq, last_seq, count, reason, received_ns
         FROM losses WHERE hub_seq >= ?1 AND hub_seq <= ?2 AND +received_ns >= ?3
         ORDER BY hub_seq",
    )?;
    let rows = st.query_map(params![u2i(from), u2i(loss_to), since_ns], |r| {
        Ok(LossNotice {
            hub_seq: i2u(r.get(0)?),
            node: r.get(1)?,
            instance_id: r.get(2)?,
            loss: Some(Loss {
                first_seq: i2u(r.get(3)?),
                last_seq: i2u(r.get(4)?),
                count: i2u(r.get(5)?),
                reason: r.get(6)?,
            }),
            received: Some(to_ts(r.get(7)?)),
        })
    })?;
    for row in rows {
        out.push(Stored::Loss(row?));
    }
    out.sort_by_key(Stored::hub_seq);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{ev, hello, key, loss};
    use crate::store::{Reader, Stored, Writer};

    #[test]
    fn since_is_the_receive_time() {
        let (mut w, r) = super::super::open(":memory:").unwrap();
        w.hello(&hello("a"), 1).unwrap();
        // Event times (ts) are far from the receive times on purpose.
        w.commit_events(&key("a"), vec![ev(1, 24)], 100).unwrap();
        w.commit_loss(&key("a"), loss(2, 3), 200).unwrap();
        w.commit_events(&key("a"), vec![ev(4, 24)], 300).unwrap();
        assert_eq!(r.first_received_since(150).unwrap(), Some(2));
        assert_eq!(r.first_received_since(301).unwrap(), None);
        let page = r.replay_page(0, u64::MAX, Some(150), 10).unwrap();
        assert!(
            matches!(&page[..], [Stored::Loss(l), Stored::Event(e)] if l.hub_seq == 2 && e.seq == 4)
        );
    }
}
