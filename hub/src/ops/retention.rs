//! Periodic retention: drops events, loss records and warnings the hub received longer
//! ago than the configured age, and the oldest of them beyond the configured row count;
//! forgets tapper instances idle (no stream, nothing received) for longer than the instance expiry.

use std::time::Duration;

use tracing::{debug, info, warn};

use crate::{ingest::group_commit::GroupWriter, ops::metrics::HubMetrics, util::clock::now_ns};

/// What to keep.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_age: Option<Duration>,
    pub max_rows: Option<u64>,
    pub interval: Duration,
    /// Instances without a stream and last seen longer ago than this are forgotten.
    pub instance_expiry: Duration,
}

fn nanos(d: Duration) -> i64 {
    d.as_nanos().min(i64::MAX as u128) as i64
}

/// Applies retention every `interval` through the store's `writer` until `stop` resolves;
/// `metrics` learns of the deleted rows.
pub async fn run(
    writer: GroupWriter,
    metrics: HubMetrics,
    stop: impl Future<Output = ()>,
    r: Retention,
) {
    let mut tick = tokio::time::interval(r.interval);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => return,
        }
        if r.max_age.is_some() || r.max_rows.is_some() {
            let age = r.max_age.map(nanos);
            match writer
                .alone(move |s, _| s.apply_retention(age, r.max_rows, now_ns()))
                .await
            {
                Ok(0) => {}
                Ok(n) => {
                    metrics.rows_deleted(n);
                    debug!(deleted = n, "retention");
                }
                Err(e) => warn!(error = %e, "retention failed"),
            }
        }
        let idle = nanos(r.instance_expiry);
        match writer
            .alone(move |s, _| s.expire_instances(idle, now_ns()))
            .await
        {
            Ok(0) => {}
            Ok(n) => info!(expired = n, "idle tapper instances forgotten"),
            Err(e) => warn!(error = %e, "instance expiry failed"),
        }
    }
}
