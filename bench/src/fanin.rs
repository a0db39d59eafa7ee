//! Hub fan-in: N synthetic reporters × M events/s (the shared load loop) into one hub with
//! one subscriber, over each transport; hub CPU % and RSS, and events/s delivered.

use std::{path::PathBuf, time::Duration};

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::{
    cli, hub, load,
    machine::Machine,
    subscriber,
    transport::{Transport, Transports},
};

/// The options of `tapper-bench fanin`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Runs per figure.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// The hub binary.
    #[arg(long, default_value = "hub")]
    pub hub: PathBuf,
    /// Configurations as REPORTERSxRATE, e.g. 100x1000 (comma-separated).
    #[arg(long, value_delimiter = ',', default_values = ["10x1000", "100x1000"])]
    pub configs: Vec<cli::Offered>,
    /// Seconds per measurement.
    #[arg(long, value_parser = cli::secs, default_value = "5")]
    pub duration: Duration,
    /// The hub's per-subscriber queue.
    #[arg(long, default_value_t = 65_536)]
    pub subscriber_queue: u64,
    /// Each configuration is measured over each of these, one after the other.
    #[command(flatten)]
    pub transports: Transports,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub run: usize,
    /// Between the reporters, the subscriber and the hub.
    pub transport: Transport,
    #[serde(flatten)]
    pub load: load::Measured,
    pub hub_cpu_percent: f64,
    pub hub_rss_kib: u64,
    pub hub_hwm_kib: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub machine: Machine,
    pub duration_secs: f64,
    pub subscriber_queue: u64,
    pub samples: Vec<Sample>,
}

pub async fn run(opts: &Options) -> Result<Outcome> {
    opts.transports.check()?;
    let mut machine = Machine::now();
    let mut samples = Vec::new();
    for run in 0..opts.runs {
        for &cli::Offered {
            reporters: n,
            rate: m,
        } in &opts.configs
        {
            for &t in &opts.transports.list {
                eprintln!(
                    "[fanin] run {}/{}: {n} reporters x {m}/s ({t})",
                    run + 1,
                    opts.runs
                );
                samples.push(one(opts, run, (n, m), t).await?);
            }
        }
    }
    machine.finish();
    Ok(Outcome {
        machine,
        duration_secs: opts.duration.as_secs_f64(),
        subscriber_queue: opts.subscriber_queue,
        samples,
    })
}

async fn one(
    opts: &Options,
    run: usize,
    (n, m): (u64, u64),
    transport: Transport,
) -> Result<Sample> {
    let transports = &opts.transports;
    let hub = hub::start(
        &opts.hub,
        opts.subscriber_queue,
        &transports.hub_flags(transport),
    )?;
    let credentials = transports.credentials(transport);
    let sub = subscriber::start(&hub.url, credentials.clone(), None, 0).await?;
    let hubs = load::Hubs {
        urls: vec![hub.url.as_str()],
        pids: vec![hub.peer.pid()],
        credentials,
    };
    let load = load::Load {
        reporters: n,
        rate_each: m,
        duration: opts.duration,
        drain_quiet: Duration::from_secs(3),
    };
    let got = load::drive(&hubs, sub, &load).await?;
    hub.peer.stop(Duration::from_secs(10))?;
    Ok(Sample {
        run,
        transport,
        hub_cpu_percent: got.hubs_cpu_percent,
        hub_rss_kib: got.hubs_memory[0].rss_kib,
        hub_hwm_kib: got.hubs_memory[0].hwm_kib,
        load: got,
    })
}
