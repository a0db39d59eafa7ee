//! `hub`: parses the flags into a [`hub::Config`], starts the service, prints the ready
//! line and serves until SIGINT or SIGTERM.

use std::{io::Write, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{CommandFactory, Parser, error::ErrorKind};
use hub::{Config, Hub, NodeIdentity, QueryBudget, Retention, TlsFiles, parse_duration};

/// Central hub for tapper agents: stores failed socket() events from many nodes and serves
/// live subscriptions, stats and the tapper list over gRPC (with reflection and health).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port (the ready line says which).
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Where events are stored: a SQLite database file (":memory:" keeps everything in
    /// memory), or a PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DATABASE (add
    /// ?sslmode=require for TLS, &sslrootcert=FILE for its CA), which any number of hubs
    /// can share as replicas.
    #[arg(long, default_value = "hub.db")]
    db: String,
    /// Drop events and loss records the hub received longer ago than this (e.g. 30m, 24h,
    /// 7d). Default: keep.
    #[arg(long, value_parser = parse_duration)]
    retention_age: Option<Duration>,
    /// Keep at most this many events, loss records and warnings, oldest first. Default: no
    /// limit.
    #[arg(long)]
    retention_rows: Option<u64>,
    /// How often retention runs.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    retention_interval: Duration,
    /// Forget tapper instances with no stream that sent nothing for this long (their
    /// events stay, under retention); checked every --retention-interval.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    instance_expiry: Duration,
    /// Longest a query (stats, replay page, tapper list) may run before it is stopped with
    /// RESOURCE_EXHAUSTED; e.g. 5s, 500ms.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    query_timeout: Duration,
    /// Most stored events one GetStats may scan (counts served from the per-minute rollups
    /// of node and errno do not count); more is RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 1_000_000)]
    query_max_rows: u64,
    /// Items queued per subscriber before it lags (then it gets a "lagged" notice).
    #[arg(long, default_value_t = 4096)]
    subscriber_queue: usize,
    /// Encoded bytes queued per subscriber before it lags, like --subscriber-queue (an
    /// event alone in the queue always fits).
    #[arg(long, default_value_t = hub::DEFAULT_SUBSCRIBER_QUEUE_BYTES)]
    subscriber_queue_bytes: usize,
    /// A subscriber whose queue stays full this long is dropped (after a final "lagged"
    /// notice and RESOURCE_EXHAUSTED); e.g. 10s, 1m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    subscriber_stall_timeout: Duration,
    /// Subscribe streams open at once, at most; more are RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 1024)]
    max_subscribers: usize,
    /// Open connections at most; more are accepted and closed at once (and logged).
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
    /// Open connections from one peer address (IPv6: one /64) at most; more are closed at
    /// once (and logged). Raise it when many tappers reach the hub through one NAT or proxy.
    #[arg(long, default_value_t = 64)]
    max_connections_per_peer: usize,
    /// A connection that made no authorized call this long after its handshake is closed
    /// (a call passes with a valid token and client certificate where those are required;
    /// health checks do not count); e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    auth_timeout: Duration,
    /// Concurrent gRPC streams per connection, at most.
    #[arg(long, default_value_t = 128)]
    max_streams_per_connection: u32,
    /// A new connection must send the HTTP/2 preface within this time or is closed.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    handshake_timeout: Duration,
    /// Largest request message accepted, in bytes; bigger is INVALID_ARGUMENT.
    #[arg(long, default_value_t = hub::DEFAULT_MAX_MESSAGE_BYTES)]
    max_message_bytes: usize,
    /// Seconds to wait for open streams to end on SIGINT/SIGTERM.
    #[arg(long, default_value_t = 5)]
    shutdown_grace: u64,
    /// Serve TLS with this certificate chain (PEM); reloaded when the file changes.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM); reloaded when the file changes.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM); a tapper may then report only as
    /// the node its certificate names (see --node-identity), and a certificate that names no
    /// node is refused.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Where a client certificate names its node: dns (its DNS SANs), cn (its common name),
    /// or uri-prefix=PREFIX (its URI SANs that start with PREFIX, the rest being the node,
    /// e.g. uri-prefix=spiffe://cluster/node/). Default: the DNS SANs, or else the common
    /// name.
    #[arg(
        long,
        value_name = "dns|cn|uri-prefix=PREFIX",
        requires = "tls_client_ca"
    )]
    node_identity: Option<NodeIdentity>,
    /// Require `authorization: Bearer TOKEN` on every call but health; one `ROLE TOKEN` per
    /// line, ROLE one of report, read, admin; at most 1 MiB. Reloaded when the file changes
    /// and two reads 100 ms apart agree (replace it by renaming a new file over it); streams
    /// whose token is gone end with UNAUTHENTICATED.
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// How often the TLS and tokens files are checked for changes; a client CA that no
    /// longer trusts a connection's certificate ends its streams and refuses its new calls.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    reload_interval: Duration,
    /// Allow a non-loopback --listen without TLS and tokens (warned about at start and
    /// every hour).
    #[arg(long)]
    insecure: bool,
    /// Also serve the gRPC health service alone, in plaintext, on this address (e.g.
    /// 0.0.0.0:50052 for the kubelet's gRPC probes, which cannot speak TLS). Nothing else
    /// is served there.
    #[arg(long, value_name = "ADDR")]
    health_listen: Option<SocketAddr>,
    /// Serve Prometheus metrics (OpenMetrics text) on http://ADDR/metrics, e.g.
    /// 127.0.0.1:9465; port 0 picks a free port (logged, and in the ready line). Off by
    /// default.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    metrics_limits: metrics_http::ConnectionLimits,
    /// Add a `namespace` label (the pod's Kubernetes namespace, empty when none) to
    /// hub_socket_failures_total: series grow to nodes x errnos x namespaces.
    #[arg(long, requires = "metrics_listen")]
    metrics_namespace_label: bool,
    /// Alert rules (TOML, `[[rule]]` tables, at most 1 MiB), evaluated on every batch the hub
    /// stores; see the README for the format. A bad file stops the hub at start, naming rule
    /// and field.
    #[arg(long, value_name = "FILE")]
    alert_rules: Option<PathBuf>,
    /// Send firing and resolved alerts to this Alertmanager (its v2 API), e.g.
    /// http://127.0.0.1:9093; repeat for several.
    #[arg(long = "alertmanager", value_name = "URL", requires = "alert_rules")]
    alertmanagers: Vec<String>,
    /// How often a firing alert is sent again; it stays valid in Alertmanager for three
    /// times that, so the alerts of a hub that went away resolve on their own.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    alert_resend_interval: Duration,
    /// Groups each alert rule keeps apart (unless the rule sets its own max_groups); what
    /// would open more is counted together in one group whose labels read
    /// "(over max_groups)", and counted in hub_alert_groups_capped_total{rule}.
    #[arg(long, default_value_t = 1000)]
    alert_max_groups: usize,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

