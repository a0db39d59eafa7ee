//! Container id, runtime and pod uid from a cgroup path, for every layout the kubelet and
//! the runtimes make: cgroupfs and systemd drivers, each QoS class, containerd, CRI-O,
//! Docker and podman.

/// What a cgroup path alone tells about its processes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathIds {
    /// The container id (64 hex digits).
    pub container_id: Option<String>,
    /// The runtime, when the path names it (`cri-containerd-`, `crio-`, `docker-`, `libpod-`).
    pub runtime: Option<&'static str>,
    /// The pod uid, with dashes (the systemd driver writes them as `_`).
    pub pod_uid: Option<String>,
}

/// Scope prefixes of the systemd driver (and podman's cgroupfs names), by runtime.
const PREFIXES: &[(&str, &str)] = &[
    ("cri-containerd-", "containerd"),
    ("crio-", "crio"),
    ("docker-", "docker"),
    ("libpod-", "podman"),
];

/// Parses a cgroup path such as
/// `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope`.
pub fn parse(path: &str) -> PathIds {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // The container is the last segment, or the one above podman's `container` leaf.
    let leaf = match segments.as_slice() {
        [.., parent, "container"] => Some(*parent),
        [.., last] => Some(*last),
        [] => None,
    };
    let (container_id, mut runtime) = leaf.and_then(container_segment).unzip();
    let runtime = runtime.take().flatten().or_else(|| {
        // Docker's cgroupfs driver: `/docker/<id>`.
        let docker_parent = segments.len() >= 2 && segments[segments.len() - 2] == "docker";
        (container_id.is_some() && docker_parent).then_some("docker")
    });
    let pod_uid = segments.iter().find_map(|s| pod_segment(s));
    PathIds {
        container_id,
        runtime,
        pod_uid,
    }
}

/// Whether `segment` names a container (`cri-containerd-<id>.scope`, `libpod-<id>`, `<id>`).
pub fn is_container_segment(segment: &str) -> bool {
    container_segment(segment).is_some()
}

/// `cri-containerd-<id>.scope`, `libpod-<id>` ... or a bare `<id>` (cgroupfs driver).
fn container_segment(segment: &str) -> Option<(String, Option<&'static str>)> {
    let name = segment.strip_suffix(".scope").unwrap_or(segment);
    for (prefix, runtime) in PREFIXES {
        if let Some(id) = name.strip_prefix(prefix) {
            return is_container_id(id).then(|| (id.to_owned(), Some(*runtime)));
        }
    }
    is_container_id(name).then(|| (name.to_owned(), None))
}

/// `pod<uid>` (cgroupfs) or `kubepods[-<qos>]-pod<uid_with_underscores>.slice` (systemd).
fn pod_segment(segment: &str) -> Option<String> {
    let uid = match segment.strip_suffix(".slice") {
        Some(slice) => slice.rsplit_once("-pod")?.1.replace('_', "-"),
        None => segment.strip_prefix("pod")?.to_owned(),
    };
    is_pod_uid(&uid).then_some(uid)
}

/// Container ids of containerd, CRI-O, Docker and podman are 64 lowercase hex digits.
fn is_container_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A pod uid is a UUID: 8-4-4-4-12 hex digits.
fn is_pod_uid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "3f5e1b7a-2c4d-4e6f-8a9b-0c1d2e3f4a5b";
    const UID_: &str = "3f5e1b7a_2c4d_4e6f_8a9b_0c1d2e3f4a5b";

    fn ids(id: Option<&str>, runtime: Option<&'static str>, uid: Option<&str>) -> PathIds {
        PathIds {
            container_id: id.map(str::to_owned),
            runtime,
            pod_uid: uid.map(str::to_owned),
        }
    }

    #[test]
    fn every_known_layout() {
        let table = [
            // cgroupfs driver, the three QoS classes (guaranteed has no class segment).
            (
                format!("/kubepods/besteffort/pod{UID}/{ID}"),
                ids(Some(ID), None, Some(UID)),
            ),
            (
                format!("/kubepods/burstable/pod{UID}/{ID}"),
                ids(Some(ID), None, Some(UID)),
            ),
            (
                format!("/kubepods/pod{UID}/{ID}"),
                ids(Some(ID), None, Some(UID)),
            ),
            // systemd driver, containerd, each QoS class.
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope"
                ),
                ids(Some(ID), Some("containerd"), Some(UID)),
            ),
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"
                ),
                ids(Some(ID), Some("containerd"), Some(UID)),
            ),
            (
                format!("/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{ID}.scope"),
                ids(Some(ID), Some("containerd"), Some(UID)),
            ),
            // CRI-O, Docker (both drivers), podman (systemd and cgroupfs managers).
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-{ID}.scope"
                ),
                ids(Some(ID), Some("crio"), Some(UID)),
            ),
            (
                format!("/system.slice/docker-{ID}.scope"),
                ids(Some(ID), Some("docker"), None),
            ),
            (format!("/docker/{ID}"), ids(Some(ID), Some("docker"), None)),
            (
                format!("/machine.slice/libpod-{ID}.scope/container"),
                ids(Some(ID), Some("podman"), None),
            ),
            (
                format!("/libpod_parent/libpod-{ID}"),
                ids(Some(ID), Some("podman"), None),
            ),
            // A pod's own cgroup, and no container at all.
            (
                format!("/kubepods/besteffort/pod{UID}"),
                ids(None, None, Some(UID)),
            ),
            ("/".to_owned(), PathIds::default()),
            ("/user.slice/session-1.scope".to_owned(), PathIds::default()),
        ];
        for (path, expected) in table {
            assert_eq!(parse(&path), expected, "{path}");
        }
    }

    #[test]
    fn near_misses_are_not_ids() {
        let short = &ID[..63];
        for path in [
            format!("/kubepods/besteffort/pod{UID}/{short}"),
            format!("/system.slice/crio-conmon-{ID}.scope"),
            format!("/machine.slice/libpod-conmon-{ID}.scope"),
            format!("/x/{}", ID.to_uppercase()),
        ] {
            assert_eq!(parse(&path).container_id, None, "{path}");
        }
        assert_eq!(parse("/kubepods/podnot-a-uid/x").pod_uid, None);
        assert_eq!(
            parse("/kubepods.slice/kubepods-pod1234.slice").pod_uid,
            None
        );
    }
}
