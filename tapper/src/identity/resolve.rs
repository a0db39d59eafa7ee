//! A caller's cgroup path: the v2 id the kernel recorded, opened by handle on the cgroup2
//! mount (one system call, cached by id), or in v1 and hybrid setups the v1 path from
//! `/proc/<pid>/cgroup`.

use std::{
    collections::HashMap,
    fs::File,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
    sync::Arc,
};

/// `FILEID_KERNFS`: the handle type of kernfs (cgroupfs) files, whose 8 handle bytes are
/// the cgroup id.
const FILEID_KERNFS: i32 = 0xfe;
/// Above this many ids the cache starts over (ids of deleted cgroups are never reused).
const MAX_CACHED: usize = 16_384;
/// v1 controllers whose path names the caller's cgroup best, in order.
const V1_PREFERENCE: &[&str] = &["memory", "pids", "name=systemd"];

/// `struct file_handle` with room for the 8 bytes of a kernfs handle.
#[repr(C)]
struct KernfsHandle {
    handle_bytes: u32,
    handle_type: i32,
    id: u64,
}

/// Resolves cgroup2 ids to paths relative to the cgroup2 mount.
pub struct V2Paths {
    mount: Option<(PathBuf, File)>,
    cache: HashMap<u64, Option<Arc<str>>>,
}

impl V2Paths {
    /// Opens the cgroup2 mount, if there is one and it can be opened.
    pub fn new(mount: Option<&Path>) -> Self {
        let mount = mount.and_then(|dir| match File::open(dir) {
            Ok(file) => Some((dir.to_owned(), file)),
            Err(err) => {
                tracing::warn!("cannot open the cgroup2 mount {}: {err}; cgroup paths will come from /proc/PID/cgroup", dir.display());
                None
            }
        });
        Self {
            mount,
            cache: HashMap::new(),
        }
    }

    /// The path of cgroup `id` (e.g. `/kubepods/besteffort/pod.../...`, `/` for the root);
    /// None once the cgroup is gone, or without a cgroup2 mount.
    pub fn path(&mut self, id: u64) -> Option<Arc<str>> {
        if let Some(known) = self.cache.get(&id) {
            return known.clone();
        }
        let (dir, mount) = self.mount.as_ref()?;
        let path = open_by_id(mount, id).and_then(|fd| {
            let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
            let relative = target.strip_prefix(dir).ok()?;
            Some(format!("/{}", relative.to_string_lossy()).into())
        });
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        self.cache.insert(id, path.clone());
        path
    }
}

fn open_by_id(mount: &File, id: u64) -> Option<OwnedFd> {
    let mut handle = KernfsHandle {
        handle_bytes: 8,
        handle_type: FILEID_KERNFS,
        id,
    };
    // SAFETY: the handle is a valid `struct file_handle` with `handle_bytes` bytes after
    // its header, and the mount fd is open for the duration of the call.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount.as_raw_fd(),
            (&raw mut handle).cast(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    // SAFETY: a non-negative return is a new descriptor that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The v1 cgroup path in `/proc/<pid>/cgroup` text (`ID:CONTROLLERS:PATH` lines): the
/// memory controller's, else pids', else the named systemd hierarchy's, else any v1 one.
pub fn v1_path(proc_cgroup: &str) -> Option<String> {
    let v1: Vec<(&str, &str)> = proc_cgroup
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            (!controllers.is_empty()).then_some((controllers, path))
        })
        .collect();
    V1_PREFERENCE
        .iter()
        .find_map(|want| {
            v1.iter()
                .find(|(controllers, _)| controllers.split(',').any(|c| c == *want))
        })
        .or(v1.first())
        .map(|(_, path)| (*path).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_path_prefers_memory_then_pids() {
        let text = "9:name=systemd:/sys\n8:pids:/p\n4:memory:/kubepods/pod1/abc\n0::/\n";
        assert_eq!(v1_path(text).as_deref(), Some("/kubepods/pod1/abc"));
        assert_eq!(
            v1_path("9:name=systemd:/s\n8:pids:/p\n").as_deref(),
            Some("/p")
        );
        assert_eq!(v1_path("3:cpu,cpuacct:/c\n").as_deref(), Some("/c"));
        // Pure cgroup2: no v1 line.
        assert_eq!(v1_path("0::/user.slice\n"), None);
    }

    #[test]
    fn the_v2_root_and_an_unknown_id() {
        let mounts = super::super::mounts::CgroupMounts::read();
        let v2 = mounts.v2.expect("this host has a cgroup2 mount");
        let mut paths = V2Paths::new(Some(&v2));
        // The root cgroup's id is its inode number (1 on cgroup2).
        let root_id = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&v2).unwrap());
        assert_eq!(paths.path(root_id).as_deref(), Some("/"));
        assert_eq!(paths.path(u64::MAX - 1), None);
    }
}
