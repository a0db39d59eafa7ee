//! Alerts from the hub: rules (`--alert-rules`) evaluated on every committed batch of events
//! and on every warning, sent firing and resolved to each `--alertmanager`, re-sent while
//! firing; the log gets a bounded number of lines however many alerts there are.

mod alertmanager;
mod engine;
mod observed;
mod rules;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use tapper_proto::v1::{Event, Warning};
use tracing::{info, warn};

pub use alertmanager::parse_url;
pub use rules::{MAX_GROUPS_LIMIT, RulesError, load as load_rules};

use alertmanager::Alertmanager;
use engine::{Alert, Capped, Engine, OVER_MAX_GROUPS};
use tapper_logging::LogBudget;

/// How often quiet windows and re-sends are checked.
const TICK: Duration = Duration::from_millis(100);
/// Lines about single alerts firing or resolving, at most, per [`ALERT_LINES_EVERY`].
const ALERT_LINES: u32 = 20;
const ALERT_LINES_EVERY: Duration = Duration::from_secs(10);
/// One line per rule about groups over its `max_groups`, at most, per this interval.
const CAPPED_LINE_EVERY: Duration = Duration::from_secs(60);

pub struct Alerting {
    engine: Mutex<Engine>,
    alertmanagers: Vec<Arc<Alertmanager>>,
    firing: Gauge,
    /// Per rule, the items counted over its `max_groups`.
    capped: Family<Vec<(String, String)>, Counter>,
    logs: Mutex<Logs>,
}

/// The log's budgets: for lines about alerts, and per rule for its capped groups.
struct Logs {
    alerts: LogBudget,
    capped: Vec<LogBudget>,
}

impl Alerting {
    /// Rules already loaded; `alertmanagers` as checked by [`parse_url`]; a rule without its
    /// own `max_groups` keeps `max_groups` groups apart.
    pub fn new(
        rules: Vec<rules::Rule>,
        alertmanagers: &[String],
        resend_every: Duration,
        max_groups: usize,
    ) -> Result<Self, String> {
        let alertmanagers = alertmanagers
            .iter()
            .map(|url| Ok(Arc::new(Alertmanager::new(url.clone(), parse_url(url)?))))
            .collect::<Result<_, String>>()?;
        let logs = Logs {
            alerts: LogBudget::new(ALERT_LINES, ALERT_LINES_EVERY),
            capped: rules
                .iter()
                .map(|_| LogBudget::one_per(CAPPED_LINE_EVERY))
                .collect(),
        };
        Ok(Self {
            engine: Mutex::new(Engine::new(rules, resend_every, max_groups)),
            alertmanagers,
            firing: Gauge::default(),
            capped: Family::default(),
            logs: Mutex::new(logs),
        })
    }

    fn logs(&self) -> std::sync::MutexGuard<'_, Logs> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn engine(&self) -> std::sync::MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The alerts firing now, as Alertmanager gets them (labels, annotations, times).
    pub fn firing_json(&self) -> Vec<serde_json::Value> {
        let mut alerts = self.engine().firing_alerts(SystemTime::now());
        alerts.sort_by(|a, b| a.key.cmp(&b.key));
        alerts.iter().map(alertmanager::json).collect()
    }

    /// Evaluates the rules on a committed batch; alerts that start firing go out at once.
    pub fn observe(&self, events: &[Event]) {
        self.observe_items(events);
    }

    /// Evaluates the rules on a committed warning.
    pub fn observe_warning(&self, warning: &Warning) {
        self.observe_items(std::slice::from_ref(warning));
    }

    fn observe_items<T: observed::Observed>(&self, items: &[T]) {
        if items.is_empty() {
            return;
        }
        let (started, firing) = {
            let mut engine = self.engine();
            let started = engine.observe(items, Instant::now(), SystemTime::now());
            let capped = engine.take_capped();
            self.count_capped(&engine, capped);
            (started, engine.firing())
        };
        self.send(&started, firing);
    }

    /// Counts and logs (once a minute per rule) the items counted over `max_groups`.
    fn count_capped(&self, engine: &Engine, capped: Vec<Capped>) {
        for Capped { rule: index, items } in capped {
            let rule = engine.rule(index);
            self.capped
                .get_or_create(&vec![("rule".to_owned(), rule.name.clone())])
                .inc_by(items);
            if let Some(unlogged) = self.logs().capped[index].due() {
                warn!(rule = %rule.name, max_groups = engine.max_groups(index), unlogged,
                      "alert rule has max_groups groups; what would open more is counted \
                       together in one group labelled {OVER_MAX_GROUPS:?} (see \
                       hub_alert_groups_capped_total, the rule's max_groups, --alert-max-groups)");
            }
        }
    }

    fn send(&self, alerts: &[Alert], firing: usize) {
        self.firing.set(firing as i64);
        for alert in alerts {
            let Some(unlogged) = self.logs().alerts.due() else {
                continue;
            };
            info!(alert = %alert.labels["alertname"], labels = ?alert.labels, unlogged,
                  "alert {}", if alert.firing { "firing" } else { "resolved" });
        }
        for am in &self.alertmanagers {
            am.offer(alerts);
        }
    }

    /// Starts the delivery tasks and the ticker (resolutions, re-sends) until `stop`.
    pub fn start<S>(self: &Arc<Self>, stop: impl Fn() -> S)
    where
        S: Future<Output = ()> + Send + 'static,
    {
        for am in &self.alertmanagers {
            let am = am.clone();
            let stop = stop();
            tokio::spawn(async move { am.run(stop).await });
        }
        let this = self.clone();
        let stop = stop();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = &mut stop => return,
                }
                let (due, firing) = {
                    let mut engine = this.engine();
                    (
                        engine.tick(Instant::now(), SystemTime::now()),
                        engine.firing(),
                    )
                };
                this.send(&due, firing);
            }
        });
    }

    /// `hub_alerts_firing`, `hub_alert_groups_capped_total`, and per Alertmanager its
    /// posts, failures and pending alerts.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "hub_alerts_firing",
            "alerts firing now",
            self.firing.clone(),
        );
        registry.register(
            "hub_alert_groups_capped",
            "events and warnings a rule counted in its group over max_groups, because they \
             would have opened one group more",
            self.capped.clone(),
        );
        for am in &self.alertmanagers {
            let sub =
                registry.sub_registry_with_label(("alertmanager".into(), am.url.clone().into()));
            sub.register(
                "hub_alertmanager_posts",
                "alert batches Alertmanager accepted",
                am.metrics.posted.clone(),
            );
            sub.register(
                "hub_alertmanager_post_failures",
                "alert batches that failed to reach Alertmanager (each is retried)",
                am.metrics.failed.clone(),
            );
            sub.register(
                "hub_alertmanager_pending_alerts",
                "alert states waiting for Alertmanager to take them",
                am.metrics.pending.clone(),
            );
        }
    }
}
