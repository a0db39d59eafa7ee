//! A hub subscriber for the benchmarks: counts the events, loss notices and lagged notices
//! it receives and, when asked, when each generated call's event arrived.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use hub_client::proto::v1::{SubscribeRequest, subscribe_request::Since, subscribe_response::Item};
use hub_client::{ClientConfig, Credentials};
use tokio::task::JoinHandle;

/// What the subscriber has seen so far.
#[derive(Debug, Default)]
pub struct Tally {
    /// Events received from any process (duplicates included).
    pub events: u64,
    /// Events of the tracked process (duplicates included).
    pub own_events: u64,
    /// Events whose index was seen before.
    pub duplicates: u64,
    /// Sum of `Loss.count` over loss notices, and per reason.
    pub lost: u64,
    pub lost_by_reason: BTreeMap<String, u64>,
    /// Sum of `Lagged.skipped`.
    pub lagged: u64,
    /// Arrival time per generated call index (the event's protocol argument), when
    /// tracking was asked for.
    pub arrivals: Vec<Option<Instant>>,
    /// When anything last arrived.
    pub last: Option<Instant>,
}

pub struct Subscriber {
    pub tally: Arc<Mutex<Tally>>,
    task: JoinHandle<Result<()>>,
}

/// Subscribes to everything the hub has (replayed from its first item, then live). Events
/// of process `own` (if given) are counted apart and, with `track > 0`, the arrival of each
/// is recorded by its call index (protocol) below `track`.
pub async fn start(
    url: &str,
    credentials: Credentials,
    own: Option<u32>,
    track: usize,
) -> Result<Subscriber> {
    let config = ClientConfig {
        credentials,
        ..Default::default()
    };
    let mut client = hub_client::connect_with(url, &config)
        .await
        .context("connecting the subscriber")?;
    let req = SubscribeRequest {
        since: Some(Since::SinceHubSeq(0)),
        follow: true,
        ..Default::default()
    };
    let mut stream = client
        .subscribe(req)
        .await
        .context("Subscribe")?
        .into_inner();
    let tally = Arc::new(Mutex::new(Tally {
        arrivals: vec![None; track],
        ..Default::default()
    }));
    let t = tally.clone();
    let task = tokio::spawn(async move {
        while let Some(msg) = stream.message().await? {
            let now = Instant::now();
            let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
            t.last = Some(now);
            match msg.item {
                Some(Item::Event(e)) => {
                    t.events += 1;
                    if own != Some(e.pid) {
                        continue;
                    }
                    t.own_events += 1;
                    let idx = e.protocol.unwrap_or(-1);
                    if idx >= 0 && (idx as usize) < t.arrivals.len() {
                        let slot = &mut t.arrivals[idx as usize];
                        if slot.is_some() {
                            t.duplicates += 1;
                        } else {
                            *slot = Some(now);
                        }
                    }
                }
                Some(Item::Loss(l)) => {
                    let loss = l.loss.unwrap_or_default();
                    t.lost += loss.count;
                    *t.lost_by_reason.entry(loss.reason).or_default() += loss.count;
                }
                Some(Item::Lagged(l)) => t.lagged += l.skipped,
                Some(Item::Warning(_)) | None => {}
            }
        }
        Ok(())
    });
    // The hub registers the subscription while answering; give it a moment to be live.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(Subscriber { tally, task })
}

impl Subscriber {
    /// Waits until `done(tally)` holds, or nothing arrived for `quiet`; returns whether
    /// `done` held.
    pub async fn wait(&self, quiet: Duration, done: impl Fn(&Tally) -> bool) -> bool {
        let start = Instant::now();
        loop {
            {
                let t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
                if done(&t) {
                    return true;
                }
                let last = t.last.unwrap_or(start).max(start);
                if last.elapsed() > quiet {
                    return false;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn stop(self) -> Arc<Mutex<Tally>> {
        self.task.abort();
        self.tally
    }
}
