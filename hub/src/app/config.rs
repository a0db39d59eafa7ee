//! The hub's options in one validated struct: what `hub`'s flags set, and what tests pass
//! to run the service in-process.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

pub mod options;
pub mod state_dir;

use crate::{
    api::http::BasePath,
    ops::retention::Retention,
    security::{node_identity::NodeIdentity, tls::TlsFiles},
    store::QueryBudget,
};
use options::Options;

/// Largest `subscriber_queue` accepted.
const MAX_SUBSCRIBER_QUEUE: usize = 1_000_000;
/// Default `subscriber_queue_bytes`: 16 MiB.
pub const DEFAULT_SUBSCRIBER_QUEUE_BYTES: usize = 16 << 20;
/// Default `ingest_queue_bytes`: 8 MiB held decoded (about 5,000 typical events); a
/// tapper's full batch (2,000 events) fits twice.
pub const DEFAULT_INGEST_QUEUE_BYTES: usize = 8 << 20;
/// Default `http2_stream_window`: 128 KiB (hyper's own default is 1 MiB).
pub const DEFAULT_HTTP2_STREAM_WINDOW: u32 = 128 << 10;
/// Default `http2_connection_window`: 256 KiB (hyper's own default is 1 MiB).
pub const DEFAULT_HTTP2_CONNECTION_WINDOW: u32 = 256 << 10;
/// HTTP/2's smallest and largest window (RFC 9113 6.9.2).
const HTTP2_WINDOWS: std::ops::RangeInclusive<u32> = 65_535..=(1 << 31) - 1;
/// Largest subscriber or connection cap accepted.
const MAX_COUNT: usize = 1_000_000;

/// Everything the hub is started with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port ([`crate::Hub::local_addr`] says which).
    pub listen: SocketAddr,
    /// SQLite database file (":memory:" keeps everything in memory), or a `postgres://` URL
    /// (shared by any number of hub replicas).
    pub db: String,
    /// What to keep, and how often to drop the rest.
    pub retention: Retention,
    /// The deadline and scan budget of every reader query (stats, replay, tapper list).
    pub query_budget: QueryBudget,
    /// Items queued per subscriber before it lags.
    pub subscriber_queue: usize,
    /// Encoded bytes queued per subscriber before it lags (one item always fits).
    pub subscriber_queue_bytes: usize,
    /// A subscriber whose queue stays full this long is dropped (after a final notice).
    pub subscriber_stall_timeout: Duration,
    /// Subscribe streams open at once, at most; more are RESOURCE_EXHAUSTED.
    pub max_subscribers: usize,
    /// Open connections at most; more are accepted and closed at once.
    pub max_connections: usize,
    /// Open connections from one peer address (IPv6: one /64) at most; more are closed at
    /// once.
    pub max_connections_per_peer: usize,
    /// A connection that made no authorized call this long after its handshake is closed.
    pub auth_timeout: Duration,
    /// Concurrent gRPC streams per connection, at most.
    pub max_streams_per_connection: u32,
    /// A new connection must finish its TLS handshake (with TLS) and send its first request
    /// bytes (the HTTP/2 preface, or an HTTP/1.1 request line) within this time, or is closed.
    pub handshake_timeout: Duration,
    /// Largest request message accepted, in bytes; bigger is INVALID_ARGUMENT.
    pub max_message_bytes: usize,
    /// Encoded bytes of Report messages read and not yet committed, across all streams.
    pub ingest_queue_bytes: usize,
    /// HTTP/2 receive window of each stream, in bytes.
    pub http2_stream_window: u32,
    /// HTTP/2 receive window of each connection, in bytes.
    pub http2_connection_window: u32,
    /// How long open streams may take to end after shutdown starts.
    pub shutdown_grace: Duration,
    /// Serve TLS from these files (and require client certificates with a client CA).
    pub tls: Option<TlsFiles>,
    /// How a client certificate names its node (with a client CA).
    pub node_identity: NodeIdentity,
    /// Require a bearer token with a role on every call but health (`ROLE TOKEN` lines).
    pub tokens: Option<PathBuf>,
    /// How often the TLS and tokens files are checked for changes.
    pub reload_interval: Duration,
    /// Allow a non-loopback `listen` without TLS and tokens (warned about at start and
    /// every hour).
    pub insecure: bool,
    /// Also serve the gRPC health service alone, in plaintext, on this address (for
    /// probes that cannot speak TLS, like the kubelet's); nothing else is served there.
    pub health_listen: Option<SocketAddr>,
    /// Serve Prometheus metrics on `http://ADDR/metrics`; port 0 picks a free port.
    pub metrics_listen: Option<SocketAddr>,
    /// The metrics endpoint's own connection cap and timeouts (apart from `max_connections`).
    pub metrics_limits: metrics_http::ConnectionLimits,
    /// Label `hub_socket_failures_total` with the pod's namespace too.
    pub metrics_namespace_label: bool,
    /// Alert rules (TOML), evaluated on every committed batch.
    pub alert_rules: Option<PathBuf>,
    /// Alertmanager base URLs (`http://HOST:PORT`) the alerts go to.
    pub alertmanagers: Vec<String>,
    /// How often a firing alert is sent again (it stays valid for three times that).
    pub alert_resend_interval: Duration,
    /// Groups kept apart per alert rule (unless the rule sets `max_groups`); more are
    /// counted together in one.
    pub alert_max_groups: usize,
    /// Serve the page and the HTTP/JSON API on `listen` too.
    pub web: bool,
    /// The path the page and the HTTP API are served under (`/` or e.g. `/tapper`).
    pub web_base_path: String,
}

