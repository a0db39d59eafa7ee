//! Which cgroup paths may name a container or a pod: a kubelet or runtime layout at the
//! hierarchy's top (or under a `--kubelet-cgroup-root`), in a cgroup directory root owns.
//! Anyone with a delegated subtree can copy a victim's layout below it, never there.

use std::os::unix::fs::MetadataExt;

use super::mounts::CgroupMounts;

/// First segments of the layouts that kubelets and runtimes make below their root:
/// kubelet (cgroupfs and systemd drivers), Docker (both drivers), podman (systemd and
/// cgroupfs managers). A container's own segment right below a root is accepted too (a
/// runtime given that root as its cgroup parent).
const ANCHORS: &[&str] = &[
    "kubepods",
    "kubepods.slice",
    "docker",
    "system.slice",
    "machine.slice",
    "libpod_parent",
];

/// Where layouts are believed: the hierarchy's top and the configured kubelet roots.
#[derive(Clone, Debug)]
pub struct PathTrust {
    /// Normalized roots (`/` first), each without a trailing `/` but `/` itself.
    roots: Vec<String>,
}

impl PathTrust {
    /// Trusts the top of each hierarchy and each of `kubelet_roots` (e.g. `/kubelet`).
    pub fn new(kubelet_roots: &[String]) -> Self {
        let mut roots = vec!["/".to_owned()];
        for root in kubelet_roots {
            let root = format!("/{}", root.trim_matches('/'));
            if !roots.contains(&root) {
                roots.push(root);
            }
        }
        Self { roots }
    }

    /// The part of `path` that starts at a layout right below a trusted root, or `None`
    /// when no layout starts at a trusted root (then the path names no container or pod).
    pub fn layout<'a>(&self, path: &'a str) -> Option<&'a str> {
        self.roots.iter().find_map(|root| {
            let below = match root.as_str() {
                "/" => path.strip_prefix('/')?,
                root => path.strip_prefix(root)?.strip_prefix('/')?,
            };
            let first = below.split('/').next()?;
            let anchored = ANCHORS.contains(&first) || super::path::is_container_segment(first);
            anchored.then_some(below)
        })
    }
}

/// Whether the cgroup directory of `path` is owned by root in every hierarchy that has it
/// (the cgroup2 mount and the v1 ones), and at least one does. A delegated subtree's
/// directories belong to the user it was delegated to.
pub fn root_owned(mounts: &CgroupMounts, path: &str) -> bool {
    let v1 = mounts.v1.values().map(|mount| mount.as_path());
    let mut dirs = mounts.v2.as_deref().into_iter().chain(v1);
    let mut found = false;
    let owned = dirs.all(
        |mount| match mount.join(path.trim_start_matches('/')).metadata() {
            Ok(meta) => {
                found = true;
                meta.uid() == 0
            }
            Err(_) => true,
        },
    );
    found && owned
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "3f5e1b7a-2c4d-4e6f-8a9b-0c1d2e3f4a5b";

    #[test]
    fn layouts_count_only_at_the_top_or_under_a_kubelet_root() {
        let top = PathTrust::new(&[]);
        let kubepods = format!("/kubepods/besteffort/pod{UID}/{ID}");
        assert_eq!(top.layout(&kubepods), Some(&kubepods[1..]));
        let systemd = format!("/system.slice/docker-{ID}.scope");
        assert_eq!(top.layout(&systemd), Some(&systemd[1..]));
        // A copy of the layout in a delegated subtree.
        let delegated = format!(
            "/user.slice/user-65534.slice/user@65534.service/kubepods/besteffort/pod{UID}/{ID}"
        );
        assert_eq!(top.layout(&delegated), None);
        assert_eq!(top.layout("/"), None);
        let nested = format!("/kubelet/kubepods/pod{UID}/{ID}");
        assert_eq!(top.layout(&nested), None);
        let configured = PathTrust::new(&["/kubelet/".to_owned()]);
        assert_eq!(configured.layout(&nested), Some(&nested[9..]));
        assert_eq!(
            configured.layout(&kubepods),
            Some(&kubepods[1..]),
            "the top too"
        );
        assert_eq!(configured.layout(&format!("/kubeletx/kubepods/{ID}")), None);
        // A runtime given a root as its cgroup parent puts the container right below it.
        let parent = PathTrust::new(&["/ci".to_owned()]);
        assert!(parent.layout(&format!("/ci/libpod-{ID}")).is_some());
        assert!(parent.layout("/ci/anything/else").is_none());
    }

    #[test]
    fn a_directory_a_user_owns_is_not_root_owned() {
        let mounts = CgroupMounts::read();
        let v2 = mounts.v2.clone().expect("this host has a cgroup2 mount");
        let name = format!("/tapper-trust-test-{}", std::process::id());
        let dir = v2.join(name.trim_start_matches('/'));
        std::fs::create_dir(&dir).unwrap();
        assert!(root_owned(&mounts, &name), "made by root");
        nix::unistd::chown(&dir, Some(65534.into()), Some(65534.into())).unwrap();
        assert!(!root_owned(&mounts, &name), "delegated to nobody");
        std::fs::remove_dir(&dir).unwrap();
        assert!(!root_owned(&mounts, &name), "gone: nothing to believe");
        assert!(root_owned(&mounts, "/"));
    }
}
