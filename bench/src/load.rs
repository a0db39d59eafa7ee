//! The load loop fan-in and replicas share: N synthetic reporters (the hub-client `Reporter`,
//! as the tapper uses it) spread round-robin over one or more hubs, M realistic events/s each
//! in 100 ticks per second, measured by one subscriber and by the CPU of the hubs and of this
//! process over the window.

use std::time::{Duration, Instant};

use anyhow::Result;
use hub_client::{Credentials, Reporter, ReporterConfig};
use serde::Serialize;

use crate::{event, procstat, subscriber::Subscriber};

/// Events are sent in this many ticks per second.
const TICKS_PER_SEC: u64 = 100;
/// The family of every event the reporters send.
const INET: (i32, &str) = (libc::AF_INET, "AF_INET");

/// The hubs under load: their URLs (reporters go round-robin over them) and pids.
pub struct Hubs<'a> {
    pub urls: Vec<&'a str>,
    pub pids: Vec<u32>,
    pub credentials: Credentials,
}

/// N reporters × M events/s for `duration`; the subscriber waits for the rest until it has
/// been quiet for `drain_quiet`.
pub struct Load {
    pub reporters: u64,
    pub rate_each: u64,
    pub duration: Duration,
    pub drain_quiet: Duration,
}

/// What one load measured (the figures fan-in and replicas share in their samples).
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub reporters: u64,
    pub rate_each: u64,
    pub sent: u64,
    /// Events the subscriber received during the window, per second.
    pub delivered_per_sec: f64,
    /// After the drain: events received in total, loss-record counts, lagged skips.
    pub delivered_total: u64,
    pub lost: u64,
    pub lagged: u64,
    /// The hubs' CPU over the window, summed (100 = one core).
    #[serde(skip)]
    pub hubs_cpu_percent: f64,
    /// Each hub's memory at the end of the window.
    #[serde(skip)]
    pub hubs_memory: Vec<procstat::Memory>,
    /// This process (reporters + subscriber), which shares the machine with the hubs.
    pub driver_cpu_percent: f64,
    /// From the last send until the subscriber had everything (or went quiet).
    pub drain_secs: f64,
}

/// Runs `load` against `hubs`, measured by `sub`, and stops the reporters and `sub`.
pub async fn drive(hubs: &Hubs<'_>, sub: Subscriber, load: &Load) -> Result<Measured> {
    let n = load.reporters;
    let mut reporters = Vec::new();
    for i in 0..n {
        let url = hubs.urls[i as usize % hubs.urls.len()];
        let mut cfg = ReporterConfig::new(url, format!("node-{i:03}"));
        cfg.probe_mode = "tracepoint".into();
        cfg.credentials = hubs.credentials.clone();
        reporters.push(Reporter::spawn(cfg)?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // connections up
    let per_tick = load.rate_each / TICKS_PER_SEC;
    let ticks = (load.duration.as_secs_f64() * TICKS_PER_SEC as f64) as u64;
    let cpu = || -> Result<Vec<procstat::CpuSample>> {
        hubs.pids.iter().map(|&p| procstat::cpu(p)).collect()
    };
    let me = std::process::id();
    let (hubs0, me0) = (cpu()?, procstat::cpu(me)?);
    let delivered = || sub.tally.lock().unwrap_or_else(|e| e.into_inner()).events;
    let got0 = delivered();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / TICKS_PER_SEC));
    let mut sent = 0;
    for _ in 0..ticks {
        tick.tick().await;
        for (i, r) in reporters.iter().enumerate() {
            for _ in 0..per_tick {
                let pid = 1000 + i as u32;
                r.send_event(event::worker(
                    pid,
                    "worker".into(),
                    4242,
                    libc::EMFILE,
                    INET,
                ));
            }
        }
        sent += per_tick * n;
    }
    let (hubs1, me1) = (cpu()?, procstat::cpu(me)?);
    let got1 = delivered();
    let hubs_memory = hubs
        .pids
        .iter()
        .map(|&p| procstat::memory(p))
        .collect::<Result<Vec<_>>>()?;
    let window = me1.at.duration_since(me0.at).as_secs_f64();
    let drain_start = Instant::now();
    sub.wait(load.drain_quiet, |t| t.events + t.lost + t.lagged >= sent)
        .await;
    let drain_secs = drain_start.elapsed().as_secs_f64();
    let mut stopping = tokio::task::JoinSet::new();
    for r in reporters {
        stopping.spawn(r.shutdown(Duration::from_secs(5)));
    }
    stopping.join_all().await;
    let tally = sub.stop();
    let t = tally.lock().unwrap_or_else(|e| e.into_inner());
    Ok(Measured {
        reporters: n,
        rate_each: load.rate_each,
        sent,
        delivered_per_sec: (got1 - got0) as f64 / window,
        delivered_total: t.events,
        lost: t.lost,
        lagged: t.lagged,
        hubs_cpu_percent: hubs0
            .into_iter()
            .zip(hubs1)
            .map(|(a, b)| procstat::cpu_percent(a, b))
            .sum(),
        hubs_memory,
        driver_cpu_percent: procstat::cpu_percent(me0, me1),
        drain_secs,
    })
}
