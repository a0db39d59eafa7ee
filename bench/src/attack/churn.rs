//! Subscribe-and-cancel churn: N `Subscribe` calls whose filter never matches, each
//! cancelled as soon as the hub answered; hub RSS and ingest rate before and after.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Result;
use hub_client::proto::v1::SubscribeRequest;
use serde::Serialize;
use tokio::task::JoinSet;

use super::{Options, tally_error};
use crate::{hub, procstat};

/// Subscribe calls in flight at once (all on one connection).
const CONCURRENCY: u64 = 8;
/// A glob no command name matches: the subscription never gets an item.
const NEVER: &str = "tapper-bench-never-*";

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub run: usize,
    /// Subscribe-and-cancel calls asked for and done within the time limit.
    pub calls: u64,
    pub completed: u64,
    pub limit_secs: f64,
    /// Calls the hub refused, by status code.
    pub refused: BTreeMap<String, u64>,
    pub churn_secs: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// Committed events/s of a fresh reporter before and after the churn.
    pub ingest_before: f64,
    pub ingest_after: f64,
}

pub async fn measure(opts: &Options, run: usize) -> Result<Sample> {
    let hub = hub::start_with(&opts.hub, &[])?;
    let pid = hub.peer.pid();
    let ingest_before = super::ingest_rate(&hub.url, "before", opts.events).await?;
    let rss_before_kib = procstat::memory(pid)?.rss_kib;
    let client = hub_client::connect(&hub.url).await?;
    let start = Instant::now();
    let deadline = start + opts.time_limit;
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (mut client, next, calls) = (client.clone(), next.clone(), opts.churn_calls);
        workers.spawn(async move {
            let (mut done, mut refused) = (0u64, BTreeMap::new());
            while next.fetch_add(1, Ordering::Relaxed) < calls && Instant::now() < deadline {
                let req = SubscribeRequest {
                    comm: NEVER.into(),
                    ..Default::default()
                };
                match client.subscribe(req).await {
                    // Dropping the stream cancels the call.
                    Ok(stream) => drop(stream),
                    Err(status) => tally_error(&mut refused, &status),
                }
                done += 1;
            }
            (done, refused)
        });
    }
    let (mut completed, mut refused) = (0, BTreeMap::new());
    for (done, r) in workers.join_all().await {
        completed += done;
        for (code, n) in r {
            *refused.entry(code).or_default() += n;
        }
    }
    let churn_secs = start.elapsed().as_secs_f64();
    drop(client);
    // Give the hub a moment to notice the last cancellations.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after_kib = procstat::memory(pid)?.rss_kib;
    let ingest_after = super::ingest_rate(&hub.url, "after", opts.events).await?;
    hub.peer.stop(Duration::from_secs(10))?;
    Ok(Sample {
        run,
        calls: opts.churn_calls,
        completed,
        limit_secs: opts.time_limit.as_secs_f64(),
        refused,
        churn_secs,
        rss_before_kib,
        rss_after_kib,
        ingest_before: ingest_before.per_sec(),
        ingest_after: ingest_after.per_sec(),
    })
}
