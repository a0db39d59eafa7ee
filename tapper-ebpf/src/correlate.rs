//! The logic both probe pairs share: save arguments on entry, match them on return and
//! emit one event per failure, counting everything on the way.
use aya_ebpf::helpers::{
    bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
    bpf_get_current_uid_gid, bpf_ktime_get_ns,
};
use tapper_common::{COMM_LEN, ERRNO_SLOTS, PendingCall, ProbeKind, SocketFailure, counter};

use crate::maps::{COUNTERS, ERRNO_COUNTS, EVENTS, PENDING, bump};

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
pub fn on_exit(ret: i64, probe: ProbeKind) {
    // Successes stop here: their entry stays in the LRU map, where the thread's next call
    // overwrites it (and eviction bounds it), which keeps the common path to one map write.
    if ret >= 0 {
        return;
    }
    let end_ns = unsafe { bpf_ktime_get_ns() };
    let pid_tgid = bpf_get_current_pid_tgid();
    let call = PENDING.get_ptr(pid_tgid).map(|ptr| unsafe { *ptr });
    if call.is_some() {
        let _ = PENDING.remove(pid_tgid);
    } else {
        bump(&COUNTERS, counter::MISSES);
    }
    let errno = (-ret) as u64;
    bump(&COUNTERS, counter::FAILURES);
    let slot = if errno < ERRNO_SLOTS as u64 {
        errno as u32
    } else {
        ERRNO_SLOTS - 1
    };
    bump(&ERRNO_COUNTS, slot);

    let Some(mut entry) = EVENTS.reserve::<SocketFailure>(0) else {
        bump(&COUNTERS, counter::DROPS);
        return;
    };
    let (family, sock_type, protocol, start_ns, entry_seen) = match call {
        Some(c) => (c.family, c.sock_type, c.protocol, c.start_ns, 1),
        None => (-1, -1, -1, end_ns, 0),
    };
    let uid_gid = bpf_get_current_uid_gid();
    entry.write(SocketFailure {
        end_ns,
        duration_ns: end_ns - start_ns,
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        uid: uid_gid as u32,
        gid: (uid_gid >> 32) as u32,
        family,
        sock_type,
        protocol,
        errno: errno as i32,
        comm: bpf_get_current_comm().unwrap_or([0u8; COMM_LEN]),
        probe: probe as u8,
        entry_seen,
        _pad: [0; 6],
    });
    entry.submit(0);
}
