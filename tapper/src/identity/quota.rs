//! Quota context of a cgroup, read fresh for each event: memory and pids limits and usage
//! from the cgroup2 files, or the v1 controllers' same path, and for ENFILE the system's
//! file handles against `file-max`.

use std::{fs, path::Path};

use tapper_proto::v1::Quota;

use super::mounts::CgroupMounts;

/// v1 writes "no memory limit" as the page counter's maximum (about 2^63 rounded down to
/// a page); anything this large is no limit.
const V1_UNLIMITED_FROM: u64 = 1 << 62;

/// One quota value: the cgroup2 file name, and the v1 controller and file holding the same.
struct Source {
    v2_file: &'static str,
    controller: &'static str,
    v1_file: &'static str,
}

const MEMORY_MAX: Source = Source {
    v2_file: "memory.max",
    controller: "memory",
    v1_file: "memory.limit_in_bytes",
};
const MEMORY_CURRENT: Source = Source {
    v2_file: "memory.current",
    controller: "memory",
    v1_file: "memory.usage_in_bytes",
};
const PIDS_MAX: Source = Source {
    v2_file: "pids.max",
    controller: "pids",
    v1_file: "pids.max",
};
const PIDS_CURRENT: Source = Source {
    v2_file: "pids.current",
    controller: "pids",
    v1_file: "pids.current",
};

/// The memory and pids quota of the cgroup at `path`; None when nothing could be read.
pub fn read(mounts: &CgroupMounts, path: &str) -> Option<Quota> {
    let value = |source: &Source| read_value(mounts, path, source);
    let quota = Quota {
        memory_max: value(&MEMORY_MAX),
        memory_current: value(&MEMORY_CURRENT),
        pids_max: value(&PIDS_MAX),
        pids_current: value(&PIDS_CURRENT),
        ..Default::default()
    };
    (quota != Quota::default()).then_some(quota)
}

/// The cgroup2 file where cgroup2 has the controller, else the v1 controller's file.
fn read_value(mounts: &CgroupMounts, path: &str, source: &Source) -> Option<u64> {
    if mounts.v2_has(source.controller) {
        let file = mounts.v2_dir(path)?.join(source.v2_file);
        return parse_limit(&read_text(&file)?);
    }
    let file = mounts.v1_dir(source.controller, path)?.join(source.v1_file);
    parse_limit(&read_text(&file)?).filter(|v| *v < V1_UNLIMITED_FROM)
}

fn read_text(file: &Path) -> Option<String> {
    fs::read_to_string(file).ok()
}

/// A number, or `max` (no limit) as None.
fn parse_limit(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// For ENFILE: the system's allocated file handles (first field of
/// `/proc/sys/fs/file-nr`) and `/proc/sys/fs/file-max`.
pub fn system_file_handles() -> (Option<u64>, Option<u64>) {
    let first_number = |file: &str| {
        let text = read_text(Path::new(file))?;
        text.split_whitespace().next()?.parse().ok()
    };
    (
        first_number("/proc/sys/fs/file-nr"),
        first_number("/proc/sys/fs/file-max"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_max_is_none() {
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("1048576\n"), Some(1_048_576));
        assert_eq!(parse_limit(""), None);
    }

    #[test]
    fn the_system_file_table_is_read() {
        let (nr, max) = system_file_handles();
        let (nr, max) = (nr.unwrap(), max.unwrap());
        assert!(nr > 0 && nr <= max, "{nr} of {max}");
    }
}
