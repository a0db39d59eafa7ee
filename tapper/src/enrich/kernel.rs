//! What the kernel read in the failing task (`TaskContext`): the limits, descriptor count,
//! capabilities and seccomp mode at the failure, and the exe name and argument prefix
//! that stand in for `/proc` once the process is gone.

use tapper_common::{TaskContext, context};
use tapper_proto::v1::Limits;

/// The kernel's values an event takes, and the `from_kernel` names of those that stand
/// in for `/proc`.
#[derive(Debug, Default, PartialEq)]
pub struct KernelFields {
    pub exe: Option<String>,
    pub cmdline: Option<String>,
    /// The arguments were longer than the kernel's prefix.
    pub cmdline_cut: bool,
    pub limits: Option<Limits>,
    pub cap_effective: Option<u64>,
    pub seccomp_mode: String,
    pub from_kernel: Vec<String>,
}

/// Whether `/proc` must be asked for the limits: the kernel read neither its limits nor
/// its descriptor count.
pub fn needs_proc_limits(ctx: &TaskContext) -> bool {
    let both = context::NOFILE | context::OPEN_FDS;
    ctx.valid & both != both
}

/// Merges the kernel's reading with what `/proc` gave (`proc_exe`, `proc_cmdline`,
/// `proc_limits`, each `None` where it could not be read). Exe and cmdline come from
/// `/proc` when it had them (full path, whole command line), else from the kernel; each
/// limit comes from the kernel when it read it (its value at the failure), else from
/// `/proc`. `from_kernel` lists the fields the kernel filled, in the proto's order.
pub fn merge(
    ctx: &TaskContext,
    proc_exe: Option<String>,
    proc_cmdline: Option<String>,
    proc_limits: Option<Limits>,
) -> KernelFields {
    let has = |bit: u32| ctx.valid & bit != 0;
    let mut from_kernel = Vec::new();
    let mut take = |name: &str, value: Option<String>| {
        if value.is_some() {
            from_kernel.push(name.to_owned());
        }
        value
    };
    let exe = proc_exe.or_else(|| take("exe", exe_name(ctx)));
    let proc_had_cmdline = proc_cmdline.is_some();
    let cmdline = proc_cmdline.or_else(|| take("cmdline", cmdline_prefix(ctx)));
    let cmdline_cut = !proc_had_cmdline && cmdline.is_some() && has(context::CMDLINE_CUT);

    let proc_limits = proc_limits.unwrap_or_default();
    let limit = |value: u64| (value != u64::MAX).then_some(value);
    let mut pick = |name: &str, kernel: Option<u64>, proc: Option<u64>| match kernel {
        Some(value) => {
            from_kernel.push(name.to_owned());
            Some(value)
        }
        None => proc,
    };
    let nofile = has(context::NOFILE);
    let limits = Limits {
        nofile_soft: pick(
            "limits.nofile_soft",
            nofile.then_some(ctx.nofile_soft).and_then(limit),
            proc_limits.nofile_soft,
        ),
        nofile_hard: pick(
            "limits.nofile_hard",
            nofile.then_some(ctx.nofile_hard).and_then(limit),
            proc_limits.nofile_hard,
        ),
        open_fds: pick(
            "limits.open_fds",
            has(context::OPEN_FDS).then_some(ctx.open_fds.into()),
            proc_limits.open_fds,
        ),
    };
    let any_limit =
        limits.nofile_soft.is_some() || limits.nofile_hard.is_some() || limits.open_fds.is_some();
    KernelFields {
        exe,
        cmdline,
        cmdline_cut,
        limits: any_limit.then_some(limits),
        cap_effective: has(context::CAP_EFFECTIVE).then_some(ctx.cap_effective),
        seccomp_mode: if has(context::SECCOMP) {
            seccomp_mode_name(ctx.seccomp_mode)
        } else {
            String::new()
        },
        from_kernel,
    }
}

/// The executable's file name up to its NUL.
fn exe_name(ctx: &TaskContext) -> Option<String> {
    if ctx.valid & context::EXE_NAME == 0 {
        return None;
    }
    let name = crate::event::comm_text(&ctx.exe_name);
    (!name.is_empty()).then_some(name)
}

