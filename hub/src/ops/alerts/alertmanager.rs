//! Delivery to one Alertmanager (its v2 API, `POST /api/v2/alerts`): the newest state of
//! every alert waits in a pending map until Alertmanager took it, so an Alertmanager that
//! is down loses nothing; posts carry bounded batches; retries back off, and the log and the
//! metrics say so.

use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use tokio::sync::Notify;
use tracing::{info, warn};

use super::engine::Alert;

const POST_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Most bytes of an error reply quoted in the log.
const ERROR_BODY_BYTES: usize = 512;
/// Most alerts in one post, and most bytes (one alert alone may be larger).
const POST_MAX_ALERTS: usize = 256;
const POST_MAX_BYTES: usize = 512 * 1024;

/// Pending alerts taken for one post: (key, version) of each, and the JSON body.
struct Batch {
    taken: Vec<(String, u64)>,
    body: Vec<u8>,
}

impl Batch {
    /// In key order, up to [`POST_MAX_ALERTS`] and [`POST_MAX_BYTES`].
    fn take(pending: &BTreeMap<String, (u64, Alert)>) -> Self {
        let mut batch = Batch {
            taken: Vec::new(),
            body: b"[".to_vec(),
        };
        for (key, (version, alert)) in pending {
            let encoded = json(alert).to_string();
            let full = batch.taken.len() == POST_MAX_ALERTS
                || batch.body.len() + encoded.len() + 1 > POST_MAX_BYTES;
            if !batch.taken.is_empty() && full {
                break;
            }
            if !batch.taken.is_empty() {
                batch.body.push(b',');
            }
            batch.body.extend_from_slice(encoded.as_bytes());
            batch.taken.push((key.clone(), *version));
        }
        batch.body.push(b']');
        batch
    }
}

/// Checks an `--alertmanager` URL: `http://HOST:PORT` with an optional path prefix.
pub fn parse_url(text: &str) -> Result<http::Uri, String> {
    let base = text.trim().trim_end_matches('/');
    let uri: http::Uri = format!("{base}/api/v2/alerts")
        .parse()
        .map_err(|e| format!("{text:?} is not a URL ({e}); use e.g. http://127.0.0.1:9093"))?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some() => Ok(uri),
        Some("https") => Err(format!(
            "{text:?}: https is not supported yet; use http:// (a local Alertmanager or a \
             TLS-terminating proxy)"
        )),
        _ => Err(format!(
            "{text:?} is not an http:// URL; use e.g. http://127.0.0.1:9093"
        )),
    }
}

/// Counters of one Alertmanager, registered under its URL.
#[derive(Clone, Default)]
pub struct SendMetrics {
    pub posted: Counter,
    pub failed: Counter,
    pub pending: Gauge,
}

pub struct Alertmanager {
    pub url: String,
    endpoint: http::Uri,
    /// Alert key -> (version, newest state).
    pending: Mutex<BTreeMap<String, (u64, Alert)>>,
    version: Mutex<u64>,
    wake: Notify,
    pub metrics: SendMetrics,
}

impl Alertmanager {
    pub fn new(url: String, endpoint: http::Uri) -> Self {
        Self {
            url,
            endpoint,
            pending: Mutex::new(BTreeMap::new()),
            version: Mutex::new(0),
            wake: Notify::new(),
            metrics: SendMetrics::default(),
        }
    }

    /// Queues the newest state of these alerts (replacing older undelivered ones).
    pub fn offer(&self, alerts: &[Alert]) {
        if alerts.is_empty() {
            return;
        }
        let mut version = self.version.lock().unwrap_or_else(|e| e.into_inner());
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for alert in alerts {
            *version += 1;
            pending.insert(alert.key.clone(), (*version, alert.clone()));
        }
        self.metrics.pending.set(pending.len() as i64);
        self.wake.notify_one();
    }

