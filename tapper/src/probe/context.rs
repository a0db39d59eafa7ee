//! Where the failing task's context lies (`CONTEXT_LAYOUT`), from the kernel's BTF: each
//! part whose offsets are all found is read by the kernel, the others are left out.

use tapper_common::{ContextLayout, context};

use super::{ProbeError, btf::KernelBtf};

/// Finds one part's offsets, writing them into the layout.
type FindPart<'a> = &'a dyn Fn(&mut ContextLayout) -> Result<(), ProbeError>;

/// The layout of every part this kernel's BTF describes; a part it lacks (a kernel without
/// seccomp, say) is logged and left unread.
pub fn context_layout(btf: &KernelBtf) -> ContextLayout {
    let mut layout = ContextLayout::NONE;
    let parts: [(u32, &str, FindPart<'_>); 6] = [
        (context::NOFILE, "descriptor limits", &|l| nofile(btf, l)),
        (context::OPEN_FDS, "open descriptors", &|l| open_fds(btf, l)),
        (context::CAP_EFFECTIVE, "capabilities", &|l| {
            l.task_cred = btf.member_offset("task_struct", "cred")?;
            l.cred_cap_effective = btf.member_offset("cred", "cap_effective")?;
            Ok(())
        }),
        (context::SECCOMP, "seccomp mode", &|l| {
            l.task_seccomp_mode = btf.member_offset("task_struct", "seccomp")?
                + btf.member_offset("seccomp", "mode")?;
            Ok(())
        }),
        (context::EXE_NAME, "exe name", &|l| exe_name(btf, l)),
        (context::CMDLINE, "arguments", &|l| {
            l.task_mm = btf.member_offset("task_struct", "mm")?;
            l.mm_arg_start = btf.member_offset("mm_struct", "arg_start")?;
            l.mm_arg_end = btf.member_offset("mm_struct", "arg_end")?;
            Ok(())
        }),
    ];
    for (bit, what, find) in parts {
        match find(&mut layout) {
            Ok(()) => layout.valid |= bit,
            Err(err) => tracing::info!("failures will carry no {what} from the kernel: {err}"),
        }
    }
    layout
}

fn nofile(btf: &KernelBtf, l: &mut ContextLayout) -> Result<(), ProbeError> {
    let nofile = btf.member_offset("signal_struct", "rlim")?
        + libc::RLIMIT_NOFILE * btf.struct_size("rlimit")?;
    l.task_signal = btf.member_offset("task_struct", "signal")?;
    l.signal_nofile_cur = nofile + btf.member_offset("rlimit", "rlim_cur")?;
    l.signal_nofile_max = nofile + btf.member_offset("rlimit", "rlim_max")?;
    Ok(())
}

fn open_fds(btf: &KernelBtf, l: &mut ContextLayout) -> Result<(), ProbeError> {
    l.task_files = btf.member_offset("task_struct", "files")?;
    l.files_fdt = btf.member_offset("files_struct", "fdt")?;
    l.fdt_max_fds = btf.member_offset("fdtable", "max_fds")?;
    l.fdt_open_fds = btf.member_offset("fdtable", "open_fds")?;
    Ok(())
}

fn exe_name(btf: &KernelBtf, l: &mut ContextLayout) -> Result<(), ProbeError> {
    l.task_mm = btf.member_offset("task_struct", "mm")?;
    l.mm_exe_file = btf.member_offset("mm_struct", "exe_file")?;
    l.file_dentry = btf.member_offset("file", "f_path")? + btf.member_offset("path", "dentry")?;
    l.dentry_name = btf.member_offset("dentry", "d_name")? + btf.member_offset("qstr", "name")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This host's kernel has BTF (a precondition of the project's machines) with every part.
    #[test]
    fn finds_every_part_in_the_running_kernel() {
        let btf = KernelBtf::open().unwrap();
        let layout = context_layout(&btf);
        assert_eq!(layout.valid, context::ALL);
        // rlim_max follows rlim_cur in struct rlimit.
        assert_eq!(layout.signal_nofile_max, layout.signal_nofile_cur + 8);
        assert_eq!(layout.mm_arg_end, layout.mm_arg_start + 8);
        for offset in [
            layout.task_signal,
            layout.task_files,
            layout.task_cred,
            layout.task_mm,
        ] {
            assert!(offset > 0);
        }
    }
}
