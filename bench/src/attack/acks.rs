//! Ack latency under GetStats load: with many events stored, one reporter times each
//! batch from send to Ack while 0 or N clients loop `GetStats` grouped by all five keys.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Result;
use hub_client::proto::v1::{GetStatsRequest, GroupBy};
use serde::Serialize;
use tokio::task::JoinSet;

use super::{Options, feed::Feed, tally_error};
use crate::{hub, percentile::percentile, procstat};

/// Events per timed batch, and the pause between batches.
const PROBE_BATCH: u64 = 100;
const PROBE_PAUSE: Duration = Duration::from_millis(20);
/// Nodes the stored events are spread over.
pub(super) const SEED_NODES: u64 = 4;

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub run: usize,
    pub getstats_clients: u64,
    pub stored: u64,
    /// How fast the stored events went in (committed events/s).
    pub seed_per_sec: f64,
    /// Timed batches, and their send → Ack latency.
    pub batches: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// GetStats answered during the window, their median time, and errors by code.
    pub answers: u64,
    pub answer_p50_ms: Option<f64>,
    pub errors: BTreeMap<String, u64>,
    pub hub_rss_kib: u64,
}

#[derive(Default)]
struct Queries {
    answer_ms: Vec<f64>,
    errors: BTreeMap<String, u64>,
}

pub async fn measure(opts: &Options, run: usize, clients: u64) -> Result<Sample> {
    let hub = hub::start_with(&opts.hub, &[])?;
    let mut seeded = 0.0;
    for n in 0..SEED_NODES {
        let mut feed = Feed::open(&hub.url, &format!("seed-{n}")).await?;
        seeded += feed.ingest(opts.stored / SEED_NODES, 5000, 4).await?.secs;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let queries = Arc::new(Mutex::new(Queries::default()));
    let mut loops = JoinSet::new();
    for _ in 0..clients {
        loops.spawn(getstats_loop(
            hub.url.clone(),
            stop.clone(),
            queries.clone(),
        ));
    }
    if clients > 0 {
        // Let the first queries reach the store.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut probe = Feed::open(&hub.url, "probe").await?;
    let mut lat = Vec::new();
    let start = Instant::now();
    while start.elapsed() < opts.ack_window {
        lat.push(probe.timed_batch(PROBE_BATCH).await?.as_secs_f64() * 1000.0);
        tokio::time::sleep(PROBE_PAUSE).await;
    }
    stop.store(true, Ordering::Relaxed);
    let hub_rss_kib = procstat::memory(hub.peer.pid())?.rss_kib;
    loops.abort_all();
    while loops.join_next().await.is_some() {}
    hub.peer.stop(Duration::from_secs(10))?;
    let q = std::mem::take(&mut *queries.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(Sample {
        run,
        getstats_clients: clients,
        stored: opts.stored / SEED_NODES * SEED_NODES,
        seed_per_sec: (opts.stored / SEED_NODES * SEED_NODES) as f64 / seeded.max(1e-9),
        batches: lat.len() as u64,
        p50_ms: percentile(&lat, 50.0),
        p99_ms: percentile(&lat, 99.0),
        max_ms: percentile(&lat, 100.0),
        answers: q.answer_ms.len() as u64,
        answer_p50_ms: (!q.answer_ms.is_empty()).then(|| percentile(&q.answer_ms, 50.0)),
        errors: q.errors,
        hub_rss_kib,
    })
}

/// One client on its own connection asking GetStats by all five keys until `stop`.
async fn getstats_loop(url: String, stop: Arc<AtomicBool>, queries: Arc<Mutex<Queries>>) {
    let mut client = match hub_client::connect(&url).await {
        Ok(c) => c,
        Err(e) => {
            let mut q = queries.lock().unwrap_or_else(|e| e.into_inner());
            *q.errors.entry(format!("connect: {e}")).or_default() += 1;
            return;
        }
    };
    let req = GetStatsRequest {
        group_by: [
            GroupBy::Node,
            GroupBy::Errno,
            GroupBy::Family,
            GroupBy::Comm,
            GroupBy::Cgroup,
        ]
        .map(|g| g as i32)
        .to_vec(),
        ..Default::default()
    };
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        let r = client.get_stats(req.clone()).await;
        let failed = {
            let mut q = queries.lock().unwrap_or_else(|e| e.into_inner());
            match &r {
                Ok(_) => q.answer_ms.push(start.elapsed().as_secs_f64() * 1000.0),
                Err(status) => tally_error(&mut q.errors, status),
            }
            r.is_err()
        };
        if failed {
            // A hub that refuses at once is not asked again in a busy loop.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
