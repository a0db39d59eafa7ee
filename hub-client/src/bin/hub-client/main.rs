//! `hub-client`: the operator CLI for a tapper hub (watch, stats, tappers).

mod output;
mod stats;
mod tappers;
mod watch;

use clap::{Parser, Subcommand};

/// Talk to a tapper hub: watch failures live, aggregate them, list tappers.
#[derive(Debug, Parser)]
#[command(version, about, propagate_version = true)]
struct Cli {
    /// Hub address, e.g. http://127.0.0.1:50051 (a bare host:port works too).
    #[arg(
        long,
        global = true,
        env = "HUB_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    hub: String,
    /// More logging (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Stream failure events (live, and optionally replayed from the hub's store).
    Watch(watch::Args),
    /// Count failures grouped by node / errno / family / comm / cgroup over a window.
    Stats(stats::Args),
    /// List the tappers the hub knows, connected or not.
    Tappers(tappers::Args),
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
/// statuses as `CODE: message`.
fn describe(e: &anyhow::Error) -> String {
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
    parts.join(": ")
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tapper_logging::init(tapper_logging::LevelFilter::WARN, cli.verbose);
    match cli.command {
        Command::Watch(a) => watch::run(&cli.hub, a).await,
        Command::Stats(a) => stats::run(&cli.hub, a).await,
        Command::Tappers(a) => tappers::run(&cli.hub, a).await,
    }
}
