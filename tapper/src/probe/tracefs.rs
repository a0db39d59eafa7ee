//! Finds (or mounts) tracefs and reads the syscall tracepoints' field offsets from their
//! `format` files, so the eBPF side never hard-codes a kernel's record layout.

use std::{
    fs,
    path::{Path, PathBuf},
};

use nix::mount::{MsFlags, mount};
use tapper_common::TracepointLayout;

use super::{ProbeError, features::kernel_release};

const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// The tracefs root, mounting it at /sys/kernel/tracing when no mount is found.
pub fn tracefs_root() -> Result<PathBuf, ProbeError> {
    for root in [TRACEFS, DEBUGFS_TRACING] {
        if Path::new(root).join("events").is_dir() {
            return Ok(root.into());
        }
    }
    tracing::info!("tracefs is not mounted; mounting it at {TRACEFS}");
    mount(
        Some("tracefs"),
        TRACEFS,
        Some("tracefs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|source| ProbeError::Tracefs {
        path: TRACEFS.into(),
        source,
    })?;
    Ok(TRACEFS.into())
}

/// Reads the offsets of `family`, `type`, `protocol` and `ret` in the socket tracepoints.
pub fn socket_layout(root: &Path) -> Result<TracepointLayout, ProbeError> {
    let events = root.join("events/syscalls");
    let enter = events.join("sys_enter_socket/format");
    let exit = events.join("sys_exit_socket/format");
    if !enter.exists() || !exit.exists() {
        return Err(ProbeError::NoSyscallTracepoints {
            path: enter,
            kernel: kernel_release(),
        });
    }
    let (enter_text, exit_text) = (read_format(&enter)?, read_format(&exit)?);
    let field = |text: &str, path: &Path, name: &str| field_offset(text, path, name, 8);
    Ok(TracepointLayout {
        enter_family: field(&enter_text, &enter, "family")?,
        enter_type: field(&enter_text, &enter, "type")?,
        enter_protocol: field(&enter_text, &enter, "protocol")?,
        exit_ret: field(&exit_text, &exit, "ret")?,
    })
}

/// The text of a tracepoint's `format` file.
pub fn read_format(path: &Path) -> Result<String, ProbeError> {
    fs::read_to_string(path).map_err(|err| ProbeError::TracepointFormat {
        path: path.into(),
        reason: err.to_string(),
    })
}

/// The offset of the `size`-byte field `name` in the tracepoint format `text` (read from
/// `path`), or an error naming the field.
pub fn field_offset(text: &str, path: &Path, name: &str, size: u32) -> Result<u32, ProbeError> {
    find_field(text, name)
        .filter(|&(_, found)| found == size)
        .map(|(offset, _)| offset)
        .ok_or_else(|| ProbeError::TracepointFormat {
            path: path.into(),
            reason: format!("no {size}-byte field `{name}`"),
        })
}

/// The offset and size of a field in a tracepoint format, from a line such as
/// `field:int family; offset:16; size:8; signed:0;` (tab-separated).
fn find_field(format: &str, name: &str) -> Option<(u32, u32)> {
    format.lines().find_map(|line| {
        let mut parts = line.trim().split(';').map(str::trim);
        let decl = parts.next()?.strip_prefix("field:")?;
        if decl.rsplit([' ', '*']).next()? != name {
            return None;
        }
        let mut offset = None;
        let mut size = None;
        for part in parts {
            if let Some(v) = part.strip_prefix("offset:") {
                offset = v.parse().ok();
            } else if let Some(v) = part.strip_prefix("size:") {
                size = v.parse::<u32>().ok();
            }
        }
        Some((offset?, size?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTER: &str = "name: sys_enter_socket
ID: 1609
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int family;\toffset:16;\tsize:8;\tsigned:0;
\tfield:int type;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int protocol;\toffset:32;\tsize:8;\tsigned:0;

print fmt: \"family: 0x%08lx, type: 0x%08lx, protocol: 0x%08lx\", ...
";

    #[test]
    fn reads_offsets_from_a_format() {
        let path = Path::new("format");
        let offset = |text, name| field_offset(text, path, name, 8).ok();
        assert_eq!(offset(ENTER, "family"), Some(16));
        assert_eq!(offset(ENTER, "type"), Some(24));
        assert_eq!(offset(ENTER, "protocol"), Some(32));
        assert_eq!(
            offset(ENTER, "common_type"),
            None,
            "a 2-byte field is not an 8-byte one"
        );
        assert_eq!(field_offset(ENTER, path, "common_type", 2).ok(), Some(0));
        let err = field_offset(ENTER, path, "ret", 8).unwrap_err();
        assert!(err.to_string().contains("no 8-byte field `ret`"), "{err}");
        assert_eq!(
            offset("\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;", "ret"),
            Some(16)
        );
        assert_eq!(
            find_field("\tfield:void * req;\toffset:16;\tsize:8;\tsigned:0;", "req"),
            Some((16, 8))
        );
    }

    /// Guards the usual x86_64 layout (family at 16, type at 24, protocol at 32, ret at 16)
    /// against the running kernel.
    #[test]
    fn this_kernel_has_the_documented_layout() {
        let root = tracefs_root().expect("tracefs (the tests run as root)");
        let layout = socket_layout(&root).expect("socket tracepoint formats");
        assert_eq!(
            layout,
            TracepointLayout {
                enter_family: 16,
                enter_type: 24,
                enter_protocol: 32,
                exit_ret: 16
            }
        );
    }
}
