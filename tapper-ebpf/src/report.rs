//! The one place a failure is counted and emitted: per-errno counters, the rate limit,
//! then one record in the ring buffer with the failing task's context (`context`) and,
//! when stacks are on, the caller's user stack (`stack`), or a counted drop; waking user
//! space sparingly.
use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_uid_gid, bpf_ktime_get_ns,
    },
};
use tapper_common::{COMM_LEN, ERRNO_SLOTS, ProbeKind, SocketFailure, TaskContext, counter};

use crate::{
    context,
    maps::{COUNTERS, ERRNO_COUNTS, EVENTS, bump, bump_by},
    rate_limit, stack, wakeup,
};

/// The entry time of a call whose entry was not seen.
pub const NO_START: u64 = 0;

/// `socket()`'s arguments as the call passed them.
#[derive(Clone, Copy)]
pub struct Args {
    pub family: i32,
    pub sock_type: i32,
    pub protocol: i32,
}

/// Counts one failure with `errno` (positive) and emits its event. `args` is `None` when
/// the probe could not learn the arguments; `start_ns` is the entry time, or
/// [`NO_START`] (a plain integer keeps the verifier's view of every register defined).
/// `ctx` is the failing program's context (for the user stack when stacks are on).
/// `ATOMIC` picks the rate limit's build (`rate_limit`).
#[inline(always)]
pub fn report_failure<const ATOMIC: bool>(
    ctx: &impl EbpfContext,
    errno: u64,
    args: Option<Args>,
    start_ns: u64,
    probe: ProbeKind,
    source: u8,
) {
    let end_ns = unsafe { bpf_ktime_get_ns() };
    bump(&COUNTERS, counter::FAILURES);
    let slot = if errno < ERRNO_SLOTS as u64 {
        errno as u32
    } else {
        ERRNO_SLOTS - 1
    };
    bump(&ERRNO_COUNTS, slot);
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(suppressed) = rate_limit::admit::<ATOMIC>((pid_tgid >> 32) as u32, errno, end_ns)
    else {
        return;
    };

    let known = args.unwrap_or(Args {
        family: -1,
        sock_type: -1,
        protocol: -1,
    });
    let uid_gid = bpf_get_current_uid_gid();
    let cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    let comm = bpf_get_current_comm().unwrap_or([0u8; COMM_LEN]);
    // Written in place in the ring buffer: the record is too large for the BPF stack.
    let fill = |out: &mut SocketFailure| {
        *out = SocketFailure {
            end_ns,
            duration_ns: if start_ns == NO_START {
                0
            } else {
                end_ns - start_ns
            },
            cgroup_id,
            tgid: (pid_tgid >> 32) as u32,
            tid: pid_tgid as u32,
            uid: uid_gid as u32,
            gid: (uid_gid >> 32) as u32,
            family: known.family,
            sock_type: known.sock_type,
            protocol: known.protocol,
            errno: errno as i32,
            comm,
            probe: probe as u8,
            has_args: args.is_some() as u8,
            has_duration: (start_ns != NO_START) as u8,
            source,
            suppressed,
            context: TaskContext::EMPTY,
        };
        context::read(&mut out.context);
    };
    if stack::enabled() {
        stack::emit_with_stack(ctx, end_ns, suppressed, fill);
    } else {
        emit(end_ns, suppressed, fill);
    }
}

/// Emits the bare record `fill` writes, or counts a drop (of every failure the record
/// stood for).
#[inline(always)]
fn emit(end_ns: u64, suppressed: u32, fill: impl FnOnce(&mut SocketFailure)) {
    let Some(mut entry) = EVENTS.reserve::<SocketFailure>(0) else {
        bump_by(&COUNTERS, counter::DROPS, 1 + suppressed as u64);
        return;
    };
    // SAFETY: reserved ring-buffer memory of the record's size, which `fill` writes whole.
    fill(unsafe { &mut *entry.as_mut_ptr() });
    entry.submit(wakeup::submit_flags(end_ns));
}