/// An option out of range; `option` is the flag's name without dashes.
#[derive(Debug, thiserror::Error)]
#[error("{option}: {reason}")]
pub struct ConfigError {
    pub option: &'static str,
    pub reason: String,
}

impl Config {
    /// The defaults of the `hub` command ([`Options::defaults`]), listening on `listen`
    /// with the store at `db`.
    pub fn new(listen: SocketAddr, db: impl Into<String>) -> Self {
        let mut config = Config::from(Options::defaults());
        config.listen = listen;
        config.db = db.into();
        config
    }

    /// Whether the hub listens beyond loopback without TLS or without tokens.
    pub fn exposed(&self) -> bool {
        !self.listen.ip().is_loopback() && (self.tls.is_none() || self.tokens.is_none())
    }

    /// Checks every option; the hub starts only with a valid config.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |option, reason: &str| {
            Err(ConfigError {
                option,
                reason: reason.into(),
            })
        };
        if self.db.is_empty() {
            return bad(
                "db",
                "give a file name, :memory:, or a postgres://USER:PASSWORD@HOST:PORT/DATABASE URL",
            );
        }
        if let Err(reason) = state_dir::check_db_dir(&self.db) {
            return bad("db", &reason);
        }
        if self.retention.max_rows == Some(0) {
            return bad("retention-rows", "must be at least 1");
        }
        if self.retention.max_age == Some(Duration::ZERO) {
            return bad("retention-age", "must be longer than zero");
        }
        if self.retention.interval.is_zero() {
            return bad("retention-interval", "must be longer than zero");
        }
        if !(1..=MAX_SUBSCRIBER_QUEUE).contains(&self.subscriber_queue) {
            return bad(
                "subscriber-queue",
                &format!("must be from 1 to {MAX_SUBSCRIBER_QUEUE}"),
            );
        }
        if self.subscriber_queue_bytes == 0 {
            return bad("subscriber-queue-bytes", "must be at least 1");
        }
        if self.query_budget.timeout.is_zero() {
            return bad("query-timeout", "must be longer than zero");
        }
        if self.query_budget.max_scan_rows == 0 {
            return bad("query-max-rows", "must be at least 1");
        }
        if self.retention.instance_expiry.is_zero() {
            return bad("instance-expiry", "must be longer than zero");
        }
        if self.subscriber_stall_timeout.is_zero() {
            return bad("subscriber-stall-timeout", "must be longer than zero");
        }
        if !(1..=MAX_COUNT).contains(&self.max_subscribers) {
            return bad("max-subscribers", &format!("must be from 1 to {MAX_COUNT}"));
        }
        if !(1..=MAX_COUNT).contains(&self.max_connections) {
            return bad("max-connections", &format!("must be from 1 to {MAX_COUNT}"));
        }
        if !(1..=MAX_COUNT).contains(&self.max_connections_per_peer) {
            return bad(
                "max-connections-per-peer",
                &format!("must be from 1 to {MAX_COUNT}"),
            );
        }
        if self.auth_timeout.is_zero() {
            return bad("auth-timeout", "must be longer than zero");
        }
        if self.node_identity != NodeIdentity::default()
            && self.tls.as_ref().is_none_or(|t| t.client_ca.is_none())
        {
            return bad(
                "node-identity",
                "needs --tls-client-ca: only client certificates name nodes",
            );
        }
        if self.max_streams_per_connection == 0 {
            return bad("max-streams-per-connection", "must be at least 1");
        }
        if self.handshake_timeout.is_zero() {
            return bad("handshake-timeout", "must be longer than zero");
        }
        if self.max_message_bytes == 0 {
            return bad("max-message-bytes", "must be at least 1");
        }
        if !(1..=u32::MAX as usize).contains(&self.ingest_queue_bytes) {
            return bad(
                "ingest-queue-bytes",
                &format!("must be from 1 to {}", u32::MAX),
            );
        }
        for (option, window) in [
            ("http2-stream-window", self.http2_stream_window),
            ("http2-connection-window", self.http2_connection_window),
        ] {
            if !HTTP2_WINDOWS.contains(&window) {
                return bad(
                    option,
                    &format!(
                        "must be from {} to {} (HTTP/2's window sizes)",
                        HTTP2_WINDOWS.start(),
                        HTTP2_WINDOWS.end()
                    ),
                );
            }
        }
        if self.reload_interval.is_zero() {
            return bad("reload-interval", "must be longer than zero");
        }
        if self.metrics_namespace_label && self.metrics_listen.is_none() {
            return bad("metrics-namespace-label", "needs --metrics-listen");
        }
        if self.metrics_limits.max_connections == 0 {
            return bad("metrics-max-connections", "must be at least 1");
        }
        if let Err(reason) = BasePath::parse(&self.web_base_path) {
            return bad("web-base-path", &reason);
        }
        if !self.alertmanagers.is_empty() && self.alert_rules.is_none() {
            return bad(
                "alertmanager",
                "needs --alert-rules: without rules no alert is ever sent",
            );
        }
        if let Some(reason) = self
            .alertmanagers
            .iter()
            .find_map(|url| crate::ops::alerts::parse_url(url).err())
        {
            return bad("alertmanager", &reason);
        }
        if self.alert_resend_interval.is_zero() {
            return bad("alert-resend-interval", "must be longer than zero");
        }
        if !(1..=crate::ops::alerts::MAX_GROUPS_LIMIT).contains(&self.alert_max_groups) {
            return bad(
                "alert-max-groups",
                &format!("must be from 1 to {}", crate::ops::alerts::MAX_GROUPS_LIMIT),
            );
        }
        if self.exposed() && !self.insecure {
            return bad(
                "listen",
                &format!(
                    "{} is not a loopback address: serve it with --tls-cert/--tls-key and \
                     --tokens, or give --insecure to serve it unprotected",
                    self.listen.ip()
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new("127.0.0.1:0".parse().unwrap(), ":memory:")
    }

    #[test]
    fn the_defaults_are_valid() {
        config().validate().unwrap();
    }

    #[test]
    fn out_of_range_options_are_named() {
        let mut c = config();
        c.subscriber_queue = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("subscriber-queue:")
        );
        let mut c = config();
        c.retention.max_rows = Some(0);
        assert_eq!(c.validate().unwrap_err().option, "retention-rows");
        let mut c = config();
        c.retention.interval = Duration::ZERO;
        assert_eq!(c.validate().unwrap_err().option, "retention-interval");
        let mut c = config();
        c.max_connections = 0;
        assert_eq!(c.validate().unwrap_err().option, "max-connections");
        let mut c = config();
        c.handshake_timeout = Duration::ZERO;
        assert_eq!(c.validate().unwrap_err().option, "handshake-timeout");
        let mut c = config();
        c.max_message_bytes = 0;
        assert_eq!(c.validate().unwrap_err().option, "max-message-bytes");
        let mut c = config();
        c.ingest_queue_bytes = 0;
        assert_eq!(c.validate().unwrap_err().option, "ingest-queue-bytes");
        let mut c = config();
        c.http2_stream_window = 1000;
        assert_eq!(c.validate().unwrap_err().option, "http2-stream-window");
        let mut c = config();
        c.http2_connection_window = 1 << 31;
        assert_eq!(c.validate().unwrap_err().option, "http2-connection-window");
        let mut c = config();
        c.max_connections_per_peer = 0;
        assert_eq!(c.validate().unwrap_err().option, "max-connections-per-peer");
        let mut c = config();
        c.auth_timeout = Duration::ZERO;
        assert_eq!(c.validate().unwrap_err().option, "auth-timeout");
        let mut c = config();
        c.alert_max_groups = 0;
        assert_eq!(c.validate().unwrap_err().option, "alert-max-groups");
        let mut c = config();
        c.node_identity = NodeIdentity::Cn;
        assert_eq!(c.validate().unwrap_err().option, "node-identity");
    }

    #[test]
    fn alert_and_metrics_options_are_checked() {
        let mut c = config();
        c.alertmanagers = vec!["http://127.0.0.1:9093".into()];
        assert!(
            c.validate()
                .unwrap_err()
                .reason
                .starts_with("needs --alert-rules")
        );
        c.alert_rules = Some("rules.toml".into());
        c.validate().unwrap();
        c.alertmanagers.push("https://am:9093".into());
        let e = c.validate().unwrap_err();
        assert_eq!(e.option, "alertmanager");
        assert!(e.reason.contains("https is not supported"), "{e}");
        let mut c = config();
        c.metrics_namespace_label = true;
        assert_eq!(c.validate().unwrap_err().option, "metrics-namespace-label");
        let mut c = config();
        c.metrics_limits.max_connections = 0;
        assert_eq!(c.validate().unwrap_err().option, "metrics-max-connections");
    }

    #[test]
    fn beyond_loopback_needs_tls_and_tokens_or_insecure() {
        let mut c = config();
        c.listen = "0.0.0.0:50051".parse().unwrap();
        assert_eq!(c.validate().unwrap_err().option, "listen");
        c.tls = Some(TlsFiles {
            cert: "c.pem".into(),
            key: "k.pem".into(),
            client_ca: None,
        });
        assert_eq!(c.validate().unwrap_err().option, "listen");
        c.tokens = Some("tokens".into());
        c.validate().unwrap();
        c.tokens = None;
        c.insecure = true;
        c.validate().unwrap();
        assert!(c.exposed());
    }
}
