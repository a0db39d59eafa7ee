//! A seccomp filter a workload thread installs on itself, the way container runtimes deny
//! calls: `socket(AF_INET6, ...)` returns EACCES (SECCOMP_RET_ERRNO) without entering the
//! system call; every other call is allowed.

use std::collections::BTreeMap;

use anyhow::Context;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// The family the filter denies, and the errno it answers with.
pub const DENIED_FAMILY: i32 = libc::AF_INET6;
pub const DENIED_ERRNO: i32 = libc::EACCES;

/// Installs the filter on the calling thread only (seccomp filters are per thread; it also
/// sets no_new_privs, which unprivileged installs need).
pub fn deny_inet6_sockets_in_this_thread() -> anyhow::Result<()> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| anyhow::anyhow!("seccomp on {}: {e:?}", std::env::consts::ARCH))?;
    let rule = SeccompRule::new(vec![SeccompCondition::new(
        0,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Eq,
        DENIED_FAMILY as u64,
    )?])?;
    let filter = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_socket, vec![rule])]),
        SeccompAction::Allow,
        SeccompAction::Errno(DENIED_ERRNO as u32),
        arch,
    )?;
    let program: BpfProgram = filter.try_into()?;
    seccompiler::apply_filter(&program).context("installing the seccomp filter")
}
