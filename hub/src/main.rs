//! `hub`: the central service. Tappers report failed socket() calls to it over gRPC;
//! operators subscribe, aggregate across nodes and list tappers (grpcurl works through
//! reflection).

mod clock;
mod closing;
mod error;
mod fanout;
mod filter;
mod limits;
mod listener;
mod report;
mod retention;
mod service;
mod state;
mod stats;
mod store;
mod subscribe;
mod tappers;
mod validate;

use std::{io::IsTerminal, net::SocketAddr, time::Duration};

use anyhow::Context;
use clap::Parser;
use tapper_proto::{FILE_DESCRIPTOR_SET, v1::hub_server::HubServer};
use tokio::{net::TcpListener, sync::watch};
use tracing::{info, warn};

use crate::{
    retention::Retention,
    service::HubService,
    state::Settings,
    store::{QueryBudget, Store},
};

/// Central hub for tapper agents: stores failed socket() events from many nodes and serves
/// live subscriptions, stats and the tapper list over gRPC (with reflection and health).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port (the log says which).
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// SQLite database file; ":memory:" keeps everything in memory.
    #[arg(long, default_value = "hub.db")]
    db: String,
    /// Drop events and loss records the hub received longer ago than this (e.g. 30m, 24h,
    /// 7d). Default: keep.
    #[arg(long, value_parser = retention::parse_duration)]
    retention_age: Option<Duration>,
    /// Keep at most this many events and loss records, oldest first. Default: no limit.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    retention_rows: Option<u64>,
    /// How often retention runs.
    #[arg(long, default_value = "10s", value_parser = retention::parse_duration)]
    retention_interval: Duration,
    /// Items queued per subscriber before it lags (then it gets a "lagged" notice).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    subscriber_queue: u64,
    /// A subscriber whose queue stays full this long is dropped (after a final "lagged"
    /// notice); e.g. 10s, 1m.
    #[arg(long, default_value = "10s", value_parser = retention::parse_duration)]
    subscriber_stall_timeout: Duration,
    /// Subscribe streams open at once, at most; more are RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_subscribers: u64,
    /// Open connections at most; more are accepted and closed at once (and logged).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: u64,
    /// Concurrent gRPC streams per connection, at most.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    max_streams_per_connection: u32,
    /// A new connection must send the HTTP/2 preface within this time or is closed.
    #[arg(long, default_value = "10s", value_parser = retention::parse_duration)]
    handshake_timeout: Duration,
    /// Largest request message accepted, in bytes; bigger is INVALID_ARGUMENT.
    #[arg(long, default_value_t = limits::DEFAULT_MAX_MESSAGE_BYTES)]
    max_message_bytes: usize,
    /// Seconds to wait for open streams to end on SIGINT/SIGTERM.
    #[arg(long, default_value_t = 5)]
    shutdown_grace: u64,
    /// Forget tapper instances with no stream that sent nothing for this long (their
    /// events stay, under retention); checked every --retention-interval.
    #[arg(long, default_value = "7d", value_parser = retention::parse_duration)]
    instance_expiry: Duration,
    /// Longest a reader query (GetStats, a replay page, a ListTappers page) may run before
    /// it is stopped with RESOURCE_EXHAUSTED; e.g. 5s, 500ms.
    #[arg(long, default_value = "5s", value_parser = retention::parse_duration)]
    query_timeout: Duration,
    /// Most stored events a GetStats may scan; over it is RESOURCE_EXHAUSTED. Counts by node
    /// and errno come from per-minute rollups and do not count.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    query_max_rows: u64,
}

/// How often the hub pings an idle connection, and how long it waits for the answer.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let budget = QueryBudget {
        timeout: args.query_timeout,
        max_scan_rows: args.query_max_rows,
    };
    let store =
        Store::open(&args.db, budget).with_context(|| format!("opening database {:?}", args.db))?;
    info!(db = %args.db, last_hub_seq = store.last_hub_seq(), "store open");

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state = state::HubState::new(
        store,
        Settings {
            subscriber_queue: args.subscriber_queue as usize,
            subscriber_stall_timeout: args.subscriber_stall_timeout,
            max_subscribers: args.max_subscribers as usize,
        },
        shutdown_rx,
    );
    tokio::spawn(retention::run(
        state.clone(),
        Retention {
            max_age: args.retention_age,
            max_rows: args.retention_rows,
            interval: args.retention_interval,
            instance_expiry: args.instance_expiry,
        },
    ));

    let hub = limits::hub_server(HubService::new(state), args.max_message_bytes);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<HubServer<HubService>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building reflection v1")?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("building reflection v1alpha")?;

    match listener::raise_nofile_limit() {
        Ok(limit) => info!(
            open_files_limit = limit,
            "open-files limit raised to the hard limit"
        ),
        Err(err) => warn!(error = %err, "cannot raise the open-files limit"),
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let local = listener.local_addr()?;
    info!("hub listening on {local}");

    let grace = Duration::from_secs(args.shutdown_grace);
    let signal = async move {
        wait_for_signal().await;
        info!("shutting down");
        let _ = shutdown_tx.send(true);
        health_reporter
            .set_not_serving::<HubServer<HubService>>()
            .await;
    };
    let server = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(args.max_streams_per_connection))
        // Pings find half-open connections (a peer that vanished without a FIN).
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(hub)
        .serve_with_incoming_shutdown(
            listener::incoming(
                listener,
                listener::ConnectionLimits {
                    max_connections: args.max_connections as usize,
                    handshake_timeout: args.handshake_timeout,
                },
            ),
            signal,
        );
    tokio::pin!(server);
    // Streams end on the shutdown signal; if a connection lingers, stop after the grace time.
    tokio::select! {
        r = &mut server => r.context("serving")?,
        _ = async { wait_for_signal().await; tokio::time::sleep(grace).await } => {
            warn!("connections still open after {grace:?}; exiting");
        }
    }
    info!("hub stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
