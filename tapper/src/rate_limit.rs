//! User space's half of the kernel's per-(tgid, errno) rate limit: the settings the kernel
//! gets, and the sweep that emits what a key suppressed once the key went quiet.

use std::{collections::HashMap, time::Duration};

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuHashMap};
use tapper_common::{ProbeKind, RateKey, RateLimit, RateState, SocketFailure};

/// A key without a failure for this long (and with a full bucket) is swept: its pending
/// failures get a record of their own and the key is deleted. The kernel leaves a quiet
/// key's pending count alone, so the two never both take it.
pub const QUIET: Duration = Duration::from_secs(1);

/// The kernel's settings for `rate` events per second per key with bursts of `burst`
/// (`rate` 0: off).
pub fn kernel_limit(rate: u32, burst: u32) -> RateLimit {
    if rate == 0 {
        return RateLimit {
            interval_ns: 0,
            tolerance_ns: 0,
            quiet_ns: 0,
        };
    }
    let interval_ns = 1_000_000_000 / u64::from(rate);
    RateLimit {
        interval_ns,
        tolerance_ns: interval_ns * u64::from(burst.max(1) - 1),
        quiet_ns: QUIET.as_nanos() as u64,
    }
}

/// The kernel's rate-limit maps: the buckets, and the pending counts per CPU where the
/// kernel lacks BPF atomic exchange (each bucket's own `pending` stays 0 there).
pub struct RateMaps {
    pub buckets: BpfHashMap<MapData, RateKey, RateState>,
    pub per_cpu_pending: Option<PerCpuHashMap<MapData, RateKey, u64>>,
}

/// Sweeps the kernel's buckets, remembering each key's last event so that a sweep record
/// names the same process, cgroup and call as the failures it stands for.
pub struct Sweep {
    maps: RateMaps,
    last_events: HashMap<RateKey, SocketFailure>,
}

fn key_of(raw: &SocketFailure) -> RateKey {
    RateKey {
        tgid: raw.tgid,
        errno: raw.errno as u32,
    }
}

impl Sweep {
    pub fn new(maps: RateMaps) -> Self {
        Self {
            maps,
            last_events: HashMap::new(),
        }
    }

    /// Notes an event read from the kernel.
    pub fn remember(&mut self, raw: &SocketFailure) {
        self.last_events.insert(key_of(raw), *raw);
    }

    /// Deletes the keys quiet at `now_ns` (CLOCK_MONOTONIC) and returns one record for each
    /// that had suppressed failures pending, standing for exactly that many
    /// (`1 + suppressed`). Call it after draining the ring buffer. `Ok(false)` once no key
    /// is left, so the caller can stop sweeping until the next event.
    pub fn sweep(
        &mut self,
        now_ns: u64,
    ) -> Result<(Vec<SocketFailure>, bool), aya::maps::MapError> {
        let keys = self.maps.buckets.keys().collect::<Result<Vec<_>, _>>()?;
        let mut records = Vec::new();
        let mut live = 0;
        for key in keys {
            // A key gone meanwhile was evicted or deleted: nothing to do.
            let Ok(mut state) = self.maps.buckets.get(&key, 0) else {
                continue;
            };
            if !is_quiet(&state, now_ns) {
                live += 1;
                continue;
            }
            self.maps.buckets.remove(&key)?;
            state.pending += self.take_per_cpu(&key)?;
            let last = self.last_events.remove(&key);
            if state.pending > 0 {
                records.push(record(key, &state, last));
            }
        }
        // Keys the kernel evicted have no bucket left to sweep.
        if self.last_events.len() > live {
            let buckets = &self.maps.buckets;
            self.last_events
                .retain(|key, _| buckets.get(key, 0).is_ok());
        }
        Ok((records, live > 0))
    }

    /// Takes (deletes) a quiet key's pending counts on every CPU, where they are kept per CPU.
    fn take_per_cpu(&mut self, key: &RateKey) -> Result<u64, aya::maps::MapError> {
        let Some(per_cpu) = self.maps.per_cpu_pending.as_mut() else {
            return Ok(0);
        };
        // A key without a suppressed failure has no entry.
        let Ok(counts) = per_cpu.get(key, 0) else {
            return Ok(0);
        };
        per_cpu.remove(key)?;
        Ok(counts.iter().sum())
    }
}

fn is_quiet(state: &RateState, now_ns: u64) -> bool {
    now_ns.saturating_sub(state.last_ns) >= QUIET.as_nanos() as u64 && state.full_at_ns <= now_ns
}

/// The record for `state.pending` failures of `key`, at the time of its last failure,
/// with the details of its last event when known.
fn record(key: RateKey, state: &RateState, last: Option<SocketFailure>) -> SocketFailure {
    let mut raw = last.unwrap_or(SocketFailure {
        end_ns: 0,
        duration_ns: 0,
        cgroup_id: 0,
        tgid: key.tgid,
        tid: key.tgid,
        uid: 0,
        gid: 0,
        family: -1,
        sock_type: -1,
        protocol: -1,
        errno: key.errno as i32,
        comm: [0; tapper_common::COMM_LEN],
        probe: 0,
        has_args: 0,
        has_duration: 0,
        source: 0,
        suppressed: 0,
        context: tapper_common::TaskContext::EMPTY,
    });
    raw.end_ns = state.last_ns;
    raw.has_duration = 0;
    raw.probe = ProbeKind::RateLimit as u8;
    raw.suppressed = u32::try_from(state.pending - 1).unwrap_or(u32::MAX);
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_a_bucket_of_burst_tokens_refilled_at_rate() {
        let off = kernel_limit(0, 1000);
        assert_eq!(off.interval_ns, 0, "0 turns the limit off");
        let limit = kernel_limit(1000, 1000);
        assert_eq!(limit.interval_ns, 1_000_000);
        assert_eq!(limit.tolerance_ns, 999 * 1_000_000);
        assert_eq!(kernel_limit(100, 1).tolerance_ns, 0);
        assert_eq!(limit.quiet_ns, 1_000_000_000);
    }

    #[test]
    fn a_key_is_quiet_after_a_second_without_failures_and_with_a_full_bucket() {
        let s = 1_000_000_000;
        let state = |last_ns, full_at_ns| RateState {
            full_at_ns,
            last_ns,
            pending: 3,
        };
        assert!(is_quiet(&state(10 * s, 10 * s), 11 * s));
        assert!(!is_quiet(&state(10 * s, 10 * s), 11 * s - 1));
        assert!(!is_quiet(&state(10 * s, 12 * s), 11 * s), "still refilling");
    }

    #[test]
    fn a_sweep_record_stands_for_the_pending_count() {
        let state = RateState {
            full_at_ns: 5,
            last_ns: 7,
            pending: 42,
        };
        let key = RateKey { tgid: 9, errno: 97 };
        let raw = record(key, &state, None);
        assert_eq!(1 + raw.suppressed, 42);
        assert_eq!((raw.tgid, raw.errno, raw.end_ns), (9, 97, 7));
        assert_eq!(raw.probe, ProbeKind::RateLimit as u8);
        assert_eq!(raw.has_args, 0);
    }
}
