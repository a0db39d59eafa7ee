//! GetStats: counts by node and errno (and so the totals) come from the rollups for the
//! window's whole minutes and from the events of its partial minutes at either end; other
//! groupings scan the window's events under the query budget.

use std::{cmp::Ordering, collections::HashMap};

use rusqlite::Connection;
use tapper_proto::v1::StatsRow;

use super::{
    rollups::{self, Key, MINUTE_NS},
    scan::{self, Window},
};
use crate::store::{GroupCol, QueryBudget, Result, StatsQuery, StatsResult};

/// Counts events and lost events whose receive time is in `[since_ns, until_ns)`.
pub fn query(conn: &Connection, q: &StatsQuery, budget: &QueryBudget) -> Result<StatsResult> {
    let window = Window {
        since_ns: q.since_ns,
        until_ns: q.until_ns,
        nodes: &q.nodes,
    };
    let counts = node_errno_counts(conn, &window)?;
    let mut res = StatsResult::default();
    for ((node, ..), &n) in &counts {
        res.total_events = res.total_events.saturating_add(n);
        *res.per_node.entry(node.clone()).or_default() += n;
    }
    let from_rollups = q
        .group
        .iter()
        .all(|g| matches!(g, GroupCol::Node | GroupCol::Errno));
    res.rows = if q.group.is_empty() {
        Vec::new()
    } else if from_rollups {
        rows_from(&counts, &q.group)
    } else {
        scan::grouped(conn, &window, &q.group, Some(budget))?
    };
    res.total_lost = scan::lost(conn, &window)?;
    Ok(res)
}

/// A window cut into the whole rollup minutes it covers and the partial minutes at its
/// ends (receive-time ranges, half open).
#[derive(Debug, PartialEq, Eq)]
struct Cut {
    /// Minutes `[first, end)`, if any.
    minutes: Option<(i64, i64)>,
    edges: Vec<(i64, i64)>,
}

fn cut(since_ns: i64, until_ns: i64) -> Cut {
    let first = since_ns.div_euclid(MINUTE_NS) + i64::from(since_ns.rem_euclid(MINUTE_NS) != 0);
    let end = until_ns.div_euclid(MINUTE_NS);
    if first >= end {
        return Cut {
            minutes: None,
            edges: vec![(since_ns, until_ns)],
        };
    }
    let (lo, hi) = (first * MINUTE_NS, end * MINUTE_NS);
    Cut {
        minutes: Some((first, end)),
        edges: [(since_ns, lo), (hi, until_ns)]
            .into_iter()
            .filter(|(s, u)| s < u)
            .collect(),
    }
}

/// Event counts of the window by node, errno and errno_name.
fn node_errno_counts(conn: &Connection, w: &Window<'_>) -> Result<HashMap<Key, u64>> {
    let cut = cut(w.since_ns, w.until_ns);
    let mut out = HashMap::new();
    if let Some((first, end)) = cut.minutes {
        rollups::counts(conn, first, end, w.nodes, &mut out)?;
    }
    for (since_ns, until_ns) in cut.edges {
        let edge = Window {
            since_ns,
            until_ns,
            nodes: w.nodes,
        };
        for row in scan::grouped(conn, &edge, &[GroupCol::Node, GroupCol::Errno], None)? {
            *out.entry((row.node, row.errno, row.errno_name))
                .or_default() += row.count;
        }
    }
    Ok(out)
}

/// Rows grouped by `group` (node and errno only), in the order a scan returns them.
fn rows_from(counts: &HashMap<Key, u64>, group: &[GroupCol]) -> Vec<StatsRow> {
    let by_node = group.contains(&GroupCol::Node);
    let by_errno = group.contains(&GroupCol::Errno);
    let mut grouped = HashMap::<(&str, i32, &str), u64>::new();
    for ((node, errno, name), &n) in counts {
        let key = (
            if by_node { node.as_str() } else { "" },
            if by_errno { *errno } else { 0 },
            if by_errno { name.as_str() } else { "" },
        );
        *grouped.entry(key).or_default() += n;
    }
    let mut rows: Vec<StatsRow> = grouped
        .into_iter()
        .map(|((node, errno, errno_name), count)| StatsRow {
            node: node.into(),
            errno,
            errno_name: errno_name.into(),
            count,
            ..Default::default()
        })
        .collect();
    rows.sort_by(|a, b| {
        b.count.cmp(&a.count).then_with(|| {
            group.iter().fold(Ordering::Equal, |o, g| {
                o.then_with(|| match g {
                    GroupCol::Node => a.node.cmp(&b.node),
                    _ => (a.errno, &a.errno_name).cmp(&(b.errno, &b.errno_name)),
                })
            })
        })
    });
    rows
}

