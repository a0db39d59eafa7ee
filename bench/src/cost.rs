//! Tapper cost: the tapper's own CPU % (of one core) and RSS while a steady rate of failing
//! calls runs, from /proc utime+stime deltas and VmRSS / VmHWM.

use std::{path::PathBuf, time::Duration};

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::{cli, hub, machine::Machine, procstat, rate, tapper};

/// The options of `tapper-bench cost`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    #[command(flatten)]
    pub common: cli::Common,
    /// Steady failure rates per second (0 = idle).
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 1_000, 100_000])]
    pub rates: Vec<u64>,
    /// Seconds per measurement.
    #[arg(long, value_parser = cli::secs, default_value = "10")]
    pub duration: Duration,
    /// Tapper `--probe`.
    #[arg(long, default_value = "tracepoint")]
    pub probe: String,
    /// Tapper `--output` (JSON goes to /dev/null).
    #[arg(long, default_value = "json")]
    pub output: String,
    /// Extra tapper arguments, e.g. "--rate-limit 0" (split on spaces).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub tapper_args: cli::Words,
    /// Ship to a hub: one fresh in-memory hub started from this binary, which every
    /// measured tapper reports to (`--hub URL --node-name bench`).
    #[arg(long, value_name = "HUB_BINARY")]
    pub hub: Option<PathBuf>,
    /// Label for this configuration in the report.
    #[arg(long, default_value = "local output")]
    pub variant: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub run: usize,
    pub rate: u64,
    pub calls: u64,
    pub achieved_rate: f64,
    pub cpu_percent: f64,
    /// The tapper's wake-ups (voluntary context switches, all threads) per second.
    pub wakeups_per_sec: f64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub failures: u64,
    pub events_received: u64,
    pub drops: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub variant: String,
    pub probe: String,
    pub output: String,
    pub duration_secs: f64,
    pub tick_secs: f64,
    pub machine: Machine,
    pub samples: Vec<Sample>,
}

pub fn run(opts: &Options) -> Result<Outcome> {
    let hub = (opts.hub.as_deref())
        .map(|bin| hub::start_with(bin, &["--retention-rows", "1000000"]))
        .transpose()?;
    let mut tapper_args = opts.tapper_args.0.clone();
    if let Some(hub) = &hub {
        tapper_args.extend(["--hub", &hub.url, "--node-name", "bench"].map(String::from));
    }
    let mut machine = Machine::now();
    let mut samples = Vec::new();
    for run in 0..opts.common.runs {
        for &rate in &opts.rates {
            eprintln!(
                "[cost {}] run {}/{}: {rate}/s",
                opts.variant,
                run + 1,
                opts.common.runs
            );
            samples.push(one(opts, &tapper_args, run, rate)?);
        }
    }
    machine.finish();
    if let Some(hub) = hub {
        hub.peer.stop(Duration::from_secs(10))?;
    }
    Ok(Outcome {
        variant: opts.variant.clone(),
        probe: opts.probe.clone(),
        output: opts.output.clone(),
        duration_secs: opts.duration.as_secs_f64(),
        tick_secs: procstat::tick_secs(),
        machine,
        samples,
    })
}

fn one(opts: &Options, tapper_args: &[String], run: usize, rate: u64) -> Result<Sample> {
    let peer = tapper::start_tapper(&opts.common.tapper, &opts.probe, &opts.output, tapper_args)?;
    let pid = peer.pid();
    // Let start-up work (BTF parsing, map creation) settle before measuring.
    std::thread::sleep(Duration::from_millis(500));
    let before = procstat::cpu(pid)?;
    let wakeups_before = procstat::wakeups(pid)?;
    let generated = if rate > 0 {
        rate::generate(rate, opts.duration, |_, _| {})
    } else {
        std::thread::sleep(opts.duration);
        rate::Generated {
            calls: 0,
            unexpected_ok: 0,
            elapsed: opts.duration,
        }
    };
    // The tapper drains what is left shortly after the last call: include that work.
    std::thread::sleep(Duration::from_millis(200));
    let after = procstat::cpu(pid)?;
    let wakeups = procstat::wakeups(pid)? - wakeups_before;
    let mem = procstat::memory(pid)?;
    let fin = tapper::stop_tapper(peer)?;
    Ok(Sample {
        run,
        rate,
        calls: generated.calls,
        achieved_rate: generated.calls as f64 / generated.elapsed.as_secs_f64(),
        cpu_percent: procstat::cpu_percent(before, after),
        wakeups_per_sec: wakeups as f64 / after.at.duration_since(before.at).as_secs_f64(),
        rss_kib: mem.rss_kib,
        hwm_kib: mem.hwm_kib,
        failures: fin.failures,
        events_received: fin.events_received,
        drops: fin.drops,
    })
}
