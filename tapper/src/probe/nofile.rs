//! The kernel side's nofile warning settings (`WARN_CONFIG`): the floor, ratio and
//! interval from the flags, and where a task's soft `RLIMIT_NOFILE` lies, from BTF.

use std::time::Duration;

use tapper_common::{WARN_RATIO_ONE, WarnConfig};

use super::{ProbeError, btf::KernelBtf};

/// What the flags ask of nofile warnings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NofileWarn {
    /// Warn when `fd + 1` reaches this share of the soft limit, in (0, 1].
    pub ratio: f64,
    /// Descriptors below this number never warn.
    pub floor: u32,
    /// At most one warning per process per interval.
    pub interval: Duration,
}

/// The `WARN_CONFIG` for `warn`, reading `task_struct.signal` and
/// `signal_struct.rlim[RLIMIT_NOFILE].rlim_cur` from the kernel's BTF.
pub fn warn_config(btf: &KernelBtf, warn: &NofileWarn) -> Result<WarnConfig, ProbeError> {
    let rlimit_size = btf.struct_size("rlimit")?;
    let nofile = btf.member_offset("signal_struct", "rlim")?
        + libc::RLIMIT_NOFILE * rlimit_size
        + btf.member_offset("rlimit", "rlim_cur")?;
    Ok(WarnConfig {
        interval_ns: warn.interval.as_nanos().min(u64::MAX as u128) as u64,
        floor: warn.floor,
        ratio: ((warn.ratio * WARN_RATIO_ONE as f64).round() as u32).clamp(1, WARN_RATIO_ONE),
        task_signal: btf.member_offset("task_struct", "signal")?,
        signal_nofile_cur: nofile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This host's kernel has BTF (a precondition of the project's machines).
    #[test]
    fn finds_the_soft_nofile_limit_in_the_running_kernel() {
        let btf = KernelBtf::open().unwrap();
        let warn = NofileWarn {
            ratio: 0.8,
            floor: 64,
            interval: Duration::from_secs(10),
        };
        let config = warn_config(&btf, &warn).unwrap();
        assert_eq!(config.ratio, 52_429);
        assert_eq!(config.interval_ns, 10_000_000_000);
        // struct rlimit is two unsigned longs; rlim[] sits well inside signal_struct.
        assert_eq!(btf.struct_size("rlimit").unwrap(), 16);
        let rlim = btf.member_offset("signal_struct", "rlim").unwrap();
        assert_eq!(config.signal_nofile_cur, rlim + 16 * libc::RLIMIT_NOFILE);
        assert!(config.task_signal > 0);
    }
}
