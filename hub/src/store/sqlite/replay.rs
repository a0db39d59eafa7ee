//! Reader queries for replay: pages of events and loss records in hub_seq order, and where
//! a replay by receive time starts.

use prost::Message;
use rusqlite::{Connection, params};
use tapper_proto::v1::{Event, Loss, LossNotice, Warning};

use super::{i2u, stacks, u2i};
use crate::{
    store::{Result, Stored},
    util::clock::to_ts,
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
                 WHERE received_ns >= ?1
             UNION ALL
             SELECT MIN(hub_seq) FROM warnings INDEXED BY warnings_received
                 WHERE received_ns >= ?1)",
        [since_ns],
        |r| r.get(0),
    )?;
    Ok(first.map(i2u))
}

/// Up to `limit` items with hub_seq in `[from, to]` (and received at or after `since_ns`),
/// in hub order. A stored event that does not decode becomes a loss notice of its seq
/// ([`UNREADABLE`](crate::store::records::UNREADABLE)) and is reported to `unreadable`, so that one bad row never stops a
/// replay.
pub fn page(
    conn: &Connection,
    from: u64,
    to: u64,
    since_ns: Option<i64>,
    limit: usize,
    unreadable: &dyn Fn(u64, &prost::DecodeError),
) -> Result<Vec<Stored>> {
    let to = to.min(i64::MAX as u64);
    let since_ns = since_ns.unwrap_or(i64::MIN);
    let mut out = Vec::new();
    // `+received_ns`: walk the hub_seq range, never the receive-time index (which would
    // sort the whole window for every page).
    let mut st = conn.prepare_cached(
        "SELECT e.hub_seq, e.node, e.instance_id, e.received_ns, e.seq, e.body, s.frames
         FROM events e LEFT JOIN stacks s ON s.id = e.stack_id
         WHERE e.hub_seq >= ?1 AND e.hub_seq <= ?2 AND +e.received_ns >= ?3
         ORDER BY e.hub_seq LIMIT ?4",
    )?;
    let rows = st.query_map(params![u2i(from), u2i(to), since_ns, limit as i64], |r| {
        Ok((
            i2u(r.get(0)?),
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            i2u(r.get(4)?),
            r.get::<_, Vec<u8>>(5)?,
            r.get::<_, Option<Vec<u8>>>(6)?,
        ))
    })?;
    for row in rows {
        let (hub_seq, node, instance_id, received_ns, seq, body, frames) = row?;
        let decoded = Event::decode(body.as_slice()).and_then(|mut e| {
            if let Some(frames) = &frames {
                e.user_stack = stacks::decode(frames)?;
            }
            Ok(e)
        });
        let item = match decoded {
            Ok(mut e) => {
                e.hub_seq = hub_seq;
                e.node = node;
                e.instance_id = instance_id;
                e.received = Some(to_ts(received_ns));
                Stored::Event(e)
            }
            Err(err) => {
                unreadable(hub_seq, &err);
                Stored::unreadable(node, instance_id, seq, hub_seq, received_ns)
            }
        };
        out.push(item);
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
    warnings(conn, from, loss_to, since_ns, &mut out, unreadable)?;
    out.sort_by_key(Stored::hub_seq);
    Ok(out)
}

/// Appends the warnings with hub_seq in `[from, to]` (an unreadable one becomes a loss
/// notice of its seq, as an event would).
fn warnings(
    conn: &Connection,
    from: u64,
    to: u64,
    since_ns: i64,
    out: &mut Vec<Stored>,
    unreadable: &dyn Fn(u64, &prost::DecodeError),
) -> Result<()> {
    let mut st = conn.prepare_cached(
        "SELECT hub_seq, node, instance_id, received_ns, seq, body
         FROM warnings WHERE hub_seq >= ?1 AND hub_seq <= ?2 AND +received_ns >= ?3
         ORDER BY hub_seq",
    )?;
    let rows = st.query_map(params![u2i(from), u2i(to), since_ns], |r| {
        Ok((
            i2u(r.get(0)?),
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            i2u(r.get(4)?),
            r.get::<_, Vec<u8>>(5)?,
        ))
    })?;
    for row in rows {
        let (hub_seq, node, instance_id, received_ns, seq, body) = row?;
        out.push(match Warning::decode(body.as_slice()) {
            Ok(mut w) => {
                w.hub_seq = hub_seq;
                w.node = node;
                w.instance_id = instance_id;
                w.received = Some(to_ts(received_ns));
                Stored::Warning(w)
            }
            Err(err) => {
                unreadable(hub_seq, &err);
                Stored::unreadable(node, instance_id, seq, hub_seq, received_ns)
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{TempDb, ev, hello, key};
    use crate::store::{Reader, Stored, Writer};

    #[test]
    fn an_unreadable_row_becomes_a_loss_notice() {
        let db = TempDb::new("unreadable");
        let (mut w, r) = super::super::testkit::open(&db.path()).unwrap();
        w.hello(&hello("a"), 1).unwrap();
        w.commit_events(&key("a"), vec![ev(1, 24), ev(2, 24), ev(3, 24)], 5)
            .unwrap();
        rusqlite::Connection::open(db.path())
            .unwrap()
            .execute("UPDATE events SET body = x'ffffffff' WHERE seq = 2", [])
            .unwrap();
        for _ in 0..2 {
            let page = r.replay_page(0, u64::MAX, None, 10).unwrap();
            assert!(matches!(
                &page[..],
                [Stored::Event(e1), Stored::Loss(l), Stored::Event(e3)]
                    if e1.seq == 1 && e3.seq == 3 && l.hub_seq == 2
                        && l.loss.as_ref().is_some_and(|l| {
                            (l.first_seq, l.last_seq, l.count, l.reason.as_str())
                                == (2, 2, 1, crate::store::records::UNREADABLE)
                        })
            ));
        }
        assert_eq!(r.unreadable_logged(), 1, "logged once");
    }
}
