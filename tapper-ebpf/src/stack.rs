//! User stacks on failures (`tapper --stacks`): the failure record followed by the caller's
//! user stack, walked by `bpf_get_stack`. Off unless user space sets `STACKS_ENABLED`, so
//! the normal record and every successful call stay as they are.
use aya_ebpf::{EbpfContext, bindings::BPF_F_USER_STACK, helpers::bpf_get_stack};
use tapper_common::{FailureWithStack, STACK_FRAMES, SocketFailure, counter};

use crate::{
    maps::{COUNTERS, EVENTS, bump_by},
    wakeup,
};

/// Set to 1 by user space at load time for `--stacks`.
#[unsafe(no_mangle)]
static STACKS_ENABLED: u32 = 0;

#[inline(always)]
pub fn enabled() -> bool {
    // SAFETY: a plain read of a global that user space sets before load.
    unsafe { core::ptr::read_volatile(&STACKS_ENABLED) != 0 }
}

/// Emits the failure `fill` writes with the current task's user stack (innermost first),
/// or counts a drop (of every failure the record stood for).
#[inline(always)]
pub fn emit_with_stack<C: EbpfContext>(
    ctx: &C,
    end_ns: u64,
    suppressed: u32,
    fill: impl FnOnce(&mut SocketFailure),
) {
    let Some(mut entry) = EVENTS.reserve::<FailureWithStack>(0) else {
        bump_by(&COUNTERS, counter::DROPS, 1 + suppressed as u64);
        return;
    };
    let record = entry.as_mut_ptr();
    // SAFETY: `record` points at reserved ring-buffer memory of the record's size; `fill`
    // writes the failure whole, the helper at most the frames' bytes (zeroing the rest).
    unsafe {
        fill(&mut (*record).failure);
        let bytes = bpf_get_stack(
            ctx.as_ptr(),
            (*record).frames.as_mut_ptr().cast(),
            (STACK_FRAMES * 8) as u32,
            BPF_F_USER_STACK as u64,
        );
        (*record).frame_count = if bytes > 0 { bytes as u32 / 8 } else { 0 };
        (*record)._pad = 0;
    }
    entry.submit(wakeup::submit_flags(end_ns));
}
