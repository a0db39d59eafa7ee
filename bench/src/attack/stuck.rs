//! Stuck subscribers: ingest rate with 0 or S unfiltered subscribers that never read, how
//! many of them the hub dropped (their stream ends RESOURCE_EXHAUSTED) and hub RSS.

use std::{collections::BTreeMap, time::Duration};

use anyhow::Result;
use hub_client::proto::v1::SubscribeRequest;
use serde::Serialize;
use tokio::task::JoinSet;
use tonic::Code;

use super::{Options, tally_error};
use crate::{hub, procstat};

/// Subscribe streams per connection (the hub allows 128 by default).
const PER_CONNECTION: u64 = 100;
/// How long the streams are read at the end to learn how each ended.
const READ_OUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub run: usize,
    pub subscribers: u64,
    /// Subscribe calls the hub accepted, and refusals by status code.
    pub opened: u64,
    pub refused: BTreeMap<String, u64>,
    pub ingest_per_sec: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// How the streams ended when read afterwards: dropped by the hub (RESOURCE_EXHAUSTED),
    /// still open after the read-out, or ended some other way.
    pub evicted: u64,
    pub still_open: u64,
    pub other_end: u64,
}

pub async fn measure(opts: &Options, run: usize, subscribers: u64) -> Result<Sample> {
    let stall = format!("{}ms", opts.stall_timeout.as_millis());
    let mut flags = vec!["--subscriber-stall-timeout".to_owned(), stall];
    if let Some(q) = opts.subscriber_queue {
        flags.extend(["--subscriber-queue".to_owned(), q.to_string()]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let hub = hub::start_with(&opts.hub, &flags)?;
    let pid = hub.peer.pid();
    let (mut streams, mut refused) = (Vec::new(), BTreeMap::new());
    let mut client = None;
    for i in 0..subscribers {
        if i % PER_CONNECTION == 0 {
            client = Some(hub_client::connect(&hub.url).await?);
        }
        let c = client.as_mut().expect("connected above");
        match c.subscribe(SubscribeRequest::default()).await {
            Ok(s) => streams.push(s.into_inner()),
            Err(status) => tally_error(&mut refused, &status),
        }
    }
    // The hub registers each subscription while answering; let the last ones settle.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before_kib = procstat::memory(pid)?.rss_kib;
    let ingest = super::ingest_rate(&hub.url, "ingest", opts.events).await?;
    let rss_after_kib = procstat::memory(pid)?.rss_kib;
    let opened = streams.len() as u64;
    let mut reads = JoinSet::new();
    for mut s in streams {
        reads.spawn(async move {
            tokio::time::timeout(READ_OUT, async {
                loop {
                    match s.message().await {
                        Ok(Some(_)) => continue,
                        Ok(None) => return None,
                        Err(status) => return Some(status.code()),
                    }
                }
            })
            .await
        });
    }
    let (mut evicted, mut still_open, mut other_end) = (0, 0, 0);
    for end in reads.join_all().await {
        match end {
            Ok(Some(Code::ResourceExhausted)) => evicted += 1,
            Err(_) => still_open += 1,
            Ok(_) => other_end += 1,
        }
    }
    hub.peer.stop(Duration::from_secs(10))?;
    Ok(Sample {
        run,
        subscribers,
        opened,
        refused,
        ingest_per_sec: ingest.per_sec(),
        rss_before_kib,
        rss_after_kib,
        evicted,
        still_open,
        other_end,
    })
}
