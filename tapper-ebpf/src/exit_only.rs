//! Exit-only mode: `syscalls:sys_exit_socket` alone. A successful call costs two loads and
//! two compares (its return value, then the warn floor); a failed one takes its arguments from the saved user registers, so no
//! entry probe and no map are needed, and seccomp-denied calls (which never enter) are
//! seen whole.
use aya_ebpf::{EbpfContext, macros::tracepoint, programs::TracePointContext};
use tapper_common::{EXIT_ONLY_RET_OFFSET, ProbeKind, source};

use crate::{
    regs::saved_args,
    report::{NO_START, report_failure},
    warn::on_success,
};

#[tracepoint]
pub fn sys_exit_socket_regs(ctx: TracePointContext) -> u32 {
    on_exit::<true>(&ctx)
}

/// The build for kernels without BPF atomic exchange (see `rate_limit`).
#[tracepoint]
pub fn sys_exit_socket_regs_pcpu(ctx: TracePointContext) -> u32 {
    on_exit::<false>(&ctx)
}

#[inline(always)]
fn on_exit<const ATOMIC: bool>(ctx: &TracePointContext) -> u32 {
    // A direct load at a constant offset (the verifier refuses variable ones into the
    // context, and a helper call would cost more than the compare); user space checked
    // the offset against the tracepoint's format before attaching.
    // SAFETY: the record is at least as long as its `ret` field.
    let ret = unsafe {
        (ctx.as_ptr() as *const u8)
            .add(EXIT_ONLY_RET_OFFSET as usize)
            .cast::<i64>()
            .read()
    };
    if ret >= 0 {
        on_success(ret);
        return 0;
    }
    report_failure::<ATOMIC>(
        ctx,
        (-ret) as u64,
        saved_args(),
        NO_START,
        ProbeKind::ExitOnly,
        source::SYSCALL,
    );
    0
}
