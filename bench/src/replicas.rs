//! Hub replicas: ingest and fan-in of hub replicas on PostgreSQL beside one hub on SQLite, in one
//! run: N synthetic reporters spread round-robin over K replicas of one fresh database,
//! one subscriber on the first replica (it sees every replica's events), M events/s each
//! (the shared load loop). With a baseline hub, each PostgreSQL setup also runs on the build
//! before a change, alternating with the measured build.

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::{Context, Result, bail};
use clap::Args;
use hub_client::Credentials;
use serde::Serialize;
use tapper_testkit::Postgres;

use crate::{cli, hub, load, machine::Machine, subscriber};

/// The options of `tapper-bench replicas`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Runs per figure.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// The hub binary.
    #[arg(long, default_value = "hub")]
    pub hub: PathBuf,
    /// The hub binary of the build before a change: every PostgreSQL measurement is taken
    /// with it too, right after the same one with --hub.
    #[arg(long)]
    pub baseline_hub: Option<PathBuf>,
    /// A PostgreSQL URL whose user may create databases (one per measurement), e.g.
    /// postgres://hub:PASSWORD@127.0.0.1:5432/postgres (default: a throwaway server of the
    /// newest PostgreSQL installed, started for the run).
    #[arg(long)]
    pub pg_url: Option<String>,
    /// Replica counts on PostgreSQL (comma-separated); one SQLite hub runs beside them.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2, 3])]
    pub replicas: Vec<usize>,
    /// Offered loads as REPORTERSxRATE (comma-separated), e.g. 20x250.
    #[arg(long, value_delimiter = ',', default_values = ["20x250", "20x500", "20x1000"])]
    pub configs: Vec<cli::Offered>,
    /// Seconds per measurement.
    #[arg(long, value_parser = cli::secs, default_value = "5")]
    pub duration: Duration,
    /// The hubs' per-subscriber queue.
    #[arg(long, default_value_t = 65_536)]
    pub subscriber_queue: u64,
}

/// Where the measured hubs store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Which hub build a measurement ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Build {
    /// `--hub`.
    Measured,
    /// `--baseline-hub`.
    Baseline,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub run: usize,
    pub build: Build,
    pub engine: Engine,
    pub replicas: usize,
    #[serde(flatten)]
    pub load: load::Measured,
    /// The hubs' CPU together (100 % = one core).
    pub hubs_cpu_percent: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub machine: Machine,
    pub duration_secs: f64,
    pub samples: Vec<Sample>,
}

pub async fn run(opts: &Options) -> Result<Outcome> {
    // The given server, or a throwaway one (stopped and removed when dropped).
    let server;
    let pg_url = match &opts.pg_url {
        Some(url) => url.clone(),
        None => {
            server = Postgres::start()?;
            server.url("postgres")
        }
    };
    let mut machine = Machine::now();
    let mut samples = Vec::new();
    let mut setups: Vec<(Build, Engine, usize)> = vec![(Build::Measured, Engine::Sqlite, 1)];
    for &k in &opts.replicas {
        setups.push((Build::Measured, Engine::Postgres, k));
        if opts.baseline_hub.is_some() {
            setups.push((Build::Baseline, Engine::Postgres, k));
        }
    }
    for run in 0..opts.runs {
        for &cli::Offered {
            reporters: n,
            rate: m,
        } in &opts.configs
        {
            for &(build, engine, k) in &setups {
                eprintln!(
                    "[replicas] run {}/{}: {n} reporters x {m}/s on {k} {engine:?} hub(s), \
                     {build:?} build",
                    run + 1,
                    opts.runs
                );
                samples.push(one(opts, &pg_url, run, (n, m), (build, engine, k)).await?);
            }
        }
    }
    machine.finish();
    Ok(Outcome {
        machine,
        duration_secs: opts.duration.as_secs_f64(),
        samples,
    })
}

/// A fresh database on the server of `url` (same server and credentials); returns its URL.
fn fresh_database(url: &str, name: &str) -> Result<String> {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-d",
            url,
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .output()
        .context("running psql (apt-get install postgresql-client)")?;
    if !out.status.success() {
        bail!(
            "creating database {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (server, _) = url
        .rsplit_once('/')
        .context("the PostgreSQL URL names no database")?;
    Ok(format!("{server}/{name}"))
}

async fn one(
    opts: &Options,
    pg_url: &str,
    run: usize,
    (n, m): (u64, u64),
    (build, engine, k): (Build, Engine, usize),
) -> Result<Sample> {
    let hub_bin = match (build, &opts.baseline_hub) {
        (Build::Baseline, Some(baseline)) => baseline,
        _ => &opts.hub,
    };
    let dir = std::env::temp_dir().join(format!("bench-replicas-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = match engine {
        Engine::Sqlite => {
            let path = dir.join(format!("hub-{run}-{n}x{m}.db"));
            let _ = std::fs::remove_file(&path);
            path.to_string_lossy().into_owned()
        }
        Engine::Postgres => fresh_database(
            pg_url,
            &format!("bench_{}_{run}_{n}x{m}_{k}_{build:?}", std::process::id()).to_lowercase(),
        )?,
    };
    let flags = hub::load_flags(opts.subscriber_queue);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let hubs = (0..k)
        .map(|_| hub::start_on(hub_bin, &db, &flags))
        .collect::<Result<Vec<_>>>()?;
    let sub = subscriber::start(&hubs[0].url, Credentials::default(), None, 0).await?;
    let under_load = load::Hubs {
        urls: hubs.iter().map(|h| h.url.as_str()).collect(),
        pids: hubs.iter().map(|h| h.peer.pid()).collect(),
        credentials: Credentials::default(),
    };
    let load = load::Load {
        reporters: n,
        rate_each: m,
        duration: opts.duration,
        drain_quiet: Duration::from_secs(5),
    };
    let got = load::drive(&under_load, sub, &load).await?;
    for h in hubs {
        h.peer.stop(Duration::from_secs(10))?;
    }
    if engine == Engine::Sqlite {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(Sample {
        run,
        build,
        engine,
        replicas: k,
        hubs_cpu_percent: got.hubs_cpu_percent,
        load: got,
    })
}
