//! The maps shared by every probe pair: pending calls, the event ring buffer, counters,
//! the rate limit's buckets (and per-CPU pending counts) and the time of the last wake-up.
use aya_ebpf::{
    macros::map,
    maps::{Array, LruHashMap, LruPerCpuHashMap, PerCpuArray, RingBuf},
};
use tapper_common::{ERRNO_SLOTS, PendingCall, RateKey, RateState, counter};

/// Calls in flight, keyed by `pid_tgid`. LRU so that a missed return cannot leak entries.
#[map]
pub static PENDING: LruHashMap<u64, PendingCall> = LruHashMap::with_max_entries(65_536, 0);

/// Failure events for user space. User space may resize it at load time.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 20, 0);

/// Indexed by `tapper_common::counter`.
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Failures per errno; the last slot holds every errno at or above it.
#[map]
pub static ERRNO_COUNTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(ERRNO_SLOTS, 0);

/// The rate limit's bucket per (tgid, errno), created by a key's first failure. LRU so
/// that a storm of new keys cannot fill it; user space's sweep deletes quiet keys.
#[map]
pub static RATE_STATE: LruHashMap<RateKey, RateState> = LruHashMap::with_max_entries(16_384, 0);

/// The rate limit's pending counts per key and CPU, where the kernel lacks BPF atomic
/// exchange (`rate_limit`); user space shrinks it to one entry elsewhere.
#[map]
pub static RATE_PENDING: LruPerCpuHashMap<RateKey, u64> =
    LruPerCpuHashMap::with_max_entries(16_384, 0);

/// One slot: `bpf_ktime_get_ns()` of the last submit that woke user space.
#[map]
pub static LAST_WAKEUP: Array<u64> = Array::with_max_entries(1, 0);

#[inline(always)]
pub fn bump(map: &PerCpuArray<u64>, index: u32) {
    bump_by(map, index, 1);
}

#[inline(always)]
pub fn bump_by(map: &PerCpuArray<u64>, index: u32, n: u64) {
    if let Some(slot) = map.get_ptr_mut(index) {
        // SAFETY: a per-CPU slot is only touched by programs running on this CPU.
        unsafe { *slot += n };
    }
}

/// When each process (tgid) last got a nofile warning, in `bpf_ktime_get_ns()`; touched
/// only by calls whose descriptor is above the warn floor.
#[map]
pub static WARNED: LruHashMap<u32, u64> = LruHashMap::with_max_entries(16_384, 0);

/// Nofile warnings for user space, apart from the failure events.
#[map]
pub static WARNINGS: RingBuf = RingBuf::with_byte_size(64 << 10, 0);
