//! GetStats on PostgreSQL: plain GROUP BY over the receive-time index (no rollups; see
//! BENCHMARKS.md part 8 for what that costs). Each event counts for 1 + its suppressed
//! failures. Totals and node/errno groupings always run (under the statement timeout);
//! other groupings are refused up front when the window holds more events than the budget.

use postgres::{Client, Row, types::ToSql};
use tapper_proto::v1::StatsRow;

use super::{i2u, u2i};
use crate::store::{GroupCol, QueryBudget, Result, StatsQuery, StatsResult, StoreError};

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

/// The window's WHERE clause over `$1`, `$2` (receive times) and `$3` (nodes, or none).
const WINDOW: &str =
    "received_ns >= $1 AND received_ns < $2 AND (cardinality($3::TEXT[]) = 0 OR node = ANY($3))";

/// Failures counted by `group` (not empty), largest first, then by the group columns
/// (absent values first, as SQLite sorts them).
fn grouped(
    client: &mut Client,
    params: &[&(dyn ToSql + Sync)],
    group: &[GroupCol],
) -> Result<Vec<StatsRow>> {
    let cols = group
        .iter()
        .map(|&g| columns(g))
        .collect::<Vec<_>>()
        .join(", ");
    let order = cols
        .split(", ")
        .map(|c| format!("{c} NULLS FIRST"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = client.query(
        &format!(
            "SELECT {cols}, SUM(1 + suppressed)::BIGINT AS n FROM events WHERE {WINDOW}
             GROUP BY {cols} ORDER BY n DESC, {order}"
        ),
        params,
    )?;
    Ok(rows.iter().map(|r| stats_row(r, group)).collect())
}

fn stats_row(r: &Row, group: &[GroupCol]) -> StatsRow {
    let mut row = StatsRow::default();
    let mut i = 0;
    for g in group {
        match g {
            GroupCol::Node => row.node = r.get(i),
            GroupCol::Errno => {
                row.errno = r.get(i);
                i += 1;
                row.errno_name = r.get(i);
            }
            GroupCol::Family => {
                row.family = r.get(i);
                i += 1;
                row.family_name = r.get(i);
            }
            GroupCol::Comm => row.comm = r.get(i),
            GroupCol::Cgroup => row.cgroup_id = i2u(r.get(i)),
            GroupCol::Namespace => row.namespace = r.get(i),
            GroupCol::Pod => {
                row.namespace = r.get(i);
                i += 1;
                row.pod = r.get(i);
            }
            GroupCol::Container => {
                row.container_id = r.get(i);
                i += 1;
                row.container = r.get(i);
            }
        }
        i += 1;
    }
    row.count = i2u(r.get(i));
    row
}

/// Counts failures and lost events received in `[since_ns, until_ns)`.
pub fn query(client: &mut Client, q: &StatsQuery, budget: &QueryBudget) -> Result<StatsResult> {
    let params: [&(dyn ToSql + Sync); 3] = [&q.since_ns, &q.until_ns, &q.nodes];
    let mut res = StatsResult::default();
    for row in grouped(client, &params, &[GroupCol::Node])? {
        res.total_events = res.total_events.saturating_add(row.count);
        res.per_node.insert(row.node, row.count);
    }
    if !q.group.is_empty() {
        let scans = !q
            .group
            .iter()
            .all(|g| matches!(g, GroupCol::Node | GroupCol::Errno));
        if scans {
            // Counts at most one event over the budget: bounded work on the window's index.
            let cap = u2i(budget.max_scan_rows.min(i64::MAX as u64 - 1) + 1);
            let n: i64 = client
                .query_one(
                    &format!(
                        "SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE {WINDOW} LIMIT $4) AS w"
                    ),
                    &[&q.since_ns, &q.until_ns, &q.nodes, &cap],
                )?
                .get(0);
            if i2u(n) > budget.max_scan_rows {
                return Err(budget.over_rows());
            }
        }
        res.rows = grouped(client, &params, &q.group)?;
    }
    // Summed exactly, saturating at u64::MAX, negative counts as 0 (as SQLite's sum does);
    // read as text, since u64 has no SQL type.
    let lost: String = client
        .query_one(
            &format!(
                "SELECT LEAST(COALESCE(SUM(GREATEST(count, 0)::NUMERIC), 0), 18446744073709551615)::TEXT
                 FROM losses WHERE {WINDOW}"
            ),
            &params,
        )?
        .get(0);
    res.total_lost = lost.parse().map_err(|e| StoreError::Engine {
        engine: "postgres",
        source: format!("the sum of lost events {lost:?} is not a u64: {e}").into(),
    })?;
    Ok(res)
}
