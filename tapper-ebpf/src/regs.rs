//! `socket()`'s arguments from the calling task's saved user registers (its `pt_regs`),
//! which still hold them when the system call returns. Which register holds which
//! argument comes from user space (BTF and a per-architecture table) in `REGS_LAYOUT`.
use aya_ebpf::helpers::{bpf_get_current_task_btf, bpf_probe_read_kernel, bpf_task_pt_regs};
use tapper_common::RegsLayout;

use crate::report::Args;

/// Overwritten by user space before load; `valid: 0` leaves register reads unknown.
#[unsafe(no_mangle)]
static REGS_LAYOUT: RegsLayout = RegsLayout {
    family: 0,
    sock_type: 0,
    protocol: 0,
    syscall_nr: 0,
    socket_nr: 0,
    valid: 0,
};

/// The current task's `socket()` arguments, or `None` when the layout is unknown, a read
/// fails or the saved system call number is not `socket`'s.
#[inline(always)]
pub fn saved_args() -> Option<Args> {
    // SAFETY: a plain read of a global that user space sets before load.
    let layout = unsafe { core::ptr::read_volatile(&REGS_LAYOUT) };
    if layout.valid == 0 {
        return None;
    }
    // SAFETY: both helpers take the current task, which is valid for the program's run.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as usize;
    if regs == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    let read =
        |offset: u32| unsafe { bpf_probe_read_kernel((regs + offset as usize) as *const u64).ok() };
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
