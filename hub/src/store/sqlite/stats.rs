//! The GetStats SQL: events and lost events received in a window, grouped as asked.

use rusqlite::{Connection, params_from_iter, types::Value};
use tapper_proto::v1::StatsRow;

use super::{i2u, losses::saturating_sum};
use crate::store::{GroupCol, Result, StatsQuery, StatsResult};

/// The columns a group key selects and groups by.
fn columns(g: GroupCol) -> &'static str {
    match g {
        GroupCol::Node => "node",
        GroupCol::Errno => "errno, errno_name",
        GroupCol::Family => "family, family_name",
        GroupCol::Comm => "comm",
        GroupCol::Cgroup => "cgroup_id",
    }
}

/// Counts events and lost events whose receive time is in `[since_ns, until_ns)`.
pub fn query(conn: &Connection, q: &StatsQuery) -> Result<StatsResult> {
    // The same window and node filter for both tables (both have the columns).
    let mut where_sql = String::from("received_ns >= ? AND received_ns < ?");
    let mut args: Vec<Value> = vec![q.since_ns.into(), q.until_ns.into()];
    if !q.nodes.is_empty() {
        where_sql.push_str(" AND node IN (");
        where_sql.push_str(&vec!["?"; q.nodes.len()].join(", "));
        where_sql.push(')');
        args.extend(q.nodes.iter().map(|n| Value::from(n.clone())));
    }
    let mut res = StatsResult::default();
    let sql = format!("SELECT node, COUNT(*) FROM events WHERE {where_sql} GROUP BY node");
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map(params_from_iter(args.iter()), |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (node, n) = row?;
        res.total_events = res.total_events.saturating_add(i2u(n));
        res.per_node.insert(node, i2u(n));
    }
    if !q.group.is_empty() {
        let cols = q
            .group
            .iter()
            .map(|&g| columns(g))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols}, COUNT(*) AS n FROM events WHERE {where_sql}
             GROUP BY {cols} ORDER BY n DESC, {cols}"
        );
        let mut st = conn.prepare(&sql)?;
        let rows = st.query_map(params_from_iter(args.iter()), |r| {
            let mut row = StatsRow::default();
            let mut i = 0;
            for g in &q.group {
                match g {
                    GroupCol::Node => row.node = r.get(i)?,
                    GroupCol::Errno => {
                        row.errno = r.get(i)?;
                        i += 1;
                        row.errno_name = r.get(i)?;
                    }
                    GroupCol::Family => {
                        row.family = r.get(i)?;
                        i += 1;
                        row.family_name = r.get(i)?;
                    }
                    GroupCol::Comm => row.comm = r.get(i)?,
                    GroupCol::Cgroup => row.cgroup_id = i2u(r.get(i)?),
                }
                i += 1;
            }
            row.count = i2u(r.get(i)?);
            Ok(row)
        })?;
        for row in rows {
            res.rows.push(row?);
        }
    }
    // Summed here, saturating: SQLite's SUM fails on overflow.
    let mut st = conn.prepare(&format!("SELECT count FROM losses WHERE {where_sql}"))?;
    let mut rows = st.query(params_from_iter(args.iter()))?;
    let mut counts = Vec::new();
    while let Some(r) = rows.next()? {
        counts.push(r.get::<_, i64>(0)?);
    }
    res.total_lost = saturating_sum(counts);
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{ev, hello, key, loss};
    use crate::store::{GroupCol, Reader, StatsQuery, Writer};

    fn window(since_ns: i64, until_ns: i64) -> StatsQuery {
        StatsQuery {
            group: vec![GroupCol::Node, GroupCol::Errno],
            since_ns,
            until_ns,
            nodes: vec![],
        }
    }

    #[test]
    fn groups_and_totals() {
        let (mut w, r) = super::super::open(":memory:").unwrap();
        for n in ["a", "b"] {
            w.hello(&hello(n), 1).unwrap();
        }
        w.commit_events(&key("a"), vec![ev(1, 24), ev(2, 24), ev(3, 22)], 5)
            .unwrap();
        w.commit_events(&key("b"), vec![ev(1, 24)], 5).unwrap();
        w.commit_loss(&key("b"), loss(2, 4), 5).unwrap();
        let s = r.stats(&window(i64::MIN, i64::MAX)).unwrap();
        assert_eq!((s.total_events, s.total_lost), (4, 3));
        assert_eq!(s.per_node["a"], 3);
        assert_eq!(
            (s.rows[0].node.as_str(), s.rows[0].errno, s.rows[0].count),
            ("a", 24, 2)
        );
        assert_eq!(s.rows.len(), 3);
        let mut only_b = window(i64::MIN, i64::MAX);
        only_b.nodes = vec!["b".into()];
        let s = r.stats(&only_b).unwrap();
        assert_eq!((s.total_events, s.total_lost, s.rows.len()), (1, 3, 1));
    }

    #[test]
    fn the_window_is_the_receive_time_for_events_and_losses() {
        let (mut w, r) = super::super::open(":memory:").unwrap();
        w.hello(&hello("a"), 1).unwrap();
        // The events' own ts is about 1000 ns; they arrive at 100 and 200.
        w.commit_events(&key("a"), vec![ev(1, 24)], 100).unwrap();
        w.commit_loss(&key("a"), loss(2, 2), 100).unwrap();
        w.commit_events(&key("a"), vec![ev(3, 24), ev(4, 24)], 200)
            .unwrap();
        w.commit_loss(&key("a"), loss(5, 7), 200).unwrap();
        let s = r.stats(&window(150, 250)).unwrap();
        assert_eq!((s.total_events, s.total_lost), (2, 3));
        let s = r.stats(&window(100, 200)).unwrap();
        assert_eq!((s.total_events, s.total_lost), (1, 1));
    }
}