    /// Delivers until `stop` resolves.
    pub async fn run(&self, stop: impl Future<Output = ()>) {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let mut retry = RETRY_FIRST;
        let mut failing_since: Option<SystemTime> = None;
        tokio::pin!(stop);
        loop {
            let (batch, pending) = {
                let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                (Batch::take(&pending), pending.len())
            };
            if batch.taken.is_empty() {
                tokio::select! {
                    () = self.wake.notified() => continue,
                    () = &mut stop => return,
                }
            }
            match self.post(&client, batch.body).await {
                Ok(()) => {
                    self.metrics.posted.inc();
                    self.delivered(&batch.taken);
                    retry = RETRY_FIRST;
                    if let Some(since) = failing_since.take() {
                        let down = since.elapsed().unwrap_or_default();
                        info!(alertmanager = %self.url, ?down,
                              "Alertmanager reachable again; delivering the pending alerts");
                    }
                }
                Err(error) => {
                    self.metrics.failed.inc();
                    if failing_since.is_none() {
                        failing_since = Some(SystemTime::now());
                        warn!(alertmanager = %self.url, %error, pending,
                              "cannot deliver alerts to Alertmanager; keeping them and retrying");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(retry) => {}
                        () = &mut stop => return,
                    }
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Forgets what was delivered, unless a newer state came in meanwhile.
    fn delivered(&self, taken: &[(String, u64)]) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (key, version) in taken {
            if pending.get(key).is_some_and(|(v, _)| v == version) {
                pending.remove(key);
            }
        }
        self.metrics.pending.set(pending.len() as i64);
    }

    async fn post(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        body: Vec<u8>,
    ) -> Result<(), String> {
        let request = http::Request::post(self.endpoint.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(POST_TIMEOUT, client.request(request))
            .await
            .map_err(|_| format!("no answer within {POST_TIMEOUT:?}"))?
            .map_err(|e| format!("{e:?}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.into_body().collect().await.map(|b| b.to_bytes());
        let text = body.map_or_else(
            |_| String::new(),
            |b| String::from_utf8_lossy(&b[..b.len().min(ERROR_BODY_BYTES)]).into_owned(),
        );
        Err(format!("HTTP {status}: {}", text.trim()))
    }
}

/// The v2 API's postable alert (also what the hub's HTTP API lists).
pub fn json(alert: &Alert) -> serde_json::Value {
    serde_json::json!({
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": humantime::format_rfc3339_millis(alert.starts_at).to_string(),
        "endsAt": humantime::format_rfc3339_millis(alert.ends_at).to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_bounded_and_taken_in_key_order() {
        let alert = |key: &str, process: usize| Alert {
            key: key.into(),
            labels: BTreeMap::from([("alertname".into(), key.into())]),
            annotations: BTreeMap::from([("process".into(), "x".repeat(process))]),
            starts_at: SystemTime::UNIX_EPOCH,
            ends_at: SystemTime::UNIX_EPOCH,
            firing: true,
        };
        let pending: BTreeMap<String, (u64, Alert)> = (0..600)
            .map(|i| (format!("a{i:03}"), (i, alert(&format!("a{i:03}"), 10))))
            .collect();
        let batch = Batch::take(&pending);
        assert_eq!(batch.taken.len(), POST_MAX_ALERTS);
        assert_eq!(batch.taken[0], ("a000".into(), 0));
        let parsed: Vec<serde_json::Value> = serde_json::from_slice(&batch.body).unwrap();
        assert_eq!(parsed.len(), POST_MAX_ALERTS);
        assert_eq!(parsed[1]["labels"]["alertname"], "a001");

        let big: BTreeMap<String, (u64, Alert)> = (0..4)
            .map(|i| (format!("b{i}"), (i, alert(&format!("b{i}"), 200 * 1024))))
            .collect();
        let batch = Batch::take(&big);
        assert_eq!(batch.taken.len(), 2, "two of 200 KiB fit in 512 KiB");
        assert!(batch.body.len() <= POST_MAX_BYTES);
        let huge = BTreeMap::from([("c".to_owned(), (1, alert("c", 600 * 1024)))]);
        assert_eq!(Batch::take(&huge).taken.len(), 1, "one alone may be larger");
        assert_eq!(Batch::take(&BTreeMap::new()).body, b"[]");
    }

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            parse_url("http://127.0.0.1:9093/").unwrap().to_string(),
            "http://127.0.0.1:9093/api/v2/alerts"
        );
        assert_eq!(
            parse_url("http://am.example/prefix").unwrap().path(),
            "/prefix/api/v2/alerts"
        );
        assert!(
            parse_url("https://am:9093")
                .unwrap_err()
                .contains("https is not supported")
        );
        for bad in ["am:9093", "ftp://am:9093"] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.contains("use e.g. http://127.0.0.1:9093"), "{e}");
        }
        assert!(parse_url("http://a b").unwrap_err().contains("not a URL"));
    }
}
