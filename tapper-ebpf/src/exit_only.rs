//! Exit-only mode: `syscalls:sys_exit_socket` alone. A successful call costs one compare;
//! a failed one takes its arguments from the saved user registers, so no entry probe and
//! no map are needed, and seccomp-denied calls (which never enter) are seen whole.
use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use tapper_common::{ProbeKind, source};

use crate::{
    regs::saved_args,
    report::{NO_START, report_failure},
    tracepoint::layout,
};

#[tracepoint]
pub fn sys_exit_socket_regs(ctx: TracePointContext) -> u32 {
    match unsafe { ctx.read_at::<i64>(layout().exit_ret as usize) } {
        Ok(ret) if ret >= 0 => 0,
        Ok(ret) => {
            let args = saved_args();
            report_failure(
                (-ret) as u64,
                args,
                NO_START,
                ProbeKind::ExitOnly,
                source::SYSCALL,
            );
            0
        }
        Err(_) => 1,
    }
}
