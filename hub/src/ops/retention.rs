//! Periodic retention: drops events, loss records and warnings the hub received longer
//! ago than the configured age, and the oldest of them beyond the configured row count;
//! forgets tapper instances idle (no stream, nothing received) for longer than the instance expiry.

use std::{sync::Arc, time::Duration};

use tracing::{debug, info, warn};

use crate::{api::state::HubState, util::clock::now_ns};

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

/// Parses a humantime duration ("90s", "15m", "24h", "7d", "1h30m") or bare seconds ("90");
/// zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let d = match t.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(t)
            .map_err(|e| format!("{text:?} is not a duration ({e}); use e.g. 30s, 15m, 24h, 7d"))?,
    };
    if d.is_zero() {
        return Err(format!("{text:?}: the duration must be longer than 0"));
    }
    Ok(d)
}

/// Applies retention every `interval` until the hub shuts down.
pub async fn run(state: Arc<HubState>, r: Retention) {
    let mut tick = tokio::time::interval(r.interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.shutting_down() => return,
        }
        if r.max_age.is_some() || r.max_rows.is_some() {
            let age = r.max_age.map(nanos);
            match state
                .with_writer(move |s, _| s.apply_retention(age, r.max_rows, now_ns()))
                .await
            {
                Ok(0) => {}
                Ok(n) => {
                    state.metrics.rows_deleted(n);
                    debug!(deleted = n, "retention");
                }
                Err(e) => warn!(error = %e, "retention failed"),
            }
        }
        let idle = nanos(r.instance_expiry);
        match state
            .with_writer(move |s, _| s.expire_instances(idle, now_ns()))
            .await
        {
            Ok(0) => {}
            Ok(n) => info!(expired = n, "idle tapper instances forgotten"),
            Err(e) => warn!(error = %e, "instance expiry failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration(" 1h30m "), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("5x").unwrap_err().contains("not a duration"));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("0").unwrap_err().contains("longer than 0"));
        // Too big for a Duration: an error, not a wrap or a panic.
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("99999999999999999999").is_err());
    }
}
