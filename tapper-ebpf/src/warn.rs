//! Early warning of EMFILE on a successful `socket()`: the returned descriptor is a lower
//! bound of the process's fd count, so above a floor it is compared with the soft
//! `RLIMIT_NOFILE`, and a crossing of the warn ratio emits one warning per interval.
use aya_ebpf::helpers::{
    bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
    bpf_get_current_task, bpf_ktime_get_ns, bpf_probe_read_kernel,
};
use tapper_common::{COMM_LEN, NofileWarning, WARN_RATIO_ONE, WarnConfig};

use crate::maps::{WARNED, WARNINGS};

/// Overwritten by user space before load; the default keeps warnings off.
#[unsafe(no_mangle)]
static WARN_CONFIG: WarnConfig = WarnConfig::OFF;

/// Called with a successful call's descriptor; for most calls one load and one compare.
#[inline(always)]
pub fn on_success(fd: i64) {
    // SAFETY: a plain read of a global that user space sets before load.
    let floor = unsafe { core::ptr::read_volatile(&WARN_CONFIG.floor) };
    if (fd as u64) < floor as u64 {
        return;
    }
    let _ = check_nofile(fd as u64);
}

#[inline(always)]
fn check_nofile(fd: u64) -> Result<(), i64> {
    // SAFETY: as above.
    let config = unsafe { core::ptr::read_volatile(&WARN_CONFIG) };
    let task = unsafe { bpf_get_current_task() };
    // SAFETY: bpf_probe_read_kernel checks each address and fails cleanly.
    let signal: u64 =
        unsafe { bpf_probe_read_kernel((task + config.task_signal as u64) as *const u64) }?;
    let limit: u64 =
        unsafe { bpf_probe_read_kernel((signal + config.signal_nofile_cur as u64) as *const u64) }?;
    // Unlimited (or beyond any real fd table): no exhaustion ahead. Below 2^32 neither
    // product overflows.
    if limit >> 32 != 0 || fd >> 32 != 0 {
        return Ok(());
    }
    if (fd + 1) * (WARN_RATIO_ONE as u64) < limit * config.ratio as u64 {
        return Ok(());
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: the value is copied out at once.
    if let Some(last) = unsafe { WARNED.get(tgid) }
        && now.wrapping_sub(*last) < config.interval_ns
    {
        return Ok(());
    }
    WARNED.insert(tgid, now, 0)?;
    let Some(mut entry) = WARNINGS.reserve::<NofileWarning>(0) else {
        return Ok(());
    };
    entry.write(NofileWarning {
        ts_ns: now,
        limit,
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        tgid,
        fd: fd as u32,
        comm: bpf_get_current_comm().unwrap_or([0u8; COMM_LEN]),
    });
    entry.submit(0);
    Ok(())
}
