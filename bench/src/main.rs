//! `tapper-bench`: benchmark drivers for the tapper and the hub, each writing its results
//! as JSON. `scripts/bench.sh` runs them all; `bench/python/report.py` writes BENCHMARKS.md.

mod attack;
mod cli;
mod cost;
mod e2e;
mod event;
mod fanin;
mod hub;
mod load;
mod machine;
mod overhead;
mod percentile;
mod procstat;
mod rate;
mod replicas;
mod subscriber;
mod syscall;
mod tapper;
mod transport;

use std::path::Path;

use anyhow::{Context, Result};
use clap::Parser;
use serde::Serialize;

use cli::{Cli, Cmd};

fn main() -> Result<()> {
    let cli = Cli::parse();
    let out = cli.out.as_deref();
    match cli.command {
        Cmd::Generate(o) => write(out, &rate::run(&o)),
        Cmd::Overhead(o) => write(out, &overhead::run(&o)?),
        Cmd::Cost(o) => write(out, &cost::run(&o)?),
        Cmd::E2e(o) => write(out, &runtime()?.block_on(e2e::run(&o))?),
        Cmd::Fanin(o) => write(out, &runtime()?.block_on(fanin::run(&o))?),
        Cmd::Replicas(o) => write(out, &runtime()?.block_on(replicas::run(&o))?),
        Cmd::Attack(o) => write(out, &runtime()?.block_on(attack::run(&o))?),
    }
}

/// Writes a result as pretty JSON to `out`, or to stdout.
fn write(out: Option<&Path>, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    match out {
        Some(p) => {
            std::fs::write(p, text + "\n").with_context(|| format!("writing {}", p.display()))
        }
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
