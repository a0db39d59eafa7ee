//! Hub fan-in: N synthetic reporters × M events/s (the shared load loop) into one hub with
//! one subscriber, over each transport; hub CPU % and RSS, and events/s delivered. With a
//! baseline hub binary, the baseline and this build alternate measurement by measurement.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Result;
use clap::{Args, ValueEnum};
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
    /// A hub binary of the build before a change: measured just before `--hub`, each
    /// configuration and run, so both builds see the same machine.
    #[arg(long)]
    pub baseline_hub: Option<PathBuf>,
    /// Where the hub stores: a fresh SQLite file per measurement (as deployed), or memory.
    #[arg(long, value_enum, default_value_t = Db::File)]
    pub db: Db,
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

/// The hub's store in a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Db {
    /// A fresh SQLite file in the temporary directory, removed afterwards.
    File,
    /// `:memory:`: every stored row stays in the hub's memory.
    Memory,
}

/// Which hub binary a sample measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Build {
    /// `--baseline-hub`.
    Before,
    /// `--hub`.
    After,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub run: usize,
    pub build: Build,
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
    pub db: Db,
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
                for (build, hub) in builds(opts) {
                    eprintln!(
                        "[fanin] run {}/{}: {n} reporters x {m}/s ({t}, {build:?} build)",
                        run + 1,
                        opts.runs
                    );
                    samples.push(one(opts, hub, (run, build), (n, m), t).await?);
                }
            }
        }
    }
    machine.finish();
    Ok(Outcome {
        machine,
        duration_secs: opts.duration.as_secs_f64(),
        subscriber_queue: opts.subscriber_queue,
        db: opts.db,
        samples,
    })
}

/// The hub binaries to measure, in the order they alternate.
fn builds(opts: &Options) -> Vec<(Build, &Path)> {
    let before = opts.baseline_hub.as_deref().map(|h| (Build::Before, h));
    before
        .into_iter()
        .chain([(Build::After, opts.hub.as_path())])
        .collect()
}

/// A fresh SQLite file for one measurement, removed (with its WAL) when dropped.
struct DbFile(PathBuf);

impl DbFile {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Self(std::env::temp_dir().join(format!(
            "tapper-bench-fanin-{}-{nanos}.db",
            std::process::id()
        )))
    }
}

impl Drop for DbFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn one(
    opts: &Options,
    hub: &Path,
    (run, build): (usize, Build),
    (n, m): (u64, u64),
    transport: Transport,
) -> Result<Sample> {
    let transports = &opts.transports;
    let file = (opts.db == Db::File).then(DbFile::new);
    let db = file
        .as_ref()
        .map_or(":memory:".into(), |f| f.0.display().to_string());
    let mut flags = hub::load_flags(opts.subscriber_queue);
    flags.extend(transports.hub_flags(transport));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let hub = hub::start_on(hub, &db, &flags)?;
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
    drop(file);
    Ok(Sample {
        run,
        build,
        transport,
        hub_cpu_percent: got.hubs_cpu_percent,
        hub_rss_kib: got.hubs_memory[0].rss_kib,
        hub_hwm_kib: got.hubs_memory[0].hwm_kib,
        load: got,
    })
}
