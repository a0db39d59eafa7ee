//! `socket()`'s arguments from the calling task's saved user registers (its `pt_regs`),
//! which still hold them when the system call returns. Which register holds which
//! argument, and how to find the registers, comes from user space (BTF and a
//! per-architecture table) in `REGS_LAYOUT`.
use aya_ebpf::helpers::{
    bpf_get_current_task, bpf_get_current_task_btf, bpf_probe_read_kernel, bpf_task_pt_regs,
};
use tapper_common::{RegsLayout, regs_route};

use crate::report::Args;

/// Overwritten by user space before load; `route: NONE` leaves register reads unknown.
#[unsafe(no_mangle)]
static REGS_LAYOUT: RegsLayout = RegsLayout {
    family: 0,
    sock_type: 0,
    protocol: 0,
    syscall_nr: 0,
    socket_nr: 0,
    route: regs_route::NONE,
    task_stack: 0,
    stack_regs: 0,
};

/// The current task's `socket()` arguments, or `None` when the layout is unknown, a read
/// fails or the saved system call number is not `socket`'s.
#[inline(always)]
pub fn saved_args() -> Option<Args> {
    // SAFETY: a plain read of a global that user space sets before load.
    let layout = unsafe { core::ptr::read_volatile(&REGS_LAYOUT) };
    let regs = user_regs(&layout)?;
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    let read =
        |offset: u32| unsafe { bpf_probe_read_kernel((regs + offset as u64) as *const u64).ok() };
    // The low 32 bits: the number register is 8 bytes on x86_64, 4 on arm64.
    if read(layout.syscall_nr)? as u32 != layout.socket_nr {
        return None;
    }
    Some(Args {
        family: read(layout.family)? as i32,
        sock_type: read(layout.sock_type)? as i32,
        protocol: read(layout.protocol)? as i32,
    })
}

/// The address of the current task's saved user `struct pt_regs`, by the layout's route.
/// The route is a load-time constant, so the verifier never walks the branch a kernel
/// lacks (older kernels do not know the helpers).
#[inline(always)]
fn user_regs(layout: &RegsLayout) -> Option<u64> {
    let regs = match layout.route {
        // SAFETY: both helpers take the current task, which is valid for the program's run.
        regs_route::HELPER => (unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) }) as u64,
        regs_route::TASK_STACK => {
            let task = unsafe { bpf_get_current_task() };
            // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
            let stack: u64 =
                unsafe { bpf_probe_read_kernel((task + layout.task_stack as u64) as *const u64) }
                    .ok()?;
            if stack == 0 {
                return None;
            }
            stack + layout.stack_regs as u64
        }
        _ => return None,
    };
    (regs != 0).then_some(regs)
}
