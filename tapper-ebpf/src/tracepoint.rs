//! The `syscalls:sys_enter_socket` / `sys_exit_socket` tracepoint pair. Field offsets come
//! from tracefs at load time, through the `TRACEPOINT_LAYOUT` global.
use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use tapper_common::{ProbeKind, TracepointLayout};

use crate::correlate::{on_enter, on_exit};

/// Overwritten by user space with the offsets it read from the tracepoint formats.
#[unsafe(no_mangle)]
static TRACEPOINT_LAYOUT: TracepointLayout = TracepointLayout {
    enter_family: 16,
    enter_type: 24,
    enter_protocol: 32,
    exit_ret: 16,
};

fn layout() -> TracepointLayout {
    // SAFETY: a plain read of a global that user space sets before load.
    unsafe { core::ptr::read_volatile(&TRACEPOINT_LAYOUT) }
}

#[tracepoint]
pub fn sys_enter_socket(ctx: TracePointContext) -> u32 {
    match try_sys_enter_socket(&ctx) {
        Ok(v) => v,
        Err(v) => v,
    }
}

fn try_sys_enter_socket(ctx: &TracePointContext) -> Result<u32, u32> {
    let layout = layout();
    // Syscall arguments are stored as 8-byte longs; socket() takes ints.
    let read = |offset: u32| unsafe { ctx.read_at::<i64>(offset as usize) }.map_err(|_| 1u32);
    let family = read(layout.enter_family)? as i32;
    let sock_type = read(layout.enter_type)? as i32;
    let protocol = read(layout.enter_protocol)? as i32;
    on_enter(family, sock_type, protocol);
    Ok(0)
}

#[tracepoint]
pub fn sys_exit_socket(ctx: TracePointContext) -> u32 {
    on_return::<true>(&ctx)
}

/// The build for kernels without BPF atomic exchange (see `rate_limit`).
#[tracepoint]
pub fn sys_exit_socket_pcpu(ctx: TracePointContext) -> u32 {
    on_return::<false>(&ctx)
}

#[inline(always)]
fn on_return<const ATOMIC: bool>(ctx: &TracePointContext) -> u32 {
    match unsafe { ctx.read_at::<i64>(layout().exit_ret as usize) } {
        Ok(ret) => {
            on_exit::<ATOMIC>(ctx, ret, ProbeKind::Tracepoint);
            0
        }
        Err(_) => 1,
    }
}