/// The argument prefix with the NULs between arguments as spaces, as `/proc`'s are joined.
fn cmdline_prefix(ctx: &TaskContext) -> Option<String> {
    if ctx.valid & context::CMDLINE == 0 {
        return None;
    }
    let len = (ctx.cmdline_len as usize).min(ctx.cmdline.len());
    let args: Vec<_> = ctx.cmdline[..len]
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(String::from_utf8_lossy)
        .collect();
    (!args.is_empty()).then(|| args.join(" "))
}

/// `seccomp.mode` as the event names it.
fn seccomp_mode_name(mode: u32) -> String {
    match mode {
        0 => "disabled".into(),
        1 => "strict".into(),
        2 => "filter".into(),
        other => format!("mode {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapper_common::{CMDLINE_PREFIX_LEN, EXE_NAME_LEN};

    fn kernel_context() -> TaskContext {
        let mut ctx = TaskContext::EMPTY;
        ctx.valid = context::ALL | context::CMDLINE_CUT;
        ctx.nofile_soft = 64;
        ctx.nofile_hard = u64::MAX;
        ctx.open_fds = 64;
        ctx.cap_effective = 1 << 13;
        ctx.seccomp_mode = 2;
        ctx.exe_name[..8].copy_from_slice(b"emfile\0x");
        let args = b"./emfile\0--count\0many\0";
        ctx.cmdline[..args.len()].copy_from_slice(args);
        ctx.cmdline_len = args.len() as u32;
        ctx
    }

    #[test]
    fn a_gone_process_gets_the_kernel_values_and_says_so() {
        let fields = merge(&kernel_context(), None, None, None);
        assert_eq!(fields.exe.as_deref(), Some("emfile"));
        assert_eq!(fields.cmdline.as_deref(), Some("./emfile --count many"));
        assert!(fields.cmdline_cut);
        let limits = fields.limits.unwrap();
        // An unlimited hard limit stays absent, as /proc's "unlimited" does.
        assert_eq!(
            (limits.nofile_soft, limits.nofile_hard, limits.open_fds),
            (Some(64), None, Some(64))
        );
        assert_eq!(
            fields.from_kernel,
            ["exe", "cmdline", "limits.nofile_soft", "limits.open_fds"]
        );
        assert_eq!(fields.cap_effective, Some(1 << 13));
        assert_eq!(fields.seccomp_mode, "filter");
    }

    #[test]
    fn proc_wins_for_exe_and_cmdline_the_kernel_for_limits() {
        let proc_limits = Limits {
            nofile_soft: Some(1024),
            nofile_hard: Some(4096),
            open_fds: Some(3),
        };
        let fields = merge(
            &kernel_context(),
            Some("/usr/bin/emfile".into()),
            Some("emfile --count 64 --long".into()),
            Some(proc_limits),
        );
        assert_eq!(fields.exe.as_deref(), Some("/usr/bin/emfile"));
        assert_eq!(fields.cmdline.as_deref(), Some("emfile --count 64 --long"));
        assert!(!fields.cmdline_cut, "/proc's whole command line is not cut");
        let limits = fields.limits.unwrap();
        assert_eq!(
            (limits.nofile_soft, limits.nofile_hard, limits.open_fds),
            (Some(64), Some(4096), Some(64))
        );
        assert_eq!(
            fields.from_kernel,
            ["limits.nofile_soft", "limits.open_fds"]
        );
    }

    #[test]
    fn nothing_read_leaves_proc_alone() {
        let ctx = TaskContext::EMPTY;
        assert!(needs_proc_limits(&ctx));
        assert!(!needs_proc_limits(&kernel_context()));
        let fields = merge(&ctx, None, None, None);
        assert_eq!(fields, KernelFields::default());
    }

    #[test]
    fn full_buffers_stay_in_bounds() {
        let mut ctx = TaskContext::EMPTY;
        ctx.valid = context::EXE_NAME | context::CMDLINE;
        ctx.exe_name = [b'e'; EXE_NAME_LEN];
        ctx.cmdline = [b'a'; CMDLINE_PREFIX_LEN];
        ctx.cmdline_len = u32::MAX;
        let fields = merge(&ctx, None, None, None);
        assert_eq!(fields.exe.unwrap().len(), EXE_NAME_LEN);
        assert_eq!(fields.cmdline.unwrap().len(), CMDLINE_PREFIX_LEN);
        assert_eq!(fields.seccomp_mode, "");
        assert_eq!(fields.cap_effective, None);
    }
}
