//! The `hub` command's options, declared once: one clap group per concern, each with its
//! defaults and its `--help` heading; [`Config`] is made from them.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use tapper_proto::flag_text::{parse_duration, parse_listen_addr};

use crate::{
    app::config::{
        Config, DEFAULT_HTTP2_CONNECTION_WINDOW, DEFAULT_HTTP2_STREAM_WINDOW,
        DEFAULT_INGEST_QUEUE_BYTES, DEFAULT_SUBSCRIBER_QUEUE_BYTES,
    },
    ops::retention::Retention,
    security::{
        message_size::DEFAULT_MAX_MESSAGE_BYTES, node_identity::NodeIdentity, tls::TlsFiles,
    },
    store::QueryBudget,
};

/// Every option of the `hub` command, grouped by concern (flattened into its command line).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    #[command(flatten)]
    pub server: ServerOptions,
    #[command(flatten)]
    pub store: StoreOptions,
    #[command(flatten)]
    pub subscribers: SubscriberOptions,
    #[command(flatten)]
    pub connections: ConnectionOptions,
    #[command(flatten)]
    pub security: SecurityOptions,
    #[command(flatten)]
    pub metrics: MetricsOptions,
    #[command(flatten)]
    pub alerts: AlertOptions,
    #[command(flatten)]
    pub web: WebOptions,
}

/// A command line of nothing but the options, to read their defaults.
#[derive(Parser)]
struct Defaults {
    #[command(flatten)]
    options: Options,
}

impl Options {
    /// Every option at its default, as `hub` alone gives them.
    pub fn defaults() -> Self {
        Defaults::try_parse_from(["hub"])
            .expect("the declared defaults parse")
            .options
    }
}