/// Asserts that GetStats gives exactly what scans of the events give, for windows around
/// the stored data (minute-aligned or not, open or not), every node-and-errno grouping and
/// a few node filters; and that the rollups match the events.
#[cfg(test)]
pub fn assert_rollups_match_scans(conn: &Connection) {
    assert!(rollups::consistent(conn), "rollups differ from the events");
    let (lo, hi): (Option<i64>, Option<i64>) = conn
        .query_row(
            "SELECT MIN(received_ns), MAX(received_ns) FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let (lo, hi) = (lo.unwrap_or(0), hi.unwrap_or(0));
    let mut points = vec![i64::MIN, lo, hi + 1, i64::MAX];
    for m in [lo, (lo + hi) / 2] {
        let aligned = m.div_euclid(MINUTE_NS) * MINUTE_NS;
        points.extend([aligned + MINUTE_NS, aligned + 7]);
    }
    let nodes: Vec<String> = conn
        .prepare("SELECT DISTINCT node FROM events ORDER BY node")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let filters = [
        vec![],
        nodes.iter().take(1).cloned().collect(),
        nodes.clone(),
    ];
    let groups = [
        vec![],
        vec![GroupCol::Node],
        vec![GroupCol::Errno],
        vec![GroupCol::Node, GroupCol::Errno],
        vec![GroupCol::Errno, GroupCol::Node],
    ];
    let budget = QueryBudget::default();
    for &since_ns in &points {
        for &until_ns in points.iter().filter(|&&u| u >= since_ns) {
            for nodes in &filters {
                let w = Window {
                    since_ns,
                    until_ns,
                    nodes,
                };
                let per_node: HashMap<String, u64> =
                    scan::grouped(conn, &w, &[GroupCol::Node], None)
                        .unwrap()
                        .into_iter()
                        .map(|r| (r.node, r.count))
                        .collect();
                for group in &groups {
                    let q = StatsQuery {
                        group: group.clone(),
                        since_ns,
                        until_ns,
                        nodes: nodes.clone(),
                    };
                    let got = query(conn, &q, &budget).unwrap();
                    let what = format!("{q:?}");
                    assert_eq!(got.per_node, per_node, "{what}");
                    assert_eq!(got.total_events, per_node.values().sum::<u64>(), "{what}");
                    if !group.is_empty() {
                        let scanned = scan::grouped(conn, &w, group, None).unwrap();
                        assert_eq!(got.rows, scanned, "{what}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{ev, hello, key};
    use super::{Cut, MINUTE_NS as M, cut};
    use crate::store::{
        GroupCol, QueryBudget, Reader, StoreError, Writer, conformance::reads::window,
    };

    #[test]
    fn windows_are_cut_at_whole_minutes() {
        let whole = |first, end, edges: &[(i64, i64)]| Cut {
            minutes: Some((first, end)),
            edges: edges.to_vec(),
        };
        assert_eq!(cut(0, 3 * M), whole(0, 3, &[]));
        assert_eq!(
            cut(5, 3 * M + 1),
            whole(1, 3, &[(5, M), (3 * M, 3 * M + 1)])
        );
        assert_eq!(cut(-M - 1, 0), whole(-1, 0, &[(-M - 1, -M)]));
        assert_eq!(
            cut(5, M + 5),
            Cut {
                minutes: None,
                edges: vec![(5, M + 5)]
            }
        );
        let open = cut(i64::MIN, i64::MAX);
        let (first, end) = open.minutes.unwrap();
        assert_eq!(
            (first, end),
            (i64::MIN / M, i64::MAX / M),
            "floor of MIN rounds up to a whole minute"
        );
        assert_eq!(open.edges.len(), 2);
    }

    #[test]
    fn scans_over_the_row_budget_are_refused_and_rollups_are_not_scans() {
        let budget = QueryBudget {
            max_scan_rows: 10,
            ..QueryBudget::default()
        };
        let (mut w, r) = super::super::open(":memory:", budget).unwrap();
        w.hello(&hello("a"), 1).unwrap();
        let evs = (1..=11).map(|s| ev(s, 24)).collect();
        w.commit_events(&key("a"), evs, 5 * M + 1).unwrap();
        let mut by_comm = window(0, i64::MAX);
        by_comm.group = vec![GroupCol::Node, GroupCol::Comm];
        let e = r.stats(&by_comm).unwrap_err();
        assert!(
            matches!(&e, StoreError::OverBudget(m) if m.contains("--query-max-rows")),
            "{e}"
        );
        // A window of fewer events is scanned.
        w.commit_events(&key("a"), vec![ev(12, 24)], 6 * M).unwrap();
        by_comm.since_ns = 5 * M + 2;
        by_comm.until_ns = i64::MAX;
        assert_eq!(r.stats(&by_comm).unwrap().rows[0].count, 1);
        // Node and errno come from the rollups, whatever the number of events.
        let s = r.stats(&window(0, i64::MAX)).unwrap();
        assert_eq!((s.total_events, s.rows[0].count), (12, 12));
    }
}
