//! Rate-limited warnings about rejected reports: at most one line per node every
//! [`EVERY`], counting the rejections it stands for, so a tapper that resends a bad batch
//! is visible in the log without flooding it.

use std::{
    collections::HashMap,
    fmt::Display,
    sync::Mutex,
    time::{Duration, Instant},
};

use tracing::warn;

/// Shortest time between two lines about one node.
pub const EVERY: Duration = Duration::from_secs(10);
/// Most nodes remembered; beyond it, nodes quiet for longer than [`EVERY`] are forgotten.
const MAX_NODES: usize = 4096;

/// Per node: when the last line was written, and rejections since then not yet logged.
static NODES: Mutex<Option<HashMap<String, (Instant, u64)>>> = Mutex::new(None);

/// Logs that a report from `node` was rejected, unless a line about it went out less than
/// [`EVERY`] ago (then it is counted into the next line).
pub fn rejected(node: &str, instance: &str, error: &dyn Display) {
    let now = Instant::now();
    let mut guard = NODES.lock().unwrap_or_else(|e| e.into_inner());
    let nodes = guard.get_or_insert_with(HashMap::new);
    if let Some(count) = due(nodes, node, now) {
        warn!(%node, %instance, %error, rejected = count, "rejecting reports (logged at most once per {}s per node)", EVERY.as_secs());
    }
}

/// Counts one rejection; returns the number to log when a line is due.
fn due(nodes: &mut HashMap<String, (Instant, u64)>, node: &str, now: Instant) -> Option<u64> {
    if let Some((last, pending)) = nodes.get_mut(node) {
        *pending += 1;
        if now.duration_since(*last) < EVERY {
            return None;
        }
        let count = *pending;
        *last = now;
        *pending = 0;
        return Some(count);
    }
    if nodes.len() >= MAX_NODES {
        nodes.retain(|_, (last, _)| now.duration_since(*last) < EVERY);
    }
    nodes.insert(node.to_owned(), (now, 0));
    Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_node_per_interval_with_the_count() {
        let mut nodes = HashMap::new();
        let t0 = Instant::now();
        assert_eq!(due(&mut nodes, "a", t0), Some(1));
        assert_eq!(due(&mut nodes, "b", t0), Some(1));
        for i in 1..=96 {
            assert_eq!(
                due(&mut nodes, "a", t0 + Duration::from_millis(i * 100)),
                None
            );
        }
        assert_eq!(due(&mut nodes, "a", t0 + EVERY), Some(97));
        assert_eq!(due(&mut nodes, "a", t0 + EVERY), None);
    }
}
