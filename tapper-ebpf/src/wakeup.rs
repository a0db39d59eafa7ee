//! When a submitted event wakes user space: after a quiet spell (so a lone failure is
//! delivered at once), at most about once per interval under load, or when the ring fills.
use aya_ebpf::bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};
use tapper_common::Wakeup;

use crate::maps::{EVENTS, LAST_WAKEUP};

/// Overwritten by user space before load; the default wakes user space for every event.
#[unsafe(no_mangle)]
static WAKEUP: Wakeup = Wakeup {
    interval_ns: 0,
    max_bytes: 0,
};

/// The flags for `bpf_ringbuf_submit` of an event submitted at `now_ns`.
#[inline(always)]
pub fn submit_flags(now_ns: u64) -> u64 {
    // SAFETY: a plain read of a global that user space sets before load.
    let wakeup = unsafe { core::ptr::read_volatile(&WAKEUP) };
    let Some(last) = LAST_WAKEUP.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: one u64 slot; CPUs racing on it at worst wake user space once more.
    let last = unsafe { &mut *last };
    if now_ns.saturating_sub(*last) >= wakeup.interval_ns
        || EVENTS.query(BPF_RB_AVAIL_DATA as u64) > wakeup.max_bytes
    {
        *last = now_ns;
        return BPF_RB_FORCE_WAKEUP as u64;
    }
    BPF_RB_NO_WAKEUP as u64
}
