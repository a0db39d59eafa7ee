//! Makes a planned mix of failing and successful socket() calls from several threads and
//! prints a JSON manifest of exactly what each thread did.

use std::{collections::BTreeMap, time::Duration};

use anyhow::anyhow;
use clap::Parser;
use tapper_e2e::{provoke::Failure, storm, workload};

#[derive(Parser)]
#[command(about = "Provoke known socket() failures and print a JSON manifest of them")]
struct Args {
    /// Threads per phase.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Failures per thread, e.g. EINVAL=10 (EAFNOSUPPORT, EINVAL, EPROTONOSUPPORT, EPERM,
    /// EMFILE, SECCOMP, URING_EAFNOSUPPORT, URING_EINVAL).
    #[arg(long = "fail", value_name = "ERRNO=N", value_parser = parse_failure)]
    failures: Vec<(Failure, u32)>,
    /// Successful socket() calls per thread.
    #[arg(long, default_value_t = 0)]
    successes: u32,
    /// Randomize: each thread draws its counts from 0..=N and shuffles its calls.
    #[arg(long)]
    seed: Option<u64>,
    /// Instead of a planned mix: every thread provokes the one --fail kind back to back
    /// for this many seconds (an error storm); the manifest counts the calls.
    #[arg(long, value_name = "SECS", conflicts_with_all = ["successes", "seed"])]
    storm: Option<f64>,
}

fn parse_failure(text: &str) -> Result<(Failure, u32), String> {
    let (name, count) = text
        .split_once('=')
        .ok_or("expected ERRNO=COUNT, e.g. EINVAL=10")?;
    let failure = Failure::parse(name).ok_or_else(|| {
        let names: Vec<_> = Failure::ALL.iter().map(|f| f.name()).collect();
        format!(
            "`{name}` cannot be provoked; use one of {}",
            names.join(", ")
        )
    })?;
    let count = count
        .parse()
        .map_err(|_| format!("`{count}` is not a count"))?;
    Ok((failure, count))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.threads == 0 {
        return Err(anyhow!("--threads must be at least 1"));
    }
    if let Some(secs) = args.storm {
        let [(failure, _)] = args.failures[..] else {
            return Err(anyhow!(
                "--storm needs exactly one --fail kind, e.g. --fail EAFNOSUPPORT=1"
            ));
        };
        let manifest = storm::run(args.threads, failure, Duration::from_secs_f64(secs))?;
        println!("{}", serde_json::to_string(&manifest)?);
        return Ok(());
    }
    let plan = workload::Plan {
        threads: args.threads,
        failures: args.failures.into_iter().collect::<BTreeMap<_, _>>(),
        successes: args.successes,
        seed: args.seed,
    };
    let manifest = workload::run(&plan)?;
    println!("{}", serde_json::to_string(&manifest)?);
    Ok(())
}
