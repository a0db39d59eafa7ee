//! fexit on `__sys_socket(int family, int type, int protocol)`: the arguments and the
//! return value in one program, no map. Kernels that refuse BPF trampolines cannot load it.
use aya_ebpf::{macros::fexit, programs::FExitContext};
use tapper_common::{ProbeKind, source};

use crate::{
    report::{Args, NO_START, report_failure},
    warn::on_success,
};

#[fexit(function = "__sys_socket")]
pub fn sys_socket_fexit(ctx: FExitContext) -> u32 {
    on_exit::<true>(&ctx)
}

/// The build for kernels without BPF atomic exchange (see `rate_limit`).
#[fexit(function = "__sys_socket")]
pub fn sys_socket_fexit_pcpu(ctx: FExitContext) -> u32 {
    on_exit::<false>(&ctx)
}

#[inline(always)]
fn on_exit<const ATOMIC: bool>(ctx: &FExitContext) -> u32 {
    // The return value follows the three arguments in the context (read directly rather
    // than with bpf_get_func_ret, which needs 5.17 and trips older verifiers).
    let ret = ctx.arg::<u64>(3) as i32;
    if ret >= 0 {
        on_success(ret as i64);
        return 0;
    }
    let args = Args {
        family: ctx.arg::<u64>(0) as i32,
        sock_type: ctx.arg::<u64>(1) as i32,
        protocol: ctx.arg::<u64>(2) as i32,
    };
    report_failure::<ATOMIC>(
        ctx,
        (-(ret as i64)) as u64,
        Some(args),
        NO_START,
        ProbeKind::Fexit,
        source::SYSCALL,
    );
    0
}
