//! Checks for what the kernel and this process offer: capabilities, kprobes, the
//! `__sys_socket` symbol. Each check returns the precise error to show.

use std::{fs, path::Path};

use caps::{CapSet, Capability};

use super::ProbeError;

pub const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe";
pub const KPROBE_TARGET: &str = "__sys_socket";

pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown kernel".into())
}

/// CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN, in the effective set.
pub fn check_privileges() -> Result<(), ProbeError> {
    let has = |cap| caps::has_cap(None, CapSet::Effective, cap).unwrap_or(false);
    if has(Capability::CAP_SYS_ADMIN) {
        return Ok(());
    }
    let missing: Vec<_> = [Capability::CAP_BPF, Capability::CAP_PERFMON]
        .into_iter()
        .filter(|&cap| !has(cap))
        .map(|cap| cap.to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ProbeError::Privileges {
            missing: missing.join(" and "),
        })
    }
}

/// Whether the kprobe pair can attach, and if not, why.
pub fn check_kprobes() -> Result<(), ProbeError> {
    if !Path::new(KPROBE_PMU).exists() {
        return Err(ProbeError::NoKprobes {
            path: KPROBE_PMU.into(),
            kernel: kernel_release(),
        });
    }
    let has_symbol = fs::read_to_string("/proc/kallsyms")
        .map(|syms| {
            syms.lines()
                .any(|line| line.split_whitespace().nth(2) == Some(KPROBE_TARGET))
        })
        // Unreadable kallsyms proves nothing; let attach decide.
        .unwrap_or(true);
    if has_symbol {
        Ok(())
    } else {
        Err(ProbeError::NoSysSocketSymbol {
            kernel: kernel_release(),
        })
    }
}
