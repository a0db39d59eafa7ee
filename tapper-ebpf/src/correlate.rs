//! The logic both probe pairs share: save arguments on entry, match them on return and
//! report one event per failure. A failed return without its entry (a seccomp-denied call
//! never enters) takes its arguments from the saved registers instead.
use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
};
use tapper_common::{PendingCall, ProbeKind, counter, source};

use crate::{
    maps::{COUNTERS, PENDING, bump},
    regs::saved_args,
    report::{Args, NO_START, report_failure},
    warn::on_success,
};

#[inline(always)]
pub fn on_enter(family: i32, sock_type: i32, protocol: i32) {
    bump(&COUNTERS, counter::CALLS);
    let call = PendingCall {
        family,
        sock_type,
        protocol,
        _pad: 0,
        start_ns: unsafe { bpf_ktime_get_ns() },
    };
    // A full LRU evicts its oldest entry, so insert only fails on kernel errors; the
    // return side then counts a miss.
    let _ = PENDING.insert(bpf_get_current_pid_tgid(), call, 0);
}

#[inline(always)]
pub fn on_exit<const ATOMIC: bool>(ctx: &impl EbpfContext, ret: i64, probe: ProbeKind) {
    // Successes stop here: their entry stays in the LRU map, where the thread's next call
    // overwrites it (and eviction bounds it), which keeps the common path to one map write.
    if ret >= 0 {
        on_success(ret);
        return;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let call = PENDING.get_ptr(pid_tgid).map(|ptr| unsafe { *ptr });
    let (args, start_ns) = match call {
        Some(c) => {
            let _ = PENDING.remove(pid_tgid);
            let args = Args {
                family: c.family,
                sock_type: c.sock_type,
                protocol: c.protocol,
            };
            (Some(args), c.start_ns)
        }
        None => {
            bump(&COUNTERS, counter::MISSES);
            (saved_args(), NO_START)
        }
    };
    report_failure::<ATOMIC>(ctx, (-ret) as u64, args, start_ns, probe, source::SYSCALL);
}
