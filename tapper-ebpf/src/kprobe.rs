//! The kprobe/kretprobe pair on `__sys_socket(int family, int type, int protocol)`.
use aya_ebpf::{
    macros::{kprobe, kretprobe},
    programs::{ProbeContext, RetProbeContext},
};
use tapper_common::ProbeKind;

use crate::correlate::{on_enter, on_exit};

#[kprobe]
pub fn sys_socket_entry(ctx: ProbeContext) -> u32 {
    match try_sys_socket_entry(&ctx) {
        Ok(v) => v,
        Err(v) => v,
    }
}

fn try_sys_socket_entry(ctx: &ProbeContext) -> Result<u32, u32> {
    let family: i32 = ctx.arg(0).ok_or(1u32)?;
    let sock_type: i32 = ctx.arg(1).ok_or(1u32)?;
    let protocol: i32 = ctx.arg(2).ok_or(1u32)?;
    on_enter(family, sock_type, protocol);
    Ok(0)
}

#[kretprobe]
pub fn sys_socket_return(ctx: RetProbeContext) -> u32 {
    on_return::<true>(&ctx)
}

/// The build for kernels without BPF atomic exchange (see `rate_limit`).
#[kretprobe]
pub fn sys_socket_return_pcpu(ctx: RetProbeContext) -> u32 {
    on_return::<false>(&ctx)
}

#[inline(always)]
fn on_return<const ATOMIC: bool>(ctx: &RetProbeContext) -> u32 {
    // `__sys_socket` returns an int: a descriptor or -errno.
    let ret: i32 = ctx.ret();
    on_exit::<ATOMIC>(ctx, ret as i64, ProbeKind::Kprobe);
    0
}
