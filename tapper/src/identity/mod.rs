//! Who failed beyond the pid: the caller's cgroup path, container, pod and quota. Paths and
//! quotas are read on the event path (cgroupfs and procfs only); names come from runtime
//! listings cached in the background, so no event ever waits for a runtime.

mod cache;
mod cri;
mod mounts;
mod path;
mod podman;
mod quota;
mod refresh;
mod resolve;
mod sources;
mod trust;

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use crate::{
    flag_values::{parse_cgroup_root, parse_interval},
    ttl_cache::TtlCache,
};

use tapper_proto::v1::{Container, Pod, Quota};
use tokio::sync::Notify;

pub use resolve::v1_path;
pub use sources::{SourceChoice, SourceError};

use self::{
    cache::MetadataCache, mounts::CgroupMounts, path::PathIds, resolve::V2Paths, sources::Sources,
    trust::PathTrust,
};

/// How long one cgroup's identity and quota are reused: a storm of failures in one cgroup
/// costs one quota read per period, and a container listed meanwhile is named this late.
const FRESH_FOR: Duration = Duration::from_millis(100);
/// Above this many cgroups, expired ones are swept.
const SWEEP_ABOVE: usize = 4096;

/// How identity is found: which runtimes to ask for names, and how often (the flags of the
/// "Containers and pods" heading).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Containers and pods")]
pub struct IdentityOptions {
    /// The container runtime's CRI socket, for pod and container names: a path, `auto`
    /// (the first that exists of /run/containerd/containerd.sock, /run/crio/crio.sock,
    /// /run/k3s/containerd/containerd.sock) or `none`.
    #[arg(long, value_name = "PATH", default_value = "auto", value_parser = SourceChoice::parse)]
    pub cri_socket: SourceChoice,

    /// podman's storage root, for podman container names: a path, `auto`
    /// (/var/lib/containers/storage if it exists) or `none`.
    #[arg(long, value_name = "DIR", default_value = "auto", value_parser = SourceChoice::parse)]
    pub podman_storage: SourceChoice,

    /// How often the runtimes' containers are listed again, e.g. 2s (a container an event
    /// does not know yet triggers a listing at once).
    #[arg(long = "runtime-refresh", value_name = "DURATION", default_value = "2s",
          value_parser = parse_interval)]
    pub refresh_every: Duration,

    /// A cgroup under which the kubelet's or a runtime's layout is also believed, e.g.
    /// /kubelet for a kubelet started with --cgroup-root=/kubelet (repeat for several).
    /// Container and pod ids come only from such a layout at the top of a cgroup hierarchy
    /// or right below one of these roots, and only from cgroup directories owned by root:
    /// a user with a delegated cgroup subtree cannot pass for another pod.
    #[arg(long = "kubelet-cgroup-root", value_name = "CGROUP", value_parser = parse_cgroup_root)]
    pub kubelet_roots: Vec<String>,
}

/// The identity part of an event; each part is None when unknown.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Identity {
    pub cgroup_path: Option<String>,
    pub container: Option<Container>,
    pub pod: Option<Pod>,
    pub quota: Option<Quota>,
}

pub struct IdentityResolver {
    v2_paths: V2Paths,
    by_path: TtlCache<Arc<str>, Arc<Identity>>,
    /// What a caller of unknown cgroup gets: one value, shared.
    unknown: Arc<Identity>,
    describer: Describer,
}

/// Describes a cgroup from its path, the runtimes' cache and the cgroup files.
struct Describer {
    mounts: CgroupMounts,
    trust: PathTrust,
    metadata: Arc<RwLock<MetadataCache>>,
    unknown_seen: Arc<Notify>,
}

impl IdentityResolver {
    /// Finds the cgroup mounts and the runtimes, and starts listing the runtimes in the
    /// background (call inside the tokio runtime).
    pub fn start(options: IdentityOptions) -> Result<Self, SourceError> {
        let mounts = CgroupMounts::read();
        let mut controllers: Vec<&String> = mounts.v1.keys().collect();
        controllers.sort();
        let v2 = mounts.v2.as_ref().map(|p| p.display().to_string());
        tracing::info!(
            "cgroups: cgroup2 at {} with controllers {:?}, v1 controllers {controllers:?}",
            v2.as_deref().unwrap_or("none"),
            mounts.v2_controllers
        );
        let sources = Sources::find(&options.cri_socket, &options.podman_storage)?;
        let metadata = Arc::new(RwLock::new(MetadataCache::default()));
        let unknown_seen = Arc::new(Notify::new());
        if !sources.is_empty() {
            tokio::spawn(refresh::run(
                sources,
                metadata.clone(),
                unknown_seen.clone(),
                options.refresh_every,
            ));
        }
        Ok(Self {
            v2_paths: V2Paths::new(mounts.v2.as_deref()),
            by_path: TtlCache::new(FRESH_FOR, SWEEP_ABOVE),
            unknown: Arc::default(),
            describer: Describer {
                mounts,
                trust: PathTrust::new(&options.kubelet_roots),
                metadata,
                unknown_seen,
            },
        })
    }

