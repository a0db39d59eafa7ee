//! `tapper-bench`: benchmark drivers for the tapper and the hub, each writing its results
//! as JSON. `scripts/bench.sh` runs them all; `bench/python/report.py` writes BENCHMARKS.md.

mod attack;
mod cli;
mod cost;
mod e2e;
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

use std::{path::Path, time::Duration};

use anyhow::{Context, Result};
use clap::Parser;
use serde::Serialize;

use cli::{Cli, Cmd};

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Generate { rate, duration } => {
            let g = rate::generate(rate, Duration::from_secs_f64(duration), |_, _| {});
            println!(
                "{}",
                serde_json::json!({
                    "calls": g.calls,
                    "elapsed_secs": g.elapsed.as_secs_f64(),
                    "unexpected_ok": g.unexpected_ok,
                })
            );
        }
        Cmd::Overhead(a) => {
            let outcome = overhead::run(&overhead::Options {
                conditions: a.conditions,
                runs: a.common.runs,
                iters: a.iters,
                tapper: a.common.tapper,
                bpftrace: a.bpftrace,
                env: a.env,
            })?;
            write(a.common.out.as_deref(), &outcome)?;
        }
        Cmd::Cost(a) => {
            let outcome = cost::run(&cost::Options {
                rates: a.rates,
                runs: a.common.runs,
                duration: Duration::from_secs_f64(a.duration),
                tapper: a.common.tapper,
                probe: a.probe,
                output: a.output,
                extra: a.tapper_args.split_whitespace().map(String::from).collect(),
                variant: a.variant,
            })?;
            write(a.common.out.as_deref(), &outcome)?;
        }
        Cmd::E2e(a) => {
            let opts = e2e::Options {
                rates: a.rates,
                duration: Duration::from_secs_f64(a.duration),
                latency_rate: a.latency_rate,
                latency_duration: Duration::from_secs_f64(a.latency_duration),
                runs: a.common.runs,
                tapper: a.common.tapper,
                hub: a.hub,
                probe: a.probe,
                subscriber_queue: a.subscriber_queue,
                tapper_args: a.tapper_args.split_whitespace().map(String::from).collect(),
                transports: a.transport.validate()?,
            };
            let outcome = runtime()?.block_on(e2e::run(&opts))?;
            write(a.common.out.as_deref(), &outcome)?;
        }
        Cmd::Fanin(a) => {
            let configs = a
                .configs
                .iter()
                .map(|c| parse_config(c))
                .collect::<Result<Vec<_>>>()?;
            let opts = fanin::Options {
                configs,
                duration: Duration::from_secs_f64(a.duration),
                runs: a.runs,
                hub: a.hub,
                subscriber_queue: a.subscriber_queue,
                transports: a.transport.validate()?,
            };
            let outcome = runtime()?.block_on(fanin::run(&opts))?;
            write(a.out.as_deref(), &outcome)?;
        }
        Cmd::Replicas(a) => {
            let opts = replicas::Options {
                configs: a
                    .configs
                    .iter()
                    .map(|c| parse_config(c))
                    .collect::<Result<Vec<_>>>()?,
                replicas: a.replicas,
                duration: Duration::from_secs_f64(a.duration),
                runs: a.runs,
                hub: a.hub,
                pg_url: a.pg_url,
                subscriber_queue: a.subscriber_queue,
            };
            let outcome = runtime()?.block_on(replicas::run(&opts))?;
            write(a.out.as_deref(), &outcome)?;
        }
        Cmd::Attack(a) => {
            let secs = Duration::from_secs_f64;
            let opts = attack::Options {
                runs: a.runs,
                hub: a.hub,
                events: a.events,
                churn_calls: a.churn,
                time_limit: secs(a.churn_limit),
                stored: a.stored,
                ack_window: secs(a.ack_window),
                getstats_clients: a.getstats_clients,
                stuck: a.stuck,
                stall_timeout: secs(a.stall_timeout),
                subscriber_queue: a.subscriber_queue,
                silent: a.silent,
                handshake_timeout: secs(a.handshake_timeout),
            };
            let outcome = runtime()?.block_on(attack::run(&opts))?;
            write(a.out.as_deref(), &outcome)?;
        }
    }
    Ok(())
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

/// "100x1000" → (100 reporters, 1000 events/s each).
fn parse_config(text: &str) -> Result<(u64, u64)> {
    let (n, m) = text
        .split_once('x')
        .with_context(|| format!("`{text}` is not REPORTERSxRATE, e.g. 100x1000"))?;
    Ok((n.trim().parse()?, m.trim().parse()?))
}
