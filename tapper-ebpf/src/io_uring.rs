//! `io_uring:io_uring_complete`: a failed `IORING_OP_SOCKET` request, which never passes
//! through the socket system call. The opcode and arguments are read from the request
//! at offsets user space took from BTF (`IO_URING_LAYOUT`).
use aya_ebpf::{helpers::bpf_probe_read_kernel, macros::tracepoint, programs::TracePointContext};
use tapper_common::{IoUringLayout, ProbeKind, source};

use crate::report::{Args, NO_START, report_failure};

/// Overwritten by user space before load.
#[unsafe(no_mangle)]
static IO_URING_LAYOUT: IoUringLayout = IoUringLayout {
    tp_req: 16,
    tp_res: 32,
    opcode: 0,
    op_socket: 0,
    domain: 0,
    sock_type: 0,
    protocol: 0,
    _pad: 0,
};

#[tracepoint]
pub fn io_uring_complete(ctx: TracePointContext) -> u32 {
    match try_io_uring_complete::<true>(&ctx) {
        Ok(v) => v,
        Err(v) => v,
    }
}

/// The build for kernels without BPF atomic exchange (see `rate_limit`).
#[tracepoint]
pub fn io_uring_complete_pcpu(ctx: TracePointContext) -> u32 {
    match try_io_uring_complete::<false>(&ctx) {
        Ok(v) => v,
        Err(v) => v,
    }
}

#[inline(always)]
fn try_io_uring_complete<const ATOMIC: bool>(ctx: &TracePointContext) -> Result<u32, u32> {
    // SAFETY: a plain read of a global that user space sets before load.
    let layout = unsafe { core::ptr::read_volatile(&IO_URING_LAYOUT) };
    let res = unsafe { ctx.read_at::<i32>(layout.tp_res as usize) }.map_err(|_| 1u32)?;
    if res >= 0 {
        return Ok(0);
    }
    let req = unsafe { ctx.read_at::<u64>(layout.tp_req as usize) }.map_err(|_| 1u32)?;
    let opcode: u8 = read_kernel(req, layout.opcode)?;
    if opcode as u32 != layout.op_socket {
        return Ok(0);
    }
    let args = Args {
        family: read_kernel(req, layout.domain)?,
        sock_type: read_kernel(req, layout.sock_type)?,
        protocol: read_kernel(req, layout.protocol)?,
    };
    report_failure::<ATOMIC>(
        ctx,
        (-(res as i64)) as u64,
        Some(args),
        NO_START,
        ProbeKind::IoUring,
        source::IO_URING,
    );
    Ok(0)
}

#[inline(always)]
fn read_kernel<T>(base: u64, offset: u32) -> Result<T, u32> {
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    unsafe { bpf_probe_read_kernel((base + offset as u64) as *const T) }.map_err(|_| 1u32)
}
