//! Part 4: N synthetic reporters (the hub-client `Reporter`, as the tapper uses it) × M
//! events/s into one hub with one subscriber; hub CPU % and RSS, and events/s delivered.

use std::{path::PathBuf, time::Duration};

use anyhow::Result;
use hub_client::{Reporter, ReporterConfig, proto::v1::Event};
use serde::Serialize;

use crate::{
    hub,
    machine::Machine,
    procstat, subscriber,
    transport::{Transport, Transports},
};

#[derive(Debug, Clone)]
pub struct Options {
    /// (reporters, events/s each).
    pub configs: Vec<(u64, u64)>,
    pub duration: Duration,
    pub runs: usize,
    pub hub: PathBuf,
    pub subscriber_queue: u64,
    /// Each configuration is measured over each of these, one after the other.
    pub transports: Transports,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub run: usize,
    pub reporters: u64,
    pub rate_each: u64,
    /// Between the reporters, the subscriber and the hub.
    #[serde(default)]
    pub transport: Transport,
    pub sent: u64,
    /// Events the subscriber received during the measured window, per second.
    pub delivered_per_sec: f64,
    /// After the drain: events received in total, loss-record counts, lagged skips.
    pub delivered_total: u64,
    pub lost: u64,
    pub lagged: u64,
    pub hub_cpu_percent: f64,
    pub hub_rss_kib: u64,
    pub hub_hwm_kib: u64,
    /// The benchmark process itself (reporters + subscriber) shares the machine.
    pub driver_cpu_percent: f64,
    /// From the last send until the subscriber had everything (or went quiet for 3 s).
    pub drain_secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub machine: Machine,
    pub duration_secs: f64,
    pub subscriber_queue: u64,
    pub samples: Vec<Sample>,
}

/// Events are sent in this many ticks per second.
pub(crate) const TICKS_PER_SEC: u64 = 100;

pub async fn run(opts: &Options) -> Result<Outcome> {
    let mut machine = Machine::now();
    let mut samples = Vec::new();
    for run in 0..opts.runs {
        for &(n, m) in &opts.configs {
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

pub(crate) fn now() -> hub_client::proto::Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hub_client::proto::timestamp_from_unix_nanos(d.as_nanos() as i64)
}

pub(crate) fn template(node: u64) -> Event {
    Event {
        pid: 1000 + node as u32,
        tid: 1000 + node as u32,
        uid: 1000,
        gid: 1000,
        comm: "worker".into(),
        exe: "/usr/bin/worker".into(),
        cmdline: "/usr/bin/worker --serve".into(),
        cgroup_id: 4242,
        family: Some(libc::AF_INET),
        family_name: "AF_INET".into(),
        r#type: Some(libc::SOCK_STREAM),
        type_name: "SOCK_STREAM".into(),
        protocol: Some(0),
        protocol_name: "IPPROTO_IP".into(),
        errno: libc::EMFILE,
        errno_name: "EMFILE".into(),
        message: "Too many open files".into(),
        duration_ns: Some(1500),
        probe: "tracepoint".into(),
        ..Default::default()
    }
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
    let sub = subscriber::start(&hub.url, transports.credentials(transport), None, 0).await?;
    let mut reporters = Vec::new();
    for i in 0..n {
        let mut cfg = ReporterConfig::new(hub.url.clone(), format!("node-{i:03}"));
        cfg.probe_mode = "tracepoint".into();
        cfg.credentials = transports.credentials(transport);
        reporters.push(Reporter::spawn(cfg)?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // connections up
    let per_tick = m / TICKS_PER_SEC;
    let ticks = (opts.duration.as_secs_f64() * TICKS_PER_SEC as f64) as u64;
    let hub_pid = hub.peer.pid();
    let me = std::process::id();
    let (hub0, me0) = (procstat::cpu(hub_pid)?, procstat::cpu(me)?);
    let got0 = sub.tally.lock().unwrap_or_else(|e| e.into_inner()).events;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / TICKS_PER_SEC));
    let mut sent = 0;
    for _ in 0..ticks {
        tick.tick().await;
        for (i, r) in reporters.iter().enumerate() {
            for _ in 0..per_tick {
                let mut e = template(i as u64);
                e.ts = Some(now());
                r.send_event(e);
            }
        }
        sent += per_tick * n;
    }
    let (hub1, me1) = (procstat::cpu(hub_pid)?, procstat::cpu(me)?);
    let got1 = sub.tally.lock().unwrap_or_else(|e| e.into_inner()).events;
    let mem = procstat::memory(hub_pid)?;
    let window = hub1.at.duration_since(hub0.at).as_secs_f64();
    let drain_start = std::time::Instant::now();
    sub.wait(Duration::from_secs(3), |t| {
        t.events + t.lost + t.lagged >= sent
    })
    .await;
    let drain_secs = drain_start.elapsed().as_secs_f64();
    let mut stopping = tokio::task::JoinSet::new();
    for r in reporters {
        stopping.spawn(r.shutdown(Duration::from_secs(5)));
    }
    stopping.join_all().await;
    let tally = sub.stop();
    hub.peer.stop(Duration::from_secs(10))?;
    let t = tally.lock().unwrap_or_else(|e| e.into_inner());
    Ok(Sample {
        run,
        reporters: n,
        rate_each: m,
        transport,
        sent,
        delivered_per_sec: (got1 - got0) as f64 / window,
        delivered_total: t.events,
        lost: t.lost,
        lagged: t.lagged,
        hub_cpu_percent: procstat::cpu_percent(hub0, hub1),
        hub_rss_kib: mem.rss_kib,
        hub_hwm_kib: mem.hwm_kib,
        driver_cpu_percent: procstat::cpu_percent(me0, me1),
        drain_secs,
    })
}
