//! A purpose-built reporter for the attack part: one `Report` stream driven directly through
//! the generated `HubClient`, so that each batch's send → Ack time can be measured.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hub_client::HubChannel;
use hub_client::proto::v1::{
    Event, EventBatch, Hello, ReportRequest, ReportResponse, hub_client::HubClient,
    report_request::Msg, report_response,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::event;

/// No single ack is waited for longer than this (a stalled hub ends the measurement).
const ACK_TIMEOUT: Duration = Duration::from_secs(120);

/// errnos the generated events cycle through.
const ERRNOS: [i32; 4] = [
    libc::EAFNOSUPPORT,
    libc::EINVAL,
    libc::EPROTONOSUPPORT,
    libc::EACCES,
];
/// Address families the generated events cycle through.
const FAMILIES: [(i32, &str); 3] = [
    (libc::AF_INET, "AF_INET"),
    (libc::AF_INET6, "AF_INET6"),
    (libc::AF_NETLINK, "AF_NETLINK"),
];

/// Distinct (comm, cgroup, errno, family) groups among a node's generated events.
pub const GROUPS_PER_NODE: u64 = 1536;

/// One node's Report stream, with the seq numbers it sent and the hub acked.
pub struct Feed {
    _client: HubClient<HubChannel>,
    tx: mpsc::Sender<ReportRequest>,
    acks: Streaming<ReportResponse>,
    sent: u64,
    acked: u64,
}

/// Events committed and how long it took, from the first send to the last ack.
#[derive(Debug, Clone, Copy)]
pub struct Ingest {
    pub events: u64,
    pub secs: f64,
}

impl Ingest {
    pub fn per_sec(&self) -> f64 {
        self.events as f64 / self.secs.max(1e-9)
    }
}

impl Feed {
    /// Opens a Report stream as `node` (a fresh instance) and waits for the hub's first ack.
    pub async fn open(url: &str, node: &str) -> Result<Feed> {
        let mut client = hub_client::connect(url)
            .await
            .context("connecting a reporter")?;
        let (tx, rx) = mpsc::channel(16);
        let hello = Hello {
            node: node.into(),
            instance_id: hub_client::random_instance_id(),
            kernel_release: crate::machine::kernel_release(),
            probe_mode: "tracepoint".into(),
            agent_version: concat!("tapper-bench attack ", env!("CARGO_PKG_VERSION")).into(),
        };
        tx.send(ReportRequest {
            msg: Some(Msg::Hello(hello)),
        })
        .await?;
        let acks = client
            .report(ReceiverStream::new(rx))
            .await
            .context("Report")?
            .into_inner();
        let mut feed = Feed {
            _client: client,
            tx,
            acks,
            sent: 0,
            acked: 0,
        };
        feed.next_ack().await?;
        Ok(feed)
    }

    /// Sends `total` events in batches of `batch`, with at most `window` batches un-acked,
    /// and waits until all are acked.
    pub async fn ingest(&mut self, total: u64, batch: u64, window: u64) -> Result<Ingest> {
        let start = Instant::now();
        let end = self.sent + total;
        while self.acked < end {
            while self.sent < end && self.sent - self.acked < window * batch {
                self.send_batch(batch.min(end - self.sent)).await?;
            }
            self.next_ack().await?;
        }
        Ok(Ingest {
            events: total,
            secs: start.elapsed().as_secs_f64(),
        })
    }

    /// Sends one batch of `n` events and returns the time until the hub acked it.
    pub async fn timed_batch(&mut self, n: u64) -> Result<Duration> {
        let start = Instant::now();
        self.send_batch(n).await?;
        while self.acked < self.sent {
            self.next_ack().await?;
        }
        Ok(start.elapsed())
    }

    async fn send_batch(&mut self, n: u64) -> Result<()> {
        let events = (self.sent + 1..=self.sent + n).map(event).collect();
        self.tx
            .send(ReportRequest {
                msg: Some(Msg::Events(EventBatch { events })),
            })
            .await
            .context("the Report stream closed")?;
        self.sent += n;
        Ok(())
    }

    async fn next_ack(&mut self) -> Result<()> {
        let msg = tokio::time::timeout(ACK_TIMEOUT, self.acks.message())
            .await
            .with_context(|| format!("no ack within {ACK_TIMEOUT:?}"))?
            .context("the Report stream failed")?;
        match msg.and_then(|m| m.msg) {
            Some(report_response::Msg::Ack(a)) => {
                self.acked = self.acked.max(a.acked_seq);
                Ok(())
            }
            None => bail!("the hub ended the Report stream"),
        }
    }
}

/// Event number `seq` of a node: realistic fields, spread over [`GROUPS_PER_NODE`] GetStats
/// groups (the group repeats with `seq` modulo that).
fn event(seq: u64) -> Event {
    let worker = (seq % 64) as u32;
    let errno = ERRNOS[(seq % 4) as usize];
    let family = FAMILIES[(seq / 4 % 3) as usize];
    let cgroup_id = 4096 + (seq / 12) % 128;
    Event {
        seq,
        ppid: Some(1),
        ..event::worker(
            1000 + worker,
            format!("worker-{worker}"),
            cgroup_id,
            errno,
            family,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_spread_over_the_stated_groups() {
        let groups: std::collections::BTreeSet<_> = (1..=3 * GROUPS_PER_NODE)
            .map(event)
            .map(|e| (e.comm, e.cgroup_id, e.errno, e.family))
            .collect();
        assert_eq!(groups.len() as u64, GROUPS_PER_NODE);
    }
}
