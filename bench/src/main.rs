//! `tapper-bench`: benchmark drivers for the tapper and the hub, and the writer of
//! BENCHMARKS.md. `scripts/bench.sh` runs them all.

mod attack;
mod cli;
mod cost;
mod e2e;
mod fanin;
mod hub;
mod machine;
mod overhead;
mod overhead_report;
mod procstat;
mod rate;
mod replicas;
mod replicas_report;
mod report;
mod stacks_report;
mod subscriber;
mod summary;
mod syscall;
mod tapper;
mod tls_cost;
mod transport;
mod warnings_report;

use std::{path::Path, time::Duration};

use anyhow::{Context, Result};
use clap::Parser;
use serde::Serialize;

use cli::{Cli, Cmd};

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Syscall { kind, iters } => {
            let ns = syscall::ns_per_call(kind, iters)?;
            println!(
                "{}",
                serde_json::json!({ "kind": kind, "iters": iters, "ns_per_call": ns })
            );
        }
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
                dump_latencies: a.dump_latencies,
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
        Cmd::Report { results, out, part } => {
            let text = match part {
                None => report::render(&results)?,
                Some(1) => {
                    let existing = std::fs::read_to_string(&out)
                        .with_context(|| format!("reading {} to refresh part 1", out.display()))?;
                    overhead_report::splice(&existing, &overhead_report::render(&results)?)?
                }
                Some(8) => {
                    let part = replicas_report::render(&results)?;
                    match std::fs::read_to_string(&out) {
                        Ok(existing) => replicas_report::splice(&existing, &part),
                        Err(_) => part,
                    }
                }
                Some(9) => {
                    // Appended to the report, or refreshed in place when it has part 9.
                    let existing = std::fs::read_to_string(&out).unwrap_or_default();
                    let part9 = stacks_report::render(&results)?;
                    report::splice(&existing, stacks_report::HEADING, &part9)
                        .unwrap_or_else(|| format!("{existing}\n{part9}"))
                }
                Some(10) => {
                    let existing = std::fs::read_to_string(&out).unwrap_or_default();
                    warnings_report::splice(&existing, &warnings_report::render(&results)?)
                }
                Some(n) => {
                    anyhow::bail!("--part {n}: only parts 1, 8, 9 and 10 can be refreshed alone")
                }
            };
            std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {}", out.display());
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