/// Where the hub listens and how it stops.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Serving")]
pub struct ServerOptions {
    /// Address to listen on; port 0 picks a free port (the ready line says which).
    #[arg(long, default_value = "127.0.0.1:50051", value_parser = parse_listen_addr)]
    pub listen: SocketAddr,
    /// Also serve the gRPC health service alone, in plaintext, on this address (e.g.
    /// 0.0.0.0:50052 for the kubelet's gRPC probes, which cannot speak TLS). Nothing else
    /// is served there.
    #[arg(long, value_name = "ADDR", value_parser = parse_listen_addr)]
    pub health_listen: Option<SocketAddr>,
    /// How long to wait for open streams to end on SIGINT/SIGTERM (e.g. 5s, 500ms; bare
    /// seconds work too).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

/// Where records are kept, for how long, and what one query may cost.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Store")]
pub struct StoreOptions {
    /// Where events are stored: a SQLite database file (":memory:" keeps everything in
    /// memory), or a PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DATABASE (add
    /// ?sslmode=require for TLS, &sslrootcert=FILE for its CA), which any number of hubs
    /// can share as replicas. A file's directory must exist, except the state dir, which
    /// the hub creates (0700): /var/lib/tapper-hub as root, else
    /// $XDG_STATE_HOME/tapper-hub (~/.local/state/tapper-hub).
    #[arg(long, default_value_t = super::state_dir::default_db())]
    pub db: String,
    /// Drop events and loss records the hub received longer ago than this (e.g. 30m, 24h,
    /// 7d). Default: keep.
    #[arg(long, value_parser = parse_duration)]
    pub retention_age: Option<Duration>,
    /// Keep at most this many events, loss records and warnings, oldest first. Default: no
    /// limit.
    #[arg(long)]
    pub retention_rows: Option<u64>,
    /// How often retention runs.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub retention_interval: Duration,
    /// Forget tapper instances with no stream that sent nothing for this long (their
    /// events stay, under retention); checked every --retention-interval.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub instance_expiry: Duration,
    /// Longest a query (stats, replay page, tapper list) may run before it is stopped with
    /// RESOURCE_EXHAUSTED; e.g. 5s, 500ms.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub query_timeout: Duration,
    /// Most stored events one GetStats may scan (counts served from the per-minute rollups
    /// of node and errno do not count); more is RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 1_000_000)]
    pub query_max_rows: u64,
}

/// How much each subscriber may queue, and how many there may be.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Subscribers")]
pub struct SubscriberOptions {
    /// Items queued per subscriber before it lags (then it gets a "lagged" notice).
    #[arg(long, default_value_t = 4096)]
    pub subscriber_queue: usize,
    /// Encoded bytes queued per subscriber before it lags, like --subscriber-queue (an
    /// event alone in the queue always fits).
    #[arg(long, default_value_t = DEFAULT_SUBSCRIBER_QUEUE_BYTES)]
    pub subscriber_queue_bytes: usize,
    /// A subscriber whose queue stays full this long is dropped (after a final "lagged"
    /// notice and RESOURCE_EXHAUSTED); e.g. 10s, 1m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub subscriber_stall_timeout: Duration,
    /// Subscribe streams open at once, at most; more are RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 1024)]
    pub max_subscribers: usize,
}

/// Caps and deadlines of client connections, and the largest request.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Connections")]
pub struct ConnectionOptions {
    /// Open connections at most; more are accepted and closed at once (and logged).
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// Open connections from one peer address (IPv6: one /64) at most; more are closed at
    /// once (and logged). Raise it when many tappers reach the hub through one NAT or proxy.
    #[arg(long, default_value_t = 64)]
    pub max_connections_per_peer: usize,
    /// A connection that made no authorized call this long after its handshake is closed
    /// (a call passes with a valid token and client certificate where those are required;
    /// health checks do not count); e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub auth_timeout: Duration,
    /// Concurrent gRPC streams per connection, at most.
    #[arg(long, default_value_t = 128)]
    pub max_streams_per_connection: u32,
    /// A new connection must finish its TLS handshake (with TLS) and send its first request
    /// bytes (the HTTP/2 preface, or an HTTP/1.1 request line) within this time, or is closed.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,
    /// Largest request message accepted, in bytes; bigger is INVALID_ARGUMENT.
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// Bytes that Report messages read and not yet committed hold decoded, across all
    /// streams, at most (a decoded event takes about ten times its encoded size); a stream
    /// reads on once its last message fits (the tappers' buffers absorb the wait). Bounds
    /// the hub's ingest memory, whatever the number of tappers.
    #[arg(long, default_value_t = DEFAULT_INGEST_QUEUE_BYTES)]
    pub ingest_queue_bytes: usize,
    /// HTTP/2 receive window of each stream, in bytes: what a client may send on one
    /// stream before the hub reads it. With --http2-connection-window it bounds what
    /// connections buffer unread (at most --max-connections × the connection window).
    #[arg(long, default_value_t = DEFAULT_HTTP2_STREAM_WINDOW)]
    pub http2_stream_window: u32,
    /// HTTP/2 receive window of each connection, all its streams together, in bytes. Raise
    /// both windows for tappers far away (a window must cover a link's bytes per round trip).
    #[arg(long, default_value_t = DEFAULT_HTTP2_CONNECTION_WINDOW)]
    pub http2_connection_window: u32,
}

/// Who may connect and call.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "TLS and tokens")]
pub struct SecurityOptions {
    /// Serve TLS with this certificate chain (PEM); reloaded when the file changes.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM); reloaded when the file changes.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM); a tapper may then report only as
    /// the node its certificate names (see --node-identity), and a certificate that names no
    /// node is refused.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Where a client certificate names its node: dns (its DNS SANs), cn (its common name),
    /// or uri-prefix=PREFIX (its URI SANs that start with PREFIX, the rest being the node,
    /// e.g. uri-prefix=spiffe://cluster/node/). Default: the DNS SANs, or else the common
    /// name.
    #[arg(
        long,
        value_name = "dns|cn|uri-prefix=PREFIX",
        requires = "tls_client_ca"
    )]
    pub node_identity: Option<NodeIdentity>,
    /// Require `authorization: Bearer TOKEN` on every call but health; one `ROLE TOKEN` per
    /// line, ROLE one of report, read, admin; at most 1 MiB. Reloaded when the file changes
    /// and two reads 100 ms apart agree (replace it by renaming a new file over it); streams
    /// whose token is gone end with UNAUTHENTICATED.
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// How often the TLS and tokens files are checked for changes; a client CA that no
    /// longer trusts a connection's certificate ends its streams and refuses its new calls.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub reload_interval: Duration,
    /// Allow a non-loopback --listen without TLS and tokens (warned about at start and
    /// every hour).
    #[arg(long)]
    pub insecure: bool,
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Metrics")]
pub struct MetricsOptions {
    /// Serve Prometheus metrics (OpenMetrics text) on http://ADDR/metrics, e.g.
    /// 127.0.0.1:9465; port 0 picks a free port (logged, and in the ready line). Off by
    /// default.
    #[arg(long, value_name = "ADDR", value_parser = parse_listen_addr)]
    pub metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub metrics_limits: metrics_http::ConnectionLimits,
    /// Add a `namespace` label (the pod's Kubernetes namespace, empty when none) to
    /// hub_socket_failures_total: series grow to nodes x errnos x namespaces.
    #[arg(long, requires = "metrics_listen")]
    pub metrics_namespace_label: bool,
}

/// Alert rules and where their alerts go.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Alerts")]
pub struct AlertOptions {
    /// Alert rules (TOML, `[[rule]]` tables, at most 1 MiB), evaluated on every batch the hub
    /// stores; see docs/hub.md for the format. A bad file stops the hub at start, naming rule
    /// and field.
    #[arg(long, value_name = "FILE")]
    pub alert_rules: Option<PathBuf>,
    /// Send firing and resolved alerts to this Alertmanager (its v2 API), e.g.
    /// http://127.0.0.1:9093; repeat for several.
    #[arg(long = "alertmanager", value_name = "URL", requires = "alert_rules")]
    pub alertmanagers: Vec<String>,
    /// How often a firing alert is sent again; it stays valid in Alertmanager for three
    /// times that, so the alerts of a hub that went away resolve on their own.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub alert_resend_interval: Duration,
    /// Groups each alert rule keeps apart (unless the rule sets its own max_groups); what
    /// would open more is counted together in one group whose labels read
    /// "(over max_groups)", and counted in hub_alert_groups_capped_total{rule}.
    #[arg(long, default_value_t = 1000)]
    pub alert_max_groups: usize,
}

