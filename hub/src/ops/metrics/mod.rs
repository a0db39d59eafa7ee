//! The hub's metrics: counters kept as ingest commits (failures by node and errno, losses by
//! node and reason, warnings by node and kind, commit time, stored rows) and gauges read from the hub at each scrape.

mod live;

use std::{collections::HashMap, sync::Weak, time::Duration};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tapper_proto::v1::{Event, LossNotice, Warning};

pub use live::LiveCounts;

/// `hub_socket_failures_total` labels: node, errno, and namespace only with
/// `--metrics-namespace-label`.
type FailureLabels = Vec<(&'static str, String)>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LossLabels {
    node: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WarningLabels {
    node: String,
    /// One of the few kinds validation lets in.
    kind: String,
}

/// What ingest counts. Cheap to update from the commit path (atomics behind a map lookup);
/// a clone shares the same counters.
#[derive(Clone)]
pub struct HubMetrics {
    failures: Family<FailureLabels, Counter>,
    lost: Family<LossLabels, Counter>,
    warnings: Family<WarningLabels, Counter>,
    commit_seconds: Histogram,
    store_rows: Gauge,
    namespace_label: bool,
}

impl HubMetrics {
    /// `namespace_label` adds the Kubernetes namespace to `hub_socket_failures_total`.
    pub fn new(namespace_label: bool) -> Self {
        Self {
            failures: Family::default(),
            lost: Family::default(),
            warnings: Family::default(),
            // 100 µs to about 3.3 s.
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            store_rows: Gauge::default(),
            namespace_label,
        }
    }

    /// The stored rows at start; ingest and retention keep the gauge current after that.
    pub fn set_store_rows(&self, rows: u64) {
        self.store_rows.set(rows as i64);
    }

    /// Times a group commit: what the writer thread calls with each transaction's length.
    pub fn commit_observer(&self) -> impl Fn(Duration) + Send + 'static {
        let histogram = self.commit_seconds.clone();
        move |took| histogram.observe(took.as_secs_f64())
    }

    /// Counts the new (not duplicate) events of a commit.
    pub fn events_committed(&self, events: &[Event]) {
        self.store_rows.inc_by(events.len() as i64);
        // One label lookup per distinct (node, errno, namespace) of the commit, not per event:
        // a commit's events mostly share them.
        let mut sums: HashMap<(&str, i32, &str), u64> = HashMap::new();
        for e in events {
            let namespace = match self.namespace_label {
                true => e.pod.as_ref().and_then(|p| p.namespace.as_deref()),
                false => None,
            };
            // An event stands for the failures the tapper's rate limit suppressed too.
            *sums
                .entry((&e.node, e.errno, namespace.unwrap_or_default()))
                .or_default() += 1 + e.suppressed;
        }
        for ((node, errno, namespace), failures) in sums {
            let mut labels = vec![
                ("node", node.to_owned()),
                ("errno", tapper_names::errno_name(errno)),
            ];
            if self.namespace_label {
                labels.push(("namespace", namespace.to_owned()));
            }
            self.failures.get_or_create(&labels).inc_by(failures);
        }
    }

    /// Counts a new loss record of a commit.
    pub fn loss_committed(&self, loss: &LossNotice) {
        self.store_rows.inc();
        let Some(l) = &loss.loss else { return };
        self.lost
            .get_or_create(&LossLabels {
                node: loss.node.clone(),
                reason: loss_reason(&l.reason),
            })
            .inc_by(l.count);
    }

    /// Counts a new warning of a commit.
    pub fn warning_committed(&self, warning: &Warning) {
        self.store_rows.inc();
        self.warnings
            .get_or_create(&WarningLabels {
                node: warning.node.clone(),
                kind: warning.kind.clone(),
            })
            .inc();
    }

    /// Retention deleted `rows` records.
    pub fn rows_deleted(&self, rows: u64) {
        self.store_rows.dec_by(rows as i64);
    }

    /// Registers the counters under their `hub_` names.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "hub_socket_failures",
            "failed socket() calls stored, by node and errno",
            self.failures.clone(),
        );
        registry.register(
            "hub_events_lost",
            "failures the tappers reported lost, by node and reason (kernel_ring_full, \
             reporter_buffer_full, hub_rejected, other)",
            self.lost.clone(),
        );
        registry.register(
            "hub_warnings",
            "warnings of descriptor exhaustion ahead stored, by node and kind (nofile, file-max)",
            self.warnings.clone(),
        );
        registry.register(
            "hub_ingest_commit_seconds",
            "time to commit one batch of events or one loss record to the store",
            self.commit_seconds.clone(),
        );
        registry.register(
            "hub_store_rows",
            "events, loss records and warnings in the store",
            self.store_rows.clone(),
        );
    }
}

/// Registers the gauges read from the running `hub` at each scrape (held weakly).
pub fn register_live(registry: &mut Registry, hub: Weak<dyn LiveCounts>) {
    registry.register_collector(Box::new(live::LiveGauges::new(hub)));
}

/// A loss record's free-text reason (as the tapper and the reporter library write them) as
/// one of a few label values, so that a status message quoted in a reason cannot grow the
/// label set.
fn loss_reason(reason: &str) -> &'static str {
    match reason {
        "kernel ring buffer full" => "kernel_ring_full",
        "reporter buffer full" => "reporter_buffer_full",
        r if r.starts_with("rejected by the hub: ") => "hub_rejected",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapper_proto::v1::{Loss, Pod};

    fn encode(m: &HubMetrics) -> String {
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    }

    fn event(node: &str, errno: i32) -> Event {
        Event {
            node: node.into(),
            errno,
            pod: Some(Pod {
                namespace: Some("shop".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn failures_and_losses_are_counted_by_their_labels() {
        let m = HubMetrics::new(false);
        m.set_store_rows(10);
        let storm = Event {
            suppressed: 40,
            ..event("a", 24)
        };
        m.events_committed(&[event("a", 24), storm, event("b", 97)]);
        let loss = |reason: &str, count| LossNotice {
            node: "a".into(),
            loss: Some(Loss {
                count,
                reason: reason.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        m.loss_committed(&loss("kernel ring buffer full", 3));
        m.loss_committed(&loss("rejected by the hub: too big", 2));
        m.loss_committed(&loss("rejected by the hub: other words", 4));
        m.rows_deleted(1);
        let observe_commit = m.commit_observer();
        for _ in 0..4 {
            observe_commit(Duration::ZERO);
        }
        let text = encode(&m);
        for line in [
            "hub_socket_failures_total{node=\"a\",errno=\"EMFILE\"} 42\n",
            "hub_socket_failures_total{node=\"b\",errno=\"EAFNOSUPPORT\"} 1\n",
            "hub_events_lost_total{node=\"a\",reason=\"kernel_ring_full\"} 3\n",
            "hub_events_lost_total{node=\"a\",reason=\"hub_rejected\"} 6\n",
            "hub_store_rows 15\n",
            "hub_ingest_commit_seconds_count 4\n",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
        assert!(!text.contains("namespace"), "{text}");
    }

    #[test]
    fn the_namespace_label_is_opt_in() {
        let m = HubMetrics::new(true);
        let mut no_pod = event("a", 24);
        no_pod.pod = None;
        m.events_committed(&[event("a", 24), no_pod]);
        let text = encode(&m);
        assert!(
            text.contains(
                "hub_socket_failures_total{node=\"a\",errno=\"EMFILE\",namespace=\"shop\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "hub_socket_failures_total{node=\"a\",errno=\"EMFILE\",namespace=\"\"} 1\n"
            ),
            "{text}"
        );
    }
}
