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

/// The quota of the cgroup at `path` (`errno` adds the system file table for ENFILE);
/// None when nothing could be read.
pub fn read(mounts: &CgroupMounts, path: &str, errno: i32) -> Option<Quota> {
    let value = |source: &Source| read_value(mounts, path, source);
    let (file_nr, file_max) = if errno == libc::ENFILE {
        system_file_handles()
    } else {
        (None, None)
    };
    let quota = Quota {
        memory_max: value(&MEMORY_MAX),
        memory_current: value(&MEMORY_CURRENT),
        pids_max: value(&PIDS_MAX),
        pids_current: value(&PIDS_CURRENT),
        file_nr,
        file_max,
    };
    (quota != Quota::default()).then_some(quota)
}

/// The cgroup2 file when it exists (its controller is enabled there), else the v1 one.
fn read_value(mounts: &CgroupMounts, path: &str, source: &Source) -> Option<u64> {
    let v2 = mounts.v2_dir(path).map(|dir| dir.join(source.v2_file));
    if let Some(text) = v2.and_then(|file| read_text(&file)) {
        return parse_limit(&text);
    }
    let v1 = mounts.v1_dir(source.controller, path)?.join(source.v1_file);
    parse_limit(&read_text(&v1)?).filter(|v| *v < V1_UNLIMITED_FROM)
}

fn read_text(file: &Path) -> Option<String> {
    fs::read_to_string(file).ok()
}

/// A number, or `max` (no limit) as None.
fn parse_limit(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// `/proc/sys/fs/file-nr` (allocated, free, max) and `/proc/sys/fs/file-max`.
fn system_file_handles() -> (Option<u64>, Option<u64>) {
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
    fn enfile_adds_the_system_file_table() {
        let mounts = CgroupMounts::read();
        let quota = read(&mounts, "/", libc::ENFILE).unwrap();
        let (nr, max) = (quota.file_nr.unwrap(), quota.file_max.unwrap());
        assert!(nr > 0 && nr <= max, "{nr} of {max}");
        let other = read(&mounts, "/", libc::EMFILE);
        assert!(other.is_none_or(|q| q.file_nr.is_none() && q.file_max.is_none()));
    }
}