    /// The identity of a caller in cgroup2 `cgroup_id` whose v1 path (from
    /// `/proc/PID/cgroup`) is `v1_path`. The v2 path wins unless it is the root, as on a
    /// hybrid host where only v1 hierarchies hold containers (there the v1 path of a
    /// process that already exited is unknown). A cgroup's identity and quota are reused
    /// for 100 ms; the system file table is read fresh for each ENFILE. Never blocks on a
    /// runtime: an unknown container gets null names and asks for a listing.
    /// The identity is shared with every caller of the cgroup while it is reused (the same
    /// `Arc`), except for an ENFILE's, which holds its own file table reading.
    pub fn resolve(&mut self, cgroup_id: u64, v1_path: Option<&str>, errno: i32) -> Arc<Identity> {
        let v2 = self.v2_paths.path(cgroup_id);
        let path = match v2 {
            Some(path) if &*path != "/" => Some(path),
            // With v1 hierarchies the cgroup2 root says nothing: an exited process's path
            // is unknown rather than "/".
            root if self.describer.mounts.v1.is_empty() => root,
            _ => v1_path.map(Arc::from),
        };
        let Some(path) = path else {
            return self.unknown.clone();
        };
        let describer = &self.describer;
        let mut identity = self
            .by_path
            .get_or_read(path, |path| Arc::new(describer.describe(path)));
        if errno == libc::ENFILE {
            let (file_nr, file_max) = quota::system_file_handles();
            let context = Arc::make_mut(&mut identity)
                .quota
                .get_or_insert_with(Quota::default);
            (context.file_nr, context.file_max) = (file_nr, file_max);
        }
        identity
    }
}

impl Describer {
    /// Ids from a layout the trust rule believes; none from any other path.
    fn ids(&self, path: &str) -> PathIds {
        match self.trust.layout(path) {
            Some(layout) if trust::root_owned(&self.mounts, path) => path::parse(layout),
            _ => PathIds::default(),
        }
    }

    fn describe(&self, path: &str) -> Identity {
        let mut ids = self.ids(path);
        let (mut meta, mut listed_pod) = {
            let cache = self.metadata.read().unwrap_or_else(|e| e.into_inner());
            let meta = ids
                .container_id
                .as_deref()
                .and_then(|id| cache.container(id).cloned());
            let pod = ids
                .pod_uid
                .as_deref()
                .and_then(|uid| cache.pod(uid).cloned());
            (meta, pod)
        };
        // The runtime knows the container's pod: a path that names another is not believed.
        let listed_uid = meta.as_ref().and_then(|m| m.pod.as_ref()?.uid.clone());
        if let (Some(listed), Some(in_path)) = (&listed_uid, &ids.pod_uid)
            && listed != in_path
        {
            tracing::debug!(
                path,
                listed,
                "a cgroup path names another pod than the runtime"
            );
            (ids, meta, listed_pod) = (PathIds::default(), None, None);
        }
        if ids.container_id.is_some() && meta.is_none() {
            self.unknown_seen.notify_one();
        }
        let container = ids.container_id.as_deref().map(|id| match &meta {
            Some(meta) => {
                let mut container = meta.container(id);
                container.runtime = ids.runtime.map(str::to_owned).or(container.runtime);
                container
            }
            None => Container {
                id: Some(id.to_owned()),
                runtime: ids.runtime.map(str::to_owned),
                ..Default::default()
            },
        });
        // The container's pod, else the pod its sandbox listing named (a container too new
        // to be listed yet), else the bare uid from the path.
        let pod = match meta.and_then(|m| m.pod).or(listed_pod) {
            Some(mut pod) => {
                pod.uid = ids.pod_uid.or(pod.uid);
                Some(pod)
            }
            None => ids.pod_uid.map(|uid| Pod {
                uid: Some(uid),
                ..Default::default()
            }),
        };
        Identity {
            quota: quota::read(&self.mounts, path),
            cgroup_path: Some(path.to_owned()),
            container,
            pod,
        }
    }
}
