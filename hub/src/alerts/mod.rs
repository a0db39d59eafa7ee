//! Alerts from the hub: rules (`--alert-rules`) evaluated on every committed batch of events
//! and on every warning, sent
//! firing and resolved to each `--alertmanager`, re-sent while firing.

mod alertmanager;
mod engine;
mod observed;
mod rules;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use prometheus_client::{metrics::gauge::Gauge, registry::Registry};
use tapper_proto::v1::{Event, Warning};
use tracing::info;

pub use alertmanager::parse_url;
pub use rules::{RulesError, load as load_rules};

use alertmanager::Alertmanager;
use engine::{Alert, Engine};

/// How often quiet windows and re-sends are checked.
const TICK: Duration = Duration::from_millis(100);

pub struct Alerting {
    engine: Mutex<Engine>,
    alertmanagers: Vec<Arc<Alertmanager>>,
    firing: Gauge,
}

impl Alerting {
    /// Rules already loaded; `alertmanagers` as checked by [`parse_url`].
    pub fn new(
        rules: Vec<rules::Rule>,
        alertmanagers: &[String],
        resend_every: Duration,
    ) -> Result<Self, String> {
        let alertmanagers = alertmanagers
            .iter()
            .map(|url| Ok(Arc::new(Alertmanager::new(url.clone(), parse_url(url)?))))
            .collect::<Result<_, String>>()?;
        Ok(Self {
            engine: Mutex::new(Engine::new(rules, resend_every)),
            alertmanagers,
            firing: Gauge::default(),
        })
    }

    fn engine(&self) -> std::sync::MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
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
            (started, engine.firing())
        };
        self.send(&started, firing);
    }

    fn send(&self, alerts: &[Alert], firing: usize) {
        self.firing.set(firing as i64);
        for alert in alerts {
            info!(alert = %alert.labels["alertname"], labels = ?alert.labels,
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

    /// `hub_alerts_firing`, and per Alertmanager its posts, failures and pending alerts.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "hub_alerts_firing",
            "alerts firing now",
            self.firing.clone(),
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
