//! What vanishes with the failing process, read in its own context on the failure path
//! only: descriptor limits and count, effective capabilities, seccomp mode, the exe's name
//! and a prefix of its arguments. Offsets come from BTF through `CONTEXT_LAYOUT`.
use aya_ebpf::helpers::{
    bpf_get_current_task, bpf_probe_read_kernel,
    generated::{bpf_probe_read_kernel_str, bpf_probe_read_user},
};
use tapper_common::{
    CMDLINE_PREFIX_LEN, ContextLayout, EXE_NAME_LEN, FD_BITMAP_WORDS, TaskContext, context,
};

/// Overwritten by user space before load; the default reads nothing.
#[unsafe(no_mangle)]
static CONTEXT_LAYOUT: ContextLayout = ContextLayout::NONE;

/// One offset of the layout (a volatile read: user space sets it at load time).
#[inline(always)]
fn offset(field: &u32) -> u64 {
    // SAFETY: a plain read of a global that user space sets before load.
    unsafe { core::ptr::read_volatile(field) as u64 }
}

/// A kernel value at `addr`, or `None` where the read faults (or `addr` is null).
#[inline(always)]
fn kernel<T>(addr: u64) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    unsafe { bpf_probe_read_kernel(addr as *const T) }.ok()
}

/// Fills `out` with what the current task lets read; `out.valid` says which parts.
#[inline(always)]
pub fn read(out: &mut TaskContext) {
    let wanted = offset(&CONTEXT_LAYOUT.valid) as u32;
    if wanted == 0 {
        return;
    }
    let task = unsafe { bpf_get_current_task() };
    let mut valid = 0;
    if wanted & context::NOFILE != 0 && nofile(task, out).is_some() {
        valid |= context::NOFILE;
    }
    if wanted & context::OPEN_FDS != 0 && open_fds(task, out).is_some() {
        valid |= context::OPEN_FDS;
    }
    if wanted & context::CAP_EFFECTIVE != 0 && cap_effective(task, out).is_some() {
        valid |= context::CAP_EFFECTIVE;
    }
    if wanted & context::SECCOMP != 0 && seccomp(task, out).is_some() {
        valid |= context::SECCOMP;
    }
    // A kernel thread has no mm (and no exe or arguments).
    let mm = kernel::<u64>(task + offset(&CONTEXT_LAYOUT.task_mm)).unwrap_or(0);
    if mm != 0 {
        if wanted & context::EXE_NAME != 0 && exe_name(mm, out).is_some() {
            valid |= context::EXE_NAME;
        }
        if wanted & context::CMDLINE != 0 {
            valid |= cmdline(mm, out).unwrap_or(0);
        }
    }
    out.valid = valid;
}

#[inline(always)]
fn nofile(task: u64, out: &mut TaskContext) -> Option<()> {
    let signal = kernel::<u64>(task + offset(&CONTEXT_LAYOUT.task_signal))?;
    out.nofile_soft = kernel(signal + offset(&CONTEXT_LAYOUT.signal_nofile_cur))?;
    out.nofile_hard = kernel(signal + offset(&CONTEXT_LAYOUT.signal_nofile_max))?;
    Some(())
}

/// Counts the open bitmap's set bits, when the table is small enough to count whole.
#[inline(always)]
fn open_fds(task: u64, out: &mut TaskContext) -> Option<()> {
    let files = kernel::<u64>(task + offset(&CONTEXT_LAYOUT.task_files))?;
    let fdt = kernel::<u64>(files + offset(&CONTEXT_LAYOUT.files_fdt))?;
    let max_fds = kernel::<u32>(fdt + offset(&CONTEXT_LAYOUT.fdt_max_fds))?;
    let bitmap = kernel::<u64>(fdt + offset(&CONTEXT_LAYOUT.fdt_open_fds))?;
    let words = max_fds.div_ceil(64);
    if words > FD_BITMAP_WORDS {
        return None;
    }
    let mut open = 0;
    for i in 0..FD_BITMAP_WORDS {
        if i >= words {
            break;
        }
        open += kernel::<u64>(bitmap + 8 * i as u64)?.count_ones();
    }
    out.open_fds = open;
    Some(())
}

#[inline(always)]
fn cap_effective(task: u64, out: &mut TaskContext) -> Option<()> {
    let cred = kernel::<u64>(task + offset(&CONTEXT_LAYOUT.task_cred))?;
    // kernel_cap_t is 64 bits: one u64, or two u32 words low first on older kernels.
    out.cap_effective = kernel(cred + offset(&CONTEXT_LAYOUT.cred_cap_effective))?;
    Some(())
}

#[inline(always)]
fn seccomp(task: u64, out: &mut TaskContext) -> Option<()> {
    out.seccomp_mode = kernel::<u32>(task + offset(&CONTEXT_LAYOUT.task_seccomp_mode))?;
    Some(())
}

#[inline(always)]
fn exe_name(mm: u64, out: &mut TaskContext) -> Option<()> {
    let file = kernel::<u64>(mm + offset(&CONTEXT_LAYOUT.mm_exe_file))?;
    let dentry = kernel::<u64>(file + offset(&CONTEXT_LAYOUT.file_dentry))?;
    let name = kernel::<u64>(dentry + offset(&CONTEXT_LAYOUT.dentry_name))?;
    // SAFETY: the helper writes at most EXE_NAME_LEN bytes, NUL-terminated.
    let copied = unsafe {
        bpf_probe_read_kernel_str(
            out.exe_name.as_mut_ptr().cast(),
            EXE_NAME_LEN as u32,
            name as *const _,
        )
    };
    (copied > 0).then_some(())
}

/// The arguments' first bytes, from the task's own memory; returns the parts filled.
#[inline(always)]
fn cmdline(mm: u64, out: &mut TaskContext) -> Option<u32> {
    let start = kernel::<u64>(mm + offset(&CONTEXT_LAYOUT.mm_arg_start))?;
    let end = kernel::<u64>(mm + offset(&CONTEXT_LAYOUT.mm_arg_end))?;
    if end <= start {
        return None;
    }
    let total = end - start;
    let len = if total > CMDLINE_PREFIX_LEN as u64 {
        CMDLINE_PREFIX_LEN as u32
    } else {
        total as u32
    };
    // SAFETY: `len` is at most the buffer's size; the helper fails cleanly on a fault.
    let ret =
        unsafe { bpf_probe_read_user(out.cmdline.as_mut_ptr().cast(), len, start as *const _) };
    if ret != 0 {
        return None;
    }
    out.cmdline_len = len;
    let cut = if total > len as u64 {
        context::CMDLINE_CUT
    } else {
        0
    };
    Some(context::CMDLINE | cut)
}
