//! cgroups a test makes under its own subtree, in the hierarchies it names (v1 controllers
//! and the cgroup2 mount): created with optional limits, removed bottom-up when dropped.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context;

/// The v1 controllers' mounts and the cgroup2 mount on this kind of host (hybrid).
pub const MEMORY: &str = "/sys/fs/cgroup/memory";
pub const PIDS: &str = "/sys/fs/cgroup/pids";
pub const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// One cgroup path (e.g. `/tapper-e2e-1/kubepods/...`) made in several hierarchies.
pub struct TestCgroup {
    /// The path as the kernel names it, with a leading `/`.
    pub path: String,
    /// The first segment, which this test owns and removes whole.
    top: String,
    mounts: Vec<PathBuf>,
}

impl TestCgroup {
    /// Makes `path` (which must start with a segment unique to this test) in each mount.
    pub fn create(path: &str, mounts: &[&str]) -> anyhow::Result<Self> {
        let top = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let cgroup = Self {
            path: path.to_owned(),
            top,
            mounts: mounts.iter().map(PathBuf::from).collect(),
        };
        for mount in &cgroup.mounts {
            let dir = cgroup.dir(mount);
            fs::create_dir_all(&dir).with_context(|| format!("making cgroup {}", dir.display()))?;
        }
        Ok(cgroup)
    }

    /// The cgroup's directory under `mount`.
    pub fn dir(&self, mount: &Path) -> PathBuf {
        mount.join(self.path.trim_start_matches('/'))
    }

    /// Writes a control file, e.g. (`MEMORY`, `memory.limit_in_bytes`, `268435456`).
    pub fn set(&self, mount: &str, file: &str, value: &str) -> anyhow::Result<()> {
        let target = self.dir(Path::new(mount)).join(file);
        fs::write(&target, value)
            .with_context(|| format!("writing {value} to {}", target.display()))
    }

    /// The `cgroup.procs` files a process writes `0` to in order to join this cgroup in
    /// the given mounts.
    pub fn procs_files(&self, mounts: &[&str]) -> Vec<PathBuf> {
        mounts
            .iter()
            .map(|m| self.dir(Path::new(m)).join("cgroup.procs"))
            .collect()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for mount in &self.mounts {
            remove_tree(&mount.join(&self.top));
        }
    }
}

/// Removes a cgroup directory and its children, deepest first (rmdir is how cgroups go).
pub fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// The pids in `cgroup.procs` of a cgroup directory.
pub fn procs(dir: &Path) -> Vec<u32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Removes `top` (a test's first path segment) from every hierarchy under /sys/fs/cgroup,
/// for cgroups a runtime made there on the test's behalf.
pub fn remove_everywhere(top: &str) {
    for mount in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        remove_tree(&mount.path().join(top));
    }
}