impl Args {
    fn config(self) -> Config {
        Config {
            listen: self.listen,
            db: self.db,
            retention: Retention {
                max_age: self.retention_age,
                max_rows: self.retention_rows,
                interval: self.retention_interval,
                instance_expiry: self.instance_expiry,
            },
            query_budget: QueryBudget {
                timeout: self.query_timeout,
                max_scan_rows: self.query_max_rows,
            },
            subscriber_queue: self.subscriber_queue,
            subscriber_queue_bytes: self.subscriber_queue_bytes,
            subscriber_stall_timeout: self.subscriber_stall_timeout,
            max_subscribers: self.max_subscribers,
            max_connections: self.max_connections,
            max_connections_per_peer: self.max_connections_per_peer,
            auth_timeout: self.auth_timeout,
            max_streams_per_connection: self.max_streams_per_connection,
            handshake_timeout: self.handshake_timeout,
            max_message_bytes: self.max_message_bytes,
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
            tls: self.tls_cert.zip(self.tls_key).map(|(cert, key)| TlsFiles {
                cert,
                key,
                client_ca: self.tls_client_ca,
            }),
            node_identity: self.node_identity.unwrap_or_default(),
            tokens: self.tokens,
            reload_interval: self.reload_interval,
            insecure: self.insecure,
            health_listen: self.health_listen,
            metrics_listen: self.metrics_listen,
            metrics_limits: self.metrics_limits,
            metrics_namespace_label: self.metrics_namespace_label,
            alert_rules: self.alert_rules,
            alertmanagers: self.alertmanagers,
            alert_resend_interval: self.alert_resend_interval,
            alert_max_groups: self.alert_max_groups,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tapper_logging::init(tapper_logging::LevelFilter::INFO, args.verbose);
    let config = args.config();
    if let Err(err) = config.validate() {
        Args::command()
            .error(ErrorKind::ValueValidation, format!("--{err}"))
            .exit();
    }
    // Signal handlers first: from the ready line on, SIGINT/SIGTERM mean a clean stop.
    let stop = stop_signal()?;
    let hub = Hub::bind(config).await?;
    print_ready(hub.local_addr(), hub.health_addr(), hub.metrics_addr())?;
    hub.serve_until(stop).await?;
    Ok(())
}

/// The machine-readable ready signal: one JSON line on stderr, written whole; it names the
/// health-only address (`--health-listen`) and the metrics endpoint (`--metrics-listen`)
/// too when there are.
fn print_ready(
    listen: SocketAddr,
    health: Option<SocketAddr>,
    metrics: Option<SocketAddr>,
) -> std::io::Result<()> {
    let health = health.map_or_else(String::new, |a| format!(",\"health_listen\":\"{a}\""));
    let metrics = metrics.map_or_else(String::new, |m| format!(",\"metrics\":\"{m}\""));
    let line = format!("{{\"ready\":{{\"listen\":\"{listen}\"{health}{metrics}}}}}\n");
    std::io::stderr().lock().write_all(line.as_bytes())
}

/// Installs the SIGINT and SIGTERM handlers now; the future resolves on the first signal.
fn stop_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