/// The page and the HTTP/JSON API, served on the `--listen` address next to gRPC.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Web")]
pub struct WebOptions {
    /// Serve neither the page nor the HTTP API (/api/v1): gRPC only on --listen.
    #[arg(long)]
    pub no_web: bool,
    /// Serve the page and the HTTP API under this path, e.g. /tapper behind an ingress
    /// (then /tapper/ and /tapper/api/v1/...); must start with /.
    #[arg(long, default_value = "/", value_name = "PATH")]
    pub web_base_path: String,
}

impl From<Options> for Config {
    fn from(o: Options) -> Self {
        let Options {
            server,
            store,
            subscribers,
            connections,
            security,
            metrics,
            alerts,
            web,
        } = o;
        Config {
            listen: server.listen,
            db: store.db,
            retention: Retention {
                max_age: store.retention_age,
                max_rows: store.retention_rows,
                interval: store.retention_interval,
                instance_expiry: store.instance_expiry,
            },
            query_budget: QueryBudget {
                timeout: store.query_timeout,
                max_scan_rows: store.query_max_rows,
            },
            subscriber_queue: subscribers.subscriber_queue,
            subscriber_queue_bytes: subscribers.subscriber_queue_bytes,
            subscriber_stall_timeout: subscribers.subscriber_stall_timeout,
            max_subscribers: subscribers.max_subscribers,
            max_connections: connections.max_connections,
            max_connections_per_peer: connections.max_connections_per_peer,
            auth_timeout: connections.auth_timeout,
            max_streams_per_connection: connections.max_streams_per_connection,
            handshake_timeout: connections.handshake_timeout,
            max_message_bytes: connections.max_message_bytes,
            ingest_queue_bytes: connections.ingest_queue_bytes,
            http2_stream_window: connections.http2_stream_window,
            http2_connection_window: connections.http2_connection_window,
            shutdown_grace: server.shutdown_grace,
            tls: security
                .tls_cert
                .zip(security.tls_key)
                .map(|(cert, key)| TlsFiles {
                    cert,
                    key,
                    client_ca: security.tls_client_ca,
                }),
            node_identity: security.node_identity.unwrap_or_default(),
            tokens: security.tokens,
            reload_interval: security.reload_interval,
            insecure: security.insecure,
            health_listen: server.health_listen,
            metrics_listen: metrics.metrics_listen,
            metrics_limits: metrics.metrics_limits,
            metrics_namespace_label: metrics.metrics_namespace_label,
            alert_rules: alerts.alert_rules,
            alertmanagers: alerts.alertmanagers,
            alert_resend_interval: alerts.alert_resend_interval,
            alert_max_groups: alerts.alert_max_groups,
            web: !web.no_web,
            web_base_path: web.web_base_path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_fill_their_group_and_the_rest_keep_the_defaults() {
        let parsed = Defaults::try_parse_from([
            "hub",
            "--retention-rows",
            "5",
            "--max-message-bytes",
            "1000",
            "--shutdown-grace",
            "2",
        ])
        .unwrap()
        .options;
        let config = Config::from(parsed);
        assert_eq!(config.retention.max_rows, Some(5));
        assert_eq!(config.max_message_bytes, 1000);
        assert_eq!(config.shutdown_grace, Duration::from_secs(2));
        assert_eq!(config.subscriber_queue, 4096);
        assert_eq!(
            config.retention.instance_expiry,
            Duration::from_secs(7 * 86_400)
        );
    }

    #[test]
    fn durations_take_units_and_listen_addresses_take_host_names() {
        let parsed = Defaults::try_parse_from([
            "hub",
            "--shutdown-grace",
            "1500ms",
            "--listen",
            "localhost:0",
        ])
        .unwrap()
        .options;
        let config = Config::from(parsed);
        assert_eq!(config.shutdown_grace, Duration::from_millis(1500));
        assert!(config.listen.ip().is_loopback());
    }

    #[test]
    fn the_help_is_grouped_under_headings() {
        let help = <Defaults as clap::CommandFactory>::command()
            .render_help()
            .to_string();
        for heading in [
            "Serving:",
            "Store:",
            "Subscribers:",
            "Connections:",
            "TLS and tokens:",
            "Metrics:",
            "Alerts:",
            "Web:",
        ] {
            assert!(help.contains(heading), "{heading} missing in:\n{help}");
        }
        let store = help.find("Store:").unwrap();
        let db = help.find("--db").unwrap();
        let alerts = help.find("Alerts:").unwrap();
        let alertmanager = help.find("--alertmanager").unwrap();
        assert!(store < db && alerts < alertmanager, "{help}");
    }
}
