//! Scans of stored events and loss records over a receive-time window: grouped failure
//! counts (each event `1 + suppressed`; refused up front when the window holds more events than the budget allows) and
//! loss totals (read from the `losses_received` index alone).

use rusqlite::{Connection, params_from_iter, types::Value};
use tapper_proto::v1::StatsRow;

use super::{i2u, losses::saturating_sum, push_node_filter, rollups::FAILURES_SQL, u2i};
use crate::store::{GroupCol, QueryBudget, Result};

/// Records received in `[since_ns, until_ns)`, only of `nodes` when not empty.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    pub since_ns: i64,
    pub until_ns: i64,
    pub nodes: &'a [String],
}

impl Window<'_> {
    /// The WHERE clause (both tables have the columns) and its arguments.
    fn filter(&self) -> (String, Vec<Value>) {
        let mut sql = String::from("received_ns >= ? AND received_ns < ?");
        let mut args: Vec<Value> = vec![self.since_ns.into(), self.until_ns.into()];
        push_node_filter(&mut sql, &mut args, self.nodes);
        (sql, args)
    }
}

/// The columns a group key selects and groups by.
fn columns(g: GroupCol) -> &'static str {
    match g {
        GroupCol::Node => "node",
        GroupCol::Errno => "errno, errno_name",
        GroupCol::Family => "family, family_name",
        GroupCol::Comm => "comm",
        GroupCol::Cgroup => "cgroup_id",
        GroupCol::Namespace => "pod_namespace",
        GroupCol::Pod => "pod_namespace, pod_name",
        GroupCol::Container => "container_id, container_name",
    }
}

/// Failure counts (events and the failures they stand for) of the window grouped by
/// `group` (not empty), largest first, then by the
/// group columns. With a `budget`, a window of more events than it allows is refused
/// before the scan starts.
pub fn grouped(
    conn: &Connection,
    w: &Window<'_>,
    group: &[GroupCol],
    budget: Option<&QueryBudget>,
) -> Result<Vec<StatsRow>> {
    let (where_sql, args) = w.filter();
    if let Some(budget) = budget {
        // Counts at most one event over the budget: bounded work on the window's index.
        let cap = budget.max_scan_rows.min(i64::MAX as u64 - 1) + 1;
        let mut st = conn.prepare(&format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE {where_sql} LIMIT {})",
            u2i(cap)
        ))?;
        let n: i64 = st.query_row(params_from_iter(args.iter()), |r| r.get(0))?;
        if i2u(n) > budget.max_scan_rows {
            return Err(budget.over_rows());
        }
    }
    let cols = group
        .iter()
        .map(|&g| columns(g))
        .collect::<Vec<_>>()
        .join(", ");
    let mut st = conn.prepare(&format!(
        "SELECT {cols}, {FAILURES_SQL} AS n FROM events WHERE {where_sql}
         GROUP BY {cols} ORDER BY n DESC, {cols}"
    ))?;
    let rows = st.query_map(params_from_iter(args.iter()), |r| {
        let mut row = StatsRow::default();
        let mut i = 0;
        for g in group {
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
                GroupCol::Namespace => row.namespace = r.get(i)?,
                GroupCol::Pod => {
                    row.namespace = r.get(i)?;
                    i += 1;
                    row.pod = r.get(i)?;
                }
                GroupCol::Container => {
                    row.container_id = r.get(i)?;
                    i += 1;
                    row.container = r.get(i)?;
                }
            }
            i += 1;
        }
        row.count = i2u(r.get(i)?);
        Ok(row)
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The sum of the counts of the loss records received in the window, saturating (SQLite's
/// SUM fails on overflow).
pub fn lost(conn: &Connection, w: &Window<'_>) -> Result<u64> {
    let (where_sql, args) = w.filter();
    let mut st = conn.prepare(&format!("SELECT count FROM losses WHERE {where_sql}"))?;
    let mut rows = st.query(params_from_iter(args.iter()))?;
    let mut counts = Vec::new();
    while let Some(r) = rows.next()? {
        counts.push(r.get::<_, i64>(0)?);
    }
    Ok(saturating_sum(counts))
}
