//! Command-line interface: one subcommand per benchmark driver, whose options are the
//! driver's own `Options` (declared once, with their defaults), plus the load generator.

use std::{path::PathBuf, str::FromStr, time::Duration};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::{attack, cost, e2e, fanin, overhead, rate, replicas};

#[derive(Debug, Parser)]
#[command(
    name = "tapper-bench",
    version,
    about = "Benchmarks for the tapper and its hub."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
    /// Write the result here as JSON (default: stdout).
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Make failing socket() calls at a steady rate.
    Generate(rate::Options),
    /// Syscall overhead per probe condition, side by side (needs root).
    Overhead(overhead::Options),
    /// Tapper cost: CPU % and RSS at steady failure rates (needs root).
    Cost(cost::Options),
    /// End to end: throughput sweep, loss accounting and latency through tapper → hub →
    /// subscriber (needs root).
    E2e(e2e::Options),
    /// Hub fan-in: N synthetic reporters × M events/s into one hub with one subscriber.
    Fanin(fanin::Options),
    /// Hub replicas: N synthetic reporters spread over 1, 2, 3 hub replicas on PostgreSQL,
    /// beside one hub on SQLite, with one subscriber.
    Replicas(replicas::Options),
    /// Under attack: subscribe churn, GetStats load, stuck subscribers, silent
    /// connections — each on a fresh hub per measurement.
    Attack(attack::Options),
}

/// The options of every driver that starts a tapper.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Runs per figure (min/median/max over them).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// The tapper binary.
    #[arg(long, default_value = "tapper")]
    pub tapper: PathBuf,
}

/// A number of seconds (e.g. `2.5`) as a duration.
pub fn secs(text: &str) -> Result<Duration> {
    let secs: f64 = text
        .parse()
        .with_context(|| format!("`{text}` is not a number of seconds, e.g. 2.5"))?;
    Duration::try_from_secs_f64(secs)
        .with_context(|| format!("`{text}` is not a number of seconds, e.g. 2.5"))
}

/// An offered load, REPORTERSxRATE: that many reporters, each sending RATE events/s.
#[derive(Debug, Clone, Copy)]
pub struct Offered {
    pub reporters: u64,
    pub rate: u64,
}

impl FromStr for Offered {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || format!("`{text}` is not REPORTERSxRATE, e.g. 100x1000");
        let (n, m) = text.split_once('x').with_context(bad)?;
        Ok(Self {
            reporters: n.trim().parse().with_context(bad)?,
            rate: m.trim().parse().with_context(bad)?,
        })
    }
}

/// Extra arguments given as one string (e.g. "--rate-limit 0"), split on spaces.
#[derive(Debug, Clone, Default)]
pub struct Words(pub Vec<String>);

impl FromStr for Words {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.split_whitespace().map(String::from).collect()))
    }
}
