//! Command-line interface: one subcommand per benchmark driver, plus the load generators
//! and `replay`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::{overhead::Condition, transport::TransportArgs};

#[derive(Debug, Parser)]
#[command(
    name = "tapper-bench",
    version,
    about = "Benchmarks for the tapper and its hub."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Make failing socket() calls at a steady rate.
    Generate {
        /// Failures per second.
        #[arg(long)]
        rate: u64,
        /// Seconds.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
    },
    /// Syscall overhead per probe condition, side by side (needs root).
    Overhead(OverheadArgs),
    /// Tapper cost: CPU % and RSS at steady failure rates (needs root).
    Cost(CostArgs),
    /// End to end: throughput sweep, loss accounting and latency through tapper → hub →
    /// subscriber (needs root).
    E2e(E2eArgs),
    /// Hub fan-in: N synthetic reporters × M events/s into one hub with one subscriber.
    Fanin(FaninArgs),
    /// Hub replicas: N synthetic reporters spread over 1, 2, 3 hub replicas on PostgreSQL,
    /// beside one hub on SQLite, with one subscriber.
    Replicas(ReplicasArgs),
    /// Under attack: subscribe churn, GetStats load, stuck subscribers, silent
    /// connections — each on a fresh hub per measurement.
    Attack(AttackArgs),
}

#[derive(Debug, Args)]
pub struct Common {
    /// Runs per figure (min/median/max over them).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// The tapper binary.
    #[arg(long, default_value = "tapper")]
    pub tapper: PathBuf,
    /// Write the result here as JSON (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct OverheadArgs {
    #[command(flatten)]
    pub common: Common,
    /// What to measure; `none` (the baseline) is required.
    #[arg(long, value_enum, value_delimiter = ',',
          default_values_t = [Condition::None, Condition::TapperTracepoint, Condition::Bpftrace])]
    pub conditions: Vec<Condition>,
    /// socket() calls per timed loop.
    #[arg(long, default_value_t = 500_000)]
    pub iters: u64,
    /// The bpftrace binary.
    #[arg(long, default_value = "bpftrace")]
    pub bpftrace: PathBuf,
    /// Where this runs, for the report ("host", "vm").
    #[arg(long, default_value = "host")]
    pub env: String,
}

#[derive(Debug, Args)]
pub struct CostArgs {
    #[command(flatten)]
    pub common: Common,
    /// Steady failure rates per second (0 = idle).
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 1_000, 100_000])]
    pub rates: Vec<u64>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    #[arg(long, default_value = "tracepoint")]
    pub probe: String,
    #[arg(long, default_value = "json")]
    pub output: String,
    /// Extra tapper arguments, e.g. "--hub http://127.0.0.1:1234" (split on spaces).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub tapper_args: String,
    /// Label for this configuration in the report.
    #[arg(long, default_value = "local output")]
    pub variant: String,
}

#[derive(Debug, Args)]
pub struct E2eArgs {
    #[command(flatten)]
    pub common: Common,
    /// The hub binary.
    #[arg(long, default_value = "hub")]
    pub hub: PathBuf,
    /// Throughput sweep, failures/s.
    #[arg(long, value_delimiter = ',',
          default_values_t = [50_000u64, 100_000, 150_000, 200_000, 300_000, 400_000])]
    pub rates: Vec<u64>,
    /// Seconds per throughput measurement.
    #[arg(long, default_value_t = 3.0)]
    pub duration: f64,
    /// Failures/s for the latency measurement.
    #[arg(long, default_value_t = 1000)]
    pub latency_rate: u64,
    /// Seconds of the latency measurement.
    #[arg(long, default_value_t = 5.0)]
    pub latency_duration: f64,
    #[arg(long, default_value = "tracepoint")]
    pub probe: String,
    /// The hub's per-subscriber queue (`hub --subscriber-queue`).
    #[arg(long, default_value_t = 65_536)]
    pub subscriber_queue: u64,
    /// Extra tapper arguments, e.g. "--rate-limit 0" (split on spaces).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub tapper_args: String,
    #[command(flatten)]
    pub transport: TransportArgs,
}

#[derive(Debug, Args)]
pub struct FaninArgs {
    /// Runs per figure.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// The hub binary.
    #[arg(long, default_value = "hub")]
    pub hub: PathBuf,
    /// Configurations as REPORTERSxRATE, e.g. 100x1000 (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = ["10x1000".to_owned(), "100x1000".to_owned()])]
    pub configs: Vec<String>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// The hub's per-subscriber queue.
    #[arg(long, default_value_t = 65_536)]
    pub subscriber_queue: u64,
    #[command(flatten)]
    pub transport: TransportArgs,
    /// Write the result here as JSON (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReplicasArgs {
    /// Runs per figure.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// The hub binary.
    #[arg(long, default_value = "hub")]
    pub hub: PathBuf,
    /// A PostgreSQL URL whose user may create databases (one per measurement), e.g.
    /// postgres://hub:PASSWORD@127.0.0.1:5432/postgres.
    #[arg(long)]
    pub pg_url: String,
    /// Replica counts on PostgreSQL (comma-separated); one SQLite hub runs beside them.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2, 3])]
    pub replicas: Vec<usize>,
    /// Offered loads as REPORTERSxRATE (comma-separated), e.g. 20x250.
    #[arg(long, value_delimiter = ',', default_values_t = ["20x250".to_owned(), "20x500".to_owned(), "20x1000".to_owned()])]
    pub configs: Vec<String>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// The hubs' per-subscriber queue.
    #[arg(long, default_value_t = 65_536)]
    pub subscriber_queue: u64,
    /// Write the result here as JSON (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AttackArgs {
    /// Runs per figure.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// The hub binary.
    #[arg(long, default_value = "hub")]
    pub hub: PathBuf,
    /// Events a reporter sends when ingest rate is measured.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Subscribe-and-cancel calls with a never-matching filter.
    #[arg(long, default_value_t = 20_000)]
    pub churn: u64,
    /// Seconds the churn may take at most.
    #[arg(long, default_value_t = 120.0)]
    pub churn_limit: f64,
    /// Events stored before the ack latency is measured.
    #[arg(long, default_value_t = 500_000)]
    pub stored: u64,
    /// Seconds of timed batches per ack-latency measurement.
    #[arg(long, default_value_t = 10.0)]
    pub ack_window: f64,
    /// Clients looping GetStats (by all five keys) in the loaded condition.
    #[arg(long, default_value_t = 4)]
    pub getstats_clients: u64,
    /// Subscribers that never read.
    #[arg(long, default_value_t = 1000)]
    pub stuck: u64,
    /// The hub's --subscriber-stall-timeout, in seconds.
    #[arg(long, default_value_t = 1.0)]
    pub stall_timeout: f64,
    /// The hub's --subscriber-queue for the stuck subscribers (default: the hub's own).
    #[arg(long)]
    pub subscriber_queue: Option<u64>,
    /// Silent TCP connections that never send the HTTP/2 preface.
    #[arg(long, default_value_t = 2000)]
    pub silent: u64,
    /// The hub's --handshake-timeout, in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub handshake_timeout: f64,
    /// Write the result here as JSON (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}
