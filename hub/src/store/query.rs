//! A validated GetStats query and its result, independent of the engine.

use std::collections::HashMap;

use tapper_proto::v1::StatsRow;

/// Stats query, already validated. The window is in the hub's receive time.
#[derive(Debug)]
pub struct StatsQuery {
    /// Column groups in order (see [`GroupCol`]).
    pub group: Vec<GroupCol>,
    pub since_ns: i64,
    pub until_ns: i64,
    pub nodes: Vec<String>,
}

/// A group-by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupCol {
    Node,
    Errno,
    Family,
    Comm,
    Cgroup,
    /// The pod's namespace.
    Namespace,
    /// The pod: namespace and name.
    Pod,
    /// The container: id and name.
    Container,
}

/// Stats result rows and totals.
#[derive(Debug, Default)]
pub struct StatsResult {
    pub rows: Vec<StatsRow>,
    pub per_node: HashMap<String, u64>,
    pub total_events: u64,
    pub total_lost: u64,
}
