//! The per-(tgid, errno) rate limit: a token bucket (GCRA) checked only on failures. A
//! failure over the limit is counted as pending; a later event of the key carries it.
//! Each reporting program has two builds, and user space loads the one the kernel takes:
//! `ATOMIC` keeps one pending count per key, taken by the key's next event with an atomic
//! exchange (BPF atomic fetch, 5.12); without it, one count per key and CPU
//! (`RATE_PENDING`), taken by the key's next event on that CPU. Both are exact: user
//! space's sweep emits whatever a quiet key still has pending.
use core::intrinsics::{AtomicOrdering, atomic_xadd, atomic_xchg};

use aya_ebpf::bindings::BPF_NOEXIST;
use tapper_common::{RateKey, RateLimit, RateState, counter};

use crate::maps::{COUNTERS, RATE_PENDING, RATE_STATE, bump};

/// Overwritten by user space before load; the default leaves the limit off.
#[unsafe(no_mangle)]
static RATE_LIMIT: RateLimit = RateLimit {
    interval_ns: 0,
    tolerance_ns: 0,
    quiet_ns: 0,
};

/// Whether a failure of (`tgid`, `errno`) at `now_ns` is emitted: `Some(suppressed)`, the
/// failures its event stands for besides itself, or `None` when the limit suppresses it
/// (it is then pending on its key).
#[inline(always)]
pub fn admit<const ATOMIC: bool>(tgid: u32, errno: u64, now_ns: u64) -> Option<u32> {
    // SAFETY: a plain read of a global that user space sets before load.
    let limit = unsafe { core::ptr::read_volatile(&RATE_LIMIT) };
    if limit.interval_ns == 0 {
        return Some(0);
    }
    let key = RateKey {
        tgid,
        errno: errno as u32,
    };
    let Some(state) = RATE_STATE.get_ptr_mut(key) else {
        let first = RateState {
            full_at_ns: now_ns + limit.interval_ns,
            last_ns: now_ns,
            pending: 0,
        };
        // Another CPU may have created the key meanwhile; this failure is emitted anyway.
        let _ = RATE_STATE.insert(key, first, BPF_NOEXIST as u64);
        return Some(0);
    };
    // SAFETY: the pointer is a live map value; the fields shared between CPUs are either
    // updated atomically (`pending`) or only steer the limit (a lost update admits or
    // suppresses one failure more, never miscounts one).
    let state = unsafe { &mut *state };
    let quiet = now_ns.saturating_sub(state.last_ns) >= limit.quiet_ns;
    state.last_ns = now_ns;
    let full_at = if state.full_at_ns > now_ns {
        state.full_at_ns
    } else {
        now_ns
    };
    let pending = &raw mut state.pending;
    if full_at - now_ns > limit.tolerance_ns {
        if ATOMIC {
            add(pending, 1);
        } else {
            count_on_this_cpu(&key);
        }
        bump(&COUNTERS, counter::SUPPRESSED);
        return None;
    }
    state.full_at_ns = full_at + limit.interval_ns;
    if quiet {
        // The sweep may be taking this key's pending count right now; leave it to it.
        return Some(0);
    }
    if ATOMIC {
        // SAFETY: `pending` is a naturally aligned u64 inside a live map value.
        let taken = unsafe { atomic_xchg::<u64, { AtomicOrdering::Relaxed }>(pending, 0) };
        let carried = carried(taken);
        if taken > carried as u64 {
            add(pending, taken - carried as u64);
        }
        Some(carried)
    } else {
        Some(take_on_this_cpu(&key))
    }
}

/// What one event can carry of `taken` pending failures; the rest waits for the key's
/// next event.
#[inline(always)]
fn carried(taken: u64) -> u32 {
    if taken > u32::MAX as u64 {
        u32::MAX
    } else {
        taken as u32
    }
}

/// `*counter += n`, atomically across CPUs (the BPF target has the instruction but no
/// atomic types; without a fetch it is the add every kernel has).
#[inline(always)]
fn add(counter: *mut u64, n: u64) {
    // SAFETY: callers pass a naturally aligned u64 inside a live map value.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(counter, n) };
}

/// One more failure pending on `key` on this CPU.
#[inline(always)]
fn count_on_this_cpu(key: &RateKey) {
    if let Some(pending) = RATE_PENDING.get_ptr_mut(key) {
        // SAFETY: this CPU's slot, which only programs on this CPU touch.
        unsafe { *pending += 1 };
        return;
    }
    // A new entry starts at zero on every other CPU. Another CPU may have created it
    // meanwhile: then this CPU's slot of it is counted.
    if RATE_PENDING.insert(key, 1, BPF_NOEXIST as u64).is_err()
        && let Some(pending) = RATE_PENDING.get_ptr_mut(key)
    {
        // SAFETY: as above.
        unsafe { *pending += 1 };
    }
}

/// Takes what this CPU has pending on `key`.
#[inline(always)]
fn take_on_this_cpu(key: &RateKey) -> u32 {
    let Some(pending) = RATE_PENDING.get_ptr_mut(key) else {
        return 0;
    };
    // SAFETY: this CPU's slot, which only programs on this CPU touch.
    let pending = unsafe { &mut *pending };
    let carried = carried(*pending);
    *pending -= carried as u64;
    carried
}
