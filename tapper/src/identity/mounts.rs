//! Where this host mounts its cgroup hierarchies: the cgroup2 mount (pure v2 or the hybrid
//! `unified` one) and each v1 controller's mount, from `/proc/self/mountinfo`.

use std::{collections::HashMap, fs, path::PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    /// The cgroup2 mount point, if any.
    pub v2: Option<PathBuf>,
    /// Controllers cgroup2 offers (its root's `cgroup.controllers`); on a hybrid host the
    /// v1 hierarchies hold the rest.
    pub v2_controllers: Vec<String>,
    /// v1 mount points by controller (`memory`, `pids`, ...; `name=systemd` for named ones).
    pub v1: HashMap<String, PathBuf>,
}

impl CgroupMounts {
    /// This process's view of the mounts; none found (or no procfs) means no cgroups.
    pub fn read() -> Self {
        let mut mounts = fs::read_to_string("/proc/self/mountinfo")
            .map(|text| Self::parse(&text))
            .unwrap_or_default();
        if let Some(v2) = &mounts.v2 {
            let controllers = fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
            mounts.v2_controllers = controllers.split_whitespace().map(str::to_owned).collect();
        }
        mounts
    }

    /// Parses mountinfo lines: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS] - FSTYPE SRC SUPEROPTS`.
    pub fn parse(mountinfo: &str) -> Self {
        let mut mounts = Self::default();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mount_point) = left.split(' ').nth(4) else {
                continue;
            };
            let mount_point = PathBuf::from(unescape(mount_point));
            let mut right = right.split(' ');
            let (fstype, super_options) = (right.next(), right.nth(1).unwrap_or(""));
            match fstype {
                Some("cgroup2") => {
                    mounts.v2.get_or_insert(mount_point);
                }
                Some("cgroup") => {
                    for option in super_options.split(',') {
                        if is_controller(option) {
                            mounts
                                .v1
                                .entry(option.to_owned())
                                .or_insert_with(|| mount_point.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        mounts
    }

    /// The directory of `path` in the v1 hierarchy of `controller`.
    pub fn v1_dir(&self, controller: &str, path: &str) -> Option<PathBuf> {
        Some(self.v1.get(controller)?.join(path.trim_start_matches('/')))
    }

    /// The directory of `path` in the cgroup2 hierarchy.
    pub fn v2_dir(&self, path: &str) -> Option<PathBuf> {
        Some(self.v2.as_ref()?.join(path.trim_start_matches('/')))
    }

    /// Whether `controller`'s files are in the cgroup2 hierarchy (else in its v1 mount).
    pub fn v2_has(&self, controller: &str) -> bool {
        self.v2_controllers.iter().any(|c| c == controller)
    }
}

/// Super options of a v1 mount that name a hierarchy rather than a mount flag.
fn is_controller(option: &str) -> bool {
    !matches!(
        option,
        "rw" | "ro" | "" | "noprefix" | "xattr" | "cpuset_v2_mode"
    ) && !option.starts_with("release_agent=")
        && !option.starts_with("clone_children")
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4);
        match code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
            Some(byte) => {
                out.push(byte as char);
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:5 - cgroup2 cgroup2 rw,nsdelegate
28 25 0:25 / /sys/fs/cgroup/memory rw,nosuid shared:7 - cgroup cgroup rw,memory
29 25 0:26 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
32 25 0:29 / /tmp/a\\040b rw - cgroup cgroup rw,memory
";

    #[test]
    fn finds_hybrid_mounts() {
        let mounts = CgroupMounts::parse(HYBRID);
        assert_eq!(mounts.v2, Some("/sys/fs/cgroup/unified".into()));
        assert_eq!(mounts.v1["memory"], PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(
            mounts.v1["cpuacct"],
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(
            mounts.v1["name=systemd"],
            PathBuf::from("/sys/fs/cgroup/systemd")
        );
        assert!(!mounts.v1.contains_key("xattr") && !mounts.v1.contains_key("rw"));
        assert_eq!(
            mounts.v1_dir("pids", "/kubepods/x"),
            Some("/sys/fs/cgroup/pids/kubepods/x".into())
        );
        assert_eq!(unescape("/tmp/a\\040b"), "/tmp/a b");
    }

    #[test]
    fn finds_pure_v2_and_this_host() {
        let pure = CgroupMounts::parse("30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        assert_eq!(pure.v2_dir("/a"), Some("/sys/fs/cgroup/a".into()));
        assert!(pure.v1.is_empty());
        // Every Linux this runs on has at least one cgroup hierarchy, and each controller
        // is in one of them only.
        let here = CgroupMounts::read();
        assert!(here.v2.is_some() || !here.v1.is_empty(), "{here:?}");
        for controller in here.v1.keys() {
            assert!(!here.v2_has(controller), "{here:?}");
        }
    }
}
