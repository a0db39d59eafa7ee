//! User stacks on failures (`tapper --stacks`): the failure record followed by the caller's
//! user stack, walked by `bpf_get_stack` as build id and file offset per frame (the raw
//! address where the kernel cannot read the build id), and the path the executable was
//! started by. Off unless user space enables it, so the normal record and every successful
//! call stay as they are.
use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_F_USER_BUILD_ID, BPF_F_USER_STACK},
    helpers::{
        bpf_get_current_task, bpf_get_stack, bpf_probe_read_kernel,
        generated::bpf_probe_read_user_str,
    },
};
use tapper_common::{
    EXEC_PATH_LEN, FailureWithStack, STACK_FRAMES, SocketFailure, StackConfig, StackFrameRaw,
    counter,
};

use crate::{
    maps::{COUNTERS, EVENTS, bump_by},
    wakeup,
};

/// Overwritten by user space at load time for `--stacks`.
#[unsafe(no_mangle)]
static STACK_CONFIG: StackConfig = StackConfig::OFF;

#[inline(always)]
pub fn enabled() -> bool {
    // SAFETY: a plain read of a global that user space sets before load.
    unsafe { core::ptr::read_volatile(&STACK_CONFIG.enabled) != 0 }
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
    // writes the failure whole, each helper at most its buffer's bytes (zeroing the rest).
    unsafe {
        fill(&mut (*record).failure);
        let bytes = bpf_get_stack(
            ctx.as_ptr(),
            (*record).frames.as_mut_ptr().cast(),
            (STACK_FRAMES * size_of::<StackFrameRaw>()) as u32,
            (BPF_F_USER_STACK | BPF_F_USER_BUILD_ID) as u64,
        );
        (*record).frame_count = if bytes > 0 {
            bytes as u32 / size_of::<StackFrameRaw>() as u32
        } else {
            0
        };
        (*record)._pad = 0;
        read_exec_path(&mut (*record).exec_path);
    }
    entry.submit(wakeup::submit_flags(end_ns));
}

/// The executable's path as passed to `execve`: the kernel copies it to the top of the
/// user stack, right after the environment strings (`mm->env_end`). Left empty when the
/// layout is unknown or the read fails.
#[inline(always)]
fn read_exec_path(path: &mut [u8; EXEC_PATH_LEN]) {
    path[0] = 0;
    // SAFETY: a plain read of a global that user space sets before load.
    let config = unsafe { core::ptr::read_volatile(&STACK_CONFIG) };
    if config.task_mm == 0 {
        return;
    }
    let task = unsafe { bpf_get_current_task() };
    // SAFETY: bpf_probe_read_kernel and bpf_probe_read_user_str check every address and
    // fail cleanly; the latter writes at most `EXEC_PATH_LEN` bytes, NUL-terminated.
    unsafe {
        let Ok(mm) = bpf_probe_read_kernel((task + config.task_mm as u64) as *const u64) else {
            return;
        };
        if mm == 0 {
            return;
        }
        let Ok(env_end) = bpf_probe_read_kernel((mm + config.mm_env_end as u64) as *const u64)
        else {
            return;
        };
        if bpf_probe_read_user_str(
            path.as_mut_ptr().cast(),
            EXEC_PATH_LEN as u32,
            env_end as *const _,
        ) < 0
        {
            path[0] = 0;
        }
    }
}
