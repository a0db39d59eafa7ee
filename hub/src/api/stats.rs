//! `GetStats`: validates the window (in the hub's receive time) and group keys, then counts
//! stored events per group.

use std::sync::Arc;

use tapper_proto::v1::{GetStatsRequest, GetStatsResponse, GroupBy};

use crate::{
    api::state::HubState,
    error::HubError,
    ingest::validate,
    store::{GroupCol, StatsQuery},
    util::clock::{now_ns, to_ts},
};

/// Turns the request into a store query, or says which field is wrong.
pub fn query(req: &GetStatsRequest, now: i64) -> Result<StatsQuery, HubError> {
    let mut group = Vec::new();
    for (i, g) in req.group_by.iter().enumerate() {
        let col = match GroupBy::try_from(*g) {
            Ok(GroupBy::Node) => GroupCol::Node,
            Ok(GroupBy::Errno) => GroupCol::Errno,
            Ok(GroupBy::Family) => GroupCol::Family,
            Ok(GroupBy::Comm) => GroupCol::Comm,
            Ok(GroupBy::Cgroup) => GroupCol::Cgroup,
            Ok(GroupBy::Namespace) => GroupCol::Namespace,
            Ok(GroupBy::Pod) => GroupCol::Pod,
            Ok(GroupBy::Container) => GroupCol::Container,
            Ok(GroupBy::Unspecified) => {
                return Err(HubError::invalid(
                    format!("group_by[{i}]"),
                    "GROUP_BY_UNSPECIFIED is not a key",
                ));
            }
            Err(_) => {
                return Err(HubError::invalid(
                    format!("group_by[{i}]"),
                    format!("unknown value {g}"),
                ));
            }
        };
        if !group.contains(&col) {
            group.push(col);
        }
    }
    if req.last_seconds < 0 {
        return Err(HubError::invalid(
            "last_seconds",
            format!("must be positive, got {}", req.last_seconds),
        ));
    }
    let since_ns = match (&req.since, req.last_seconds) {
        (Some(_), n) if n > 0 => {
            return Err(HubError::invalid(
                "last_seconds",
                "cannot be combined with since",
            ));
        }
        (Some(ts), _) => validate::timestamp("since", ts)?,
        (None, 0) => 0,
        (None, n) => now.saturating_sub(n.saturating_mul(1_000_000_000)),
    };
    let until_ns = match &req.until {
        Some(ts) => validate::timestamp("until", ts)?,
        None => i64::MAX,
    };
    if until_ns < since_ns {
        return Err(HubError::invalid("until", "is before since"));
    }
    validate::node_names(&req.node)?;
    Ok(StatsQuery {
        group,
        since_ns,
        until_ns,
        nodes: req.node.clone(),
    })
}

/// Serves one GetStats call.
pub async fn get_stats(
    state: &Arc<HubState>,
    req: GetStatsRequest,
) -> Result<GetStatsResponse, HubError> {
    let q = query(&req, now_ns())?;
    let (since_ns, until_ns) = (q.since_ns, q.until_ns);
    let r = state
        .with_reader(move |s| {
            for n in &q.nodes {
                if !s.known_node(n)? {
                    return Ok(Err(HubError::NotFound {
                        what: "node",
                        name: n.clone(),
                    }));
                }
            }
            Ok(Ok(s.stats(&q)?))
        })
        .await??;
    Ok(GetStatsResponse {
        rows: r.rows,
        total_events: r.total_events,
        total_lost: r.total_lost,
        per_node: r.per_node,
        since: Some(to_ts(since_ns)),
        until: (until_ns != i64::MAX).then(|| to_ts(until_ns)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapper_proto::Timestamp;

    fn err(req: GetStatsRequest) -> String {
        query(&req, 1_000_000_000_000).unwrap_err().to_string()
    }

    #[test]
    fn impossible_windows_are_rejected() {
        let ts = |s| {
            Some(Timestamp {
                seconds: s,
                nanos: 0,
            })
        };
        assert!(
            err(GetStatsRequest {
                since: ts(10),
                until: ts(5),
                ..Default::default()
            })
            .starts_with("until:")
        );
        assert!(
            err(GetStatsRequest {
                last_seconds: -5,
                ..Default::default()
            })
            .starts_with("last_seconds:")
        );
        assert!(
            err(GetStatsRequest {
                since: ts(1),
                last_seconds: 5,
                ..Default::default()
            })
            .starts_with("last_seconds:")
        );
        assert!(
            err(GetStatsRequest {
                since: ts(-1),
                ..Default::default()
            })
            .starts_with("since:")
        );
        assert!(
            err(GetStatsRequest {
                group_by: vec![0],
                ..Default::default()
            })
            .starts_with("group_by[0]:")
        );
        assert!(
            err(GetStatsRequest {
                group_by: vec![1, 42],
                ..Default::default()
            })
            .starts_with("group_by[1]:")
        );
    }

    #[test]
    fn node_filters_are_bounded() {
        let many = GetStatsRequest {
            node: (0..40_000).map(|i| format!("n{i}")).collect(),
            ..Default::default()
        };
        let e = query(&many, 0).unwrap_err().to_string();
        assert!(e.starts_with("node: 40000 values exceed"), "{e}");
        let long = GetStatsRequest {
            node: vec!["x".repeat(300)],
            ..Default::default()
        };
        assert!(
            query(&long, 0)
                .unwrap_err()
                .to_string()
                .starts_with("node[0]:")
        );
    }

    #[test]
    fn last_seconds_is_relative_to_now() {
        let q = query(
            &GetStatsRequest {
                last_seconds: 10,
                ..Default::default()
            },
            100_000_000_000,
        )
        .unwrap();
        assert_eq!((q.since_ns, q.until_ns), (90_000_000_000, i64::MAX));
    }
}
