//! `hub`: parses the flags (and a config file) into a [`hub::Config`], starts the service, prints the ready
//! line and serves until SIGINT or SIGTERM.

use std::{io::Write, net::SocketAddr};

use anyhow::Context;
use clap::{CommandFactory, Parser, error::ErrorKind};
use hub::{Config, Hub, Options};

/// Central hub for tapper agents: stores failed socket() events from many nodes and serves
/// live subscriptions, stats and the tapper list over gRPC (with reflection and health).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Each -v logs one level more than the default, info (-v debug, -vv trace); RUST_LOG
    /// overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// The service's options, under a heading per concern (after `verbose`, which keeps the
    /// general heading).
    #[command(flatten)]
    options: Options,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // One line: what failed and why, each cause once.
            eprintln!("hub: error: {}", hub::with_causes(err.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let args = cli_config::parse_with_config_file::<Args>();
    tapper_logging::init(tapper_logging::LevelFilter::INFO, args.verbose);
    let config = Config::from(args.options);
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
