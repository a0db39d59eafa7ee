//! `hub-client`: the operator CLI for a tapper hub (watch, stats, tappers), and `replay`,
//! a reporter of recorded or synthetic events for tests and benchmarks.

mod output;
mod replay;
mod stats;
mod tappers;
mod target;
mod watch;

use clap::{Parser, Subcommand};

use crate::target::Target;

/// Talk to a tapper hub: watch failures live, aggregate them, list tappers; replay events
/// into it as a tapper would.
#[derive(Debug, Parser)]
#[command(version, about, propagate_version = true)]
struct Cli {
    /// Each -v logs one level more than the default, warn (-v info, -vv debug, -vvv trace);
    /// RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(flatten)]
    connection: target::Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Stream failure events and warnings (live, and optionally replayed from the store).
    Watch(Box<watch::Args>),
    /// Count failures grouped by node / errno / family / comm / cgroup over a window.
    Stats(stats::Args),
    /// List the tappers the hub knows, connected or not.
    Tappers(tappers::Args),
    /// Report events to the hub as a tapper would, from a JSON-lines file (the tapper's
    /// `--output json`) or synthetic ones (--synthetic N), then print a JSON summary line
    /// (node, instance_id, sent, last_seq, acked_seq, dropped, kernel_drops, flushed,
    /// connects). Tests and benchmarks use it as a reporter.
    Replay(replay::Args),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hub-client: error: {}", describe(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error chain on one line, links that repeat the previous one skipped; gRPC
/// statuses as `CODE: message`. A recognized connection error is the first link (which
/// hub) and what to do, with the chain after it.
pub fn describe(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for link in e.chain() {
        let text = match link.downcast_ref::<tonic::Status>() {
            Some(s) => format!("{:?}: {}", s.code(), s.message()),
            None => link.to_string(),
        };
        if parts.last() != Some(&text) {
            parts.push(text);
        }
    }
    let chain = parts.join(": ");
    match hub_client::connection_hint(&chain) {
        Some(hint) => format!("{}: {hint}", parts[0]),
        None => chain,
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = cli_config::parse::<Cli>();
    tapper_logging::init(tapper_logging::LevelFilter::WARN, cli.verbose);
    let hub = cli.connection.into_target()?;
    match cli.command {
        Command::Watch(a) => watch::run(&hub, *a).await,
        Command::Stats(a) => stats::run(&hub, a).await,
        Command::Tappers(a) => tappers::run(&hub, a).await,
        Command::Replay(a) => replay::run(&hub.hubs, hub.config.credentials, a).await,
    }
}
