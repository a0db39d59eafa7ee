//! End to end (throughput and latency): failing calls at a steady rate → tapper
//! (tracepoint, `--hub`) → hub → one subscriber. Counts what arrived, what loss records account for, and the latency
//! from each call's return to its event's arrival.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::{
    cli, hub,
    machine::Machine,
    rate, subscriber, tapper,
    transport::{Transport, Transports},
};

/// The options of `tapper-bench e2e`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    #[command(flatten)]
    pub common: cli::Common,
    /// The hub binary.
    #[arg(long, default_value = "hub")]
    pub hub: PathBuf,
    /// Throughput sweep, failures/s.
    #[arg(long, value_delimiter = ',',
          default_values_t = [50_000u64, 100_000, 150_000, 200_000, 300_000, 400_000])]
    pub rates: Vec<u64>,
    /// Seconds per throughput measurement.
    #[arg(long, value_parser = cli::secs, default_value = "3")]
    pub duration: Duration,
    /// Failures/s for the latency measurement.
    #[arg(long, default_value_t = 1000)]
    pub latency_rate: u64,
    /// Seconds of the latency measurement.
    #[arg(long, value_parser = cli::secs, default_value = "5")]
    pub latency_duration: Duration,
    /// Tapper `--probe`.
    #[arg(long, default_value = "tracepoint")]
    pub probe: String,
    /// The hub's per-subscriber queue (`hub --subscriber-queue`).
    #[arg(long, default_value_t = 65_536)]
    pub subscriber_queue: u64,
    /// Extra tapper arguments, e.g. "--rate-limit 0" (split on spaces).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub tapper_args: cli::Words,
    /// Each measurement is made over each of these, one after the other.
    #[command(flatten)]
    pub transports: Transports,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub run: usize,
    /// "throughput" or "latency".
    pub part: String,
    /// Between the tapper, the subscriber and the hub.
    #[serde(default)]
    pub transport: Transport,
    pub rate: u64,
    pub generated: u64,
    pub achieved_rate: f64,
    /// Distinct events of this process that reached the subscriber.
    pub delivered: u64,
    pub duplicates: u64,
    /// Sum of loss-record counts the subscriber received, and per reason.
    pub lost: u64,
    pub lost_by_reason: BTreeMap<String, u64>,
    /// Items the hub skipped for this subscriber (lagged notices).
    pub lagged: u64,
    /// generated − delivered − lost − lagged: what nothing accounts for. Loss records are
    /// per node, so failures of other processes dropped at the same time make it negative.
    pub unaccounted: i64,
    /// Events of any process that reached the subscriber (other processes on the node
    /// fail too).
    pub delivered_all: u64,
    /// Node level: kernel-counted failures − delivered_all − lost − lagged.
    pub node_unaccounted: i64,
    /// The tapper's own final counters (whole machine).
    pub tapper_failures: u64,
    pub tapper_drops: u64,
    /// Latency from the call's return to the event's arrival, µs.
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub machine: Machine,
    pub duration_secs: f64,
    pub latency_duration_secs: f64,
    pub probe: String,
    pub subscriber_queue: u64,
    pub samples: Vec<Sample>,
}

pub async fn run(opts: &Options) -> Result<Outcome> {
    opts.transports.check()?;
    let mut machine = Machine::now();
    let mut samples = Vec::new();
    for run in 0..opts.common.runs {
        for &t in &opts.transports.list {
            eprintln!(
                "[e2e] run {}/{}: latency at {}/s ({t})",
                run + 1,
                opts.common.runs,
                opts.latency_rate
            );
            let latency = Measure {
                part: "latency",
                transport: t,
                rate: opts.latency_rate,
                duration: opts.latency_duration,
            };
            samples.push(one(opts, run, latency).await?);
        }
        for &rate in &opts.rates {
            for &t in &opts.transports.list {
                eprintln!(
                    "[e2e] run {}/{}: throughput at {rate}/s ({t})",
                    run + 1,
                    opts.common.runs
                );
                let throughput = Measure {
                    part: "throughput",
                    transport: t,
                    rate,
                    duration: opts.duration,
                };
                samples.push(one(opts, run, throughput).await?);
            }
        }
    }
    machine.finish();
    Ok(Outcome {
        machine,
        duration_secs: opts.duration.as_secs_f64(),
        latency_duration_secs: opts.latency_duration.as_secs_f64(),
        probe: opts.probe.clone(),
        subscriber_queue: opts.subscriber_queue,
        samples,
    })
}

/// One measurement's conditions.
struct Measure {
    part: &'static str,
    transport: Transport,
    rate: u64,
    duration: Duration,
}

async fn one(opts: &Options, run: usize, m: Measure) -> Result<Sample> {
    let Measure {
        part,
        transport,
        rate,
        duration,
    } = m;
    let expected = (rate as f64 * duration.as_secs_f64()).round() as usize;
    let transports = &opts.transports;
    let hub = hub::start(
        &opts.hub,
        opts.subscriber_queue,
        &transports.hub_flags(transport),
    )?;
    let mut extra = vec![
        "--hub".to_owned(),
        hub.url.clone(),
        "--node-name".into(),
        "bench".into(),
    ];
    extra.extend(transports.tapper_flags(transport));
    extra.extend(opts.tapper_args.0.iter().cloned());
    let tapper = tapper::start_tapper(&opts.common.tapper, &opts.probe, "none", &extra)?;
    let sub = subscriber::start(
        &hub.url,
        transports.credentials(transport),
        Some(std::process::id()),
        expected,
    )
    .await?;
    // Give the tapper's reporter time to connect.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (calls, generated) = tokio::task::spawn_blocking(move || {
        let mut calls: Vec<Instant> = Vec::with_capacity(expected);
        let g = rate::generate(rate, duration, |_, at| calls.push(at));
        (calls, g)
    })
    .await?;
    let n = generated.calls;
    // Everything delivered, or wait for the tapper's final drain and loss records.
    sub.wait(Duration::from_secs(2), |t| t.own_events >= n)
        .await;
    let fin = tapper::stop_tapper(tapper)?;
    sub.wait(Duration::from_secs(3), |t| {
        t.events.saturating_sub(t.duplicates) + t.lost + t.lagged >= fin.failures
    })
    .await;
    let tally = sub.stop();
    hub.peer.stop(Duration::from_secs(10))?;

    let t = tally.lock().unwrap_or_else(|e| e.into_inner());
    let mut lat: Vec<f64> = calls
        .iter()
        .zip(&t.arrivals)
        .filter_map(|(c, a)| a.map(|a| a.saturating_duration_since(*c).as_secs_f64() * 1e6))
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        if lat.is_empty() {
            f64::NAN
        } else {
            lat[((lat.len() - 1) as f64 * p).round() as usize]
        }
    };
    let delivered = t.arrivals.iter().filter(|a| a.is_some()).count() as u64;
    Ok(Sample {
        run,
        part: part.into(),
        transport,
        rate,
        generated: n,
        achieved_rate: n as f64 / generated.elapsed.as_secs_f64(),
        delivered,
        duplicates: t.duplicates,
        lost: t.lost,
        lost_by_reason: t.lost_by_reason.clone(),
        lagged: t.lagged,
        unaccounted: n as i64 - delivered as i64 - t.lost as i64 - t.lagged as i64,
        delivered_all: t.events - t.duplicates,
        node_unaccounted: fin.failures as i64
            - (t.events - t.duplicates) as i64
            - t.lost as i64
            - t.lagged as i64,
        tapper_failures: fin.failures,
        tapper_drops: fin.drops,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        max_us: pct(1.0),
    })
}
