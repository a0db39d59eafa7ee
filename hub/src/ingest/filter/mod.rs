//! Compiles a `SubscribeRequest`'s filters once and matches events, warnings and loss
//! notices against them; every invalid value is `INVALID_ARGUMENT` naming its field.

mod prefixes;

use std::collections::HashSet;

use globset::GlobMatcher;
use tapper_proto::{
    WarningKind,
    flag_text::name_glob,
    limits::{MAX_PATTERN_BYTES, MAX_VALUES, MIN_ID_PREFIX},
    v1::{Container, Event, LossNotice, Pod, SubscribeRequest, Warning},
};

use crate::{error::HubError, ingest::validate};

use prefixes::PrefixSet;

/// Server-side subscription filter: AND across fields, OR within a field.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    nodes: HashSet<String>,
    errnos: HashSet<i32>,
    families: HashSet<i32>,
    pids: HashSet<u32>,
    comm: Option<GlobMatcher>,
    cgroups: HashSet<u64>,
    namespaces: HashSet<String>,
    pod: Option<GlobMatcher>,
    containers: HashSet<String>,
    container_ids: PrefixSet,
    /// Whether events stream (`kind` empty or naming "event").
    events: bool,
    /// The warning kinds that stream.
    warning_kinds: HashSet<&'static str>,
}

fn check_len<T>(field: &str, values: &[T]) -> Result<(), HubError> {
    if values.len() > MAX_VALUES {
        return Err(HubError::invalid(
            field,
            format!("{} values exceed the limit of {MAX_VALUES}", values.len()),
        ));
    }
    Ok(())
}

impl Filter {
    /// Validates and compiles the filter fields of `req`.
    pub fn from_request(req: &SubscribeRequest) -> Result<Self, HubError> {
        check_len("node", &req.node)?;
        check_len("errno", &req.errno)?;
        check_len("family", &req.family)?;
        check_len("pid", &req.pid)?;
        check_len("cgroup_id", &req.cgroup_id)?;
        check_len("namespace", &req.namespace)?;
        check_len("container", &req.container)?;
        check_len("container_id", &req.container_id)?;
        check_len("kind", &req.kind)?;
        let (events, warning_kinds) = kinds(&req.kind)?;
        validate::node_names(&req.node)?;
        for (i, id) in req.container_id.iter().enumerate() {
            if id.len() < MIN_ID_PREFIX {
                return Err(HubError::invalid(
                    format!("container_id[{i}]"),
                    format!(
                        "{id:?} is shorter than {MIN_ID_PREFIX} characters; give the full id \
                         or a longer prefix"
                    ),
                ));
            }
        }
        let errnos = req
            .errno
            .iter()
            .enumerate()
            .map(|(i, e)| {
                tapper_names::parse_errno(e)
                    .map_err(|r| HubError::invalid(format!("errno[{i}]"), r.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let families = req
            .family
            .iter()
            .enumerate()
            .map(|(i, f)| {
                tapper_names::parse_family(f)
                    .map_err(|r| HubError::invalid(format!("family[{i}]"), r.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let comm = optional_glob("comm", &req.comm)?;
        let pod = optional_glob("pod", &req.pod)?;
        Ok(Self {
            nodes: req.node.iter().cloned().collect(),
            errnos,
            families,
            pids: req.pid.iter().copied().collect(),
            comm,
            cgroups: req.cgroup_id.iter().copied().collect(),
            namespaces: req.namespace.iter().cloned().collect(),
            pod,
            containers: req.container.iter().cloned().collect(),
            container_ids: PrefixSet::new(&req.container_id),
            events,
            warning_kinds,
        })
    }

    /// Whether `e` (with its hub fields set) passes.
    pub fn matches_event(&self, e: &Event) -> bool {
        self.events
            && (self.nodes.is_empty() || self.nodes.contains(&e.node))
            && (self.errnos.is_empty() || self.errnos.contains(&e.errno))
            && (self.families.is_empty() || e.family.is_some_and(|f| self.families.contains(&f)))
            && (self.pids.is_empty() || self.pids.contains(&e.pid))
            && self.comm.as_ref().is_none_or(|g| g.is_match(&e.comm))
            && (self.cgroups.is_empty() || self.cgroups.contains(&e.cgroup_id))
            && self.matches_identity(e.container.as_ref(), e.pod.as_ref())
    }

    /// Whether warning `w` (with its hub fields set) passes: its kind, then the node,
    /// process and identity filters on its own fields (errno, family and cgroup_id filters
    /// apply to events only).
    pub fn matches_warning(&self, w: &Warning) -> bool {
        self.warning_kinds.contains(w.kind.as_str())
            && (self.nodes.is_empty() || self.nodes.contains(&w.node))
            && (self.pids.is_empty() || w.pid.is_some_and(|p| self.pids.contains(&p)))
            && self.comm.as_ref().is_none_or(|g| g.is_match(&w.comm))
            && self.matches_identity(w.container.as_ref(), w.pod.as_ref())
    }

    /// The pod and container filters; an item without the field never matches a
    /// non-empty one.
    fn matches_identity(&self, container: Option<&Container>, pod: Option<&Pod>) -> bool {
        let namespace = pod.and_then(|p| p.namespace.as_deref());
        let pod_name = pod.and_then(|p| p.name.as_deref());
        let name = container.and_then(|c| c.name.as_deref());
        let id = container.and_then(|c| c.id.as_deref());
        (self.namespaces.is_empty() || namespace.is_some_and(|n| self.namespaces.contains(n)))
            && self
                .pod
                .as_ref()
                .is_none_or(|g| pod_name.is_some_and(|n| g.is_match(n)))
            && (self.containers.is_empty() || name.is_some_and(|n| self.containers.contains(n)))
            && (self.container_ids.is_empty()
                || id.is_some_and(|id| self.container_ids.matches(id)))
    }

    /// The `container_id` prefixes (sorted, none a prefix of another); empty when the
    /// filter has none. The fan-out indexes subscribers by them.
    pub fn container_id_prefixes(&self) -> &[String] {
        self.container_ids.as_slice()
    }

    /// Loss notices carry no process or errno, so only the node filter applies.
    pub fn matches_loss(&self, l: &LossNotice) -> bool {
        self.nodes.is_empty() || self.nodes.contains(&l.node)
    }
}

/// The `kind` field: whether events stream, and which warning kinds. Empty means events
/// and every warning kind.
fn kinds(values: &[String]) -> Result<(bool, HashSet<&'static str>), HubError> {
    if values.is_empty() {
        return Ok((true, WarningKind::ALL.map(WarningKind::as_str).into()));
    }
    let mut events = false;
    let mut warnings = HashSet::new();
    for (i, value) in values.iter().enumerate() {
        match value.as_str() {
            "event" => events = true,
            "warning" => warnings.extend(WarningKind::ALL.map(WarningKind::as_str)),
            kind => match kind.parse::<WarningKind>() {
                Ok(kind) => {
                    warnings.insert(kind.as_str());
                }
                Err(_) => {
                    return Err(HubError::invalid(
                        format!("kind[{i}]"),
                        format!(
                            "unknown kind {:?}; use event, warning, {}",
                            value.chars().take(32).collect::<String>(),
                            WarningKind::ALL.map(WarningKind::as_str).join(", ")
                        ),
                    ));
                }
            },
        }
    }
    Ok((events, warnings))
}

/// The glob of `field` (`comm` or `pod`), none when empty.
fn optional_glob(field: &str, pattern: &str) -> Result<Option<GlobMatcher>, HubError> {
    if pattern.is_empty() {
        return Ok(None);
    }
    glob(field, pattern).map(Some)
}

/// Compiles a glob (`*`, `?`, `[a-z]`, `[!a-z]`, `\` escapes, `{a,b}`) matching the whole
/// name; `/` is an ordinary character there.
fn glob(field: &str, pattern: &str) -> Result<GlobMatcher, HubError> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(HubError::invalid(
            field,
            format!(
                "pattern of {} bytes is longer than {MAX_PATTERN_BYTES}",
                pattern.len()
            ),
        ));
    }
    name_glob(pattern).map_err(|e| HubError::invalid(field, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapper_proto::v1::{Container, Pod};

    fn ev() -> Event {
        Event {
            node: "n1".into(),
            errno: 24,
            family: Some(2),
            pid: 7,
            comm: "nginx".into(),
            cgroup_id: 99,
            ..Default::default()
        }
    }

    fn req() -> SubscribeRequest {
        SubscribeRequest::default()
    }

    #[test]
    fn empty_filter_matches_all() {
        assert!(Filter::from_request(&req()).unwrap().matches_event(&ev()));
    }

    #[test]
    fn each_field_filters() {
        let cases: Vec<(SubscribeRequest, bool)> = vec![
            (
                SubscribeRequest {
                    node: vec!["n1".into()],
                    ..req()
                },
                true,
            ),
            (
                SubscribeRequest {
                    node: vec!["n2".into()],
                    ..req()
                },
                false,
            ),
            (
                SubscribeRequest {
                    errno: vec!["EMFILE".into()],
                    ..req()
                },
                true,
            ),
            (
                SubscribeRequest {
                    errno: vec!["ENFILE".into(), "24".into()],
                    ..req()
                },
                true,
            ),
            (
                SubscribeRequest {
                    errno: vec!["ENFILE".into()],
                    ..req()
                },
                false,
            ),
            (
                SubscribeRequest {
                    family: vec!["AF_INET".into()],
                    ..req()
                },
                true,
            ),
            (
                SubscribeRequest {
                    family: vec!["10".into()],
                    ..req()
                },
                false,
            ),
            (
                SubscribeRequest {
                    pid: vec![7],
                    ..req()
                },
                true,
            ),
            (
                SubscribeRequest {
                    pid: vec![8],
                    ..req()
                },
                false,
            ),
            (
                SubscribeRequest {
                    comm: "ngi*".into(),
                    ..req()
                },
                true,
            ),
            (
                SubscribeRequest {
                    comm: "apache*".into(),
                    ..req()
                },
                false,
            ),
            (
                SubscribeRequest {
                    cgroup_id: vec![99],
                    ..req()
                },
                true,
            ),
            (
                SubscribeRequest {
                    cgroup_id: vec![1],
                    ..req()
                },
                false,
            ),
        ];
        for (r, want) in cases {
            assert_eq!(
                Filter::from_request(&r).unwrap().matches_event(&ev()),
                want,
                "{r:?}"
            );
        }
    }

    fn in_pod(namespace: &str, pod: &str, container: &str, id: &str) -> Event {
        Event {
            pod: Some(Pod {
                namespace: Some(namespace.into()),
                name: Some(pod.into()),
                ..Default::default()
            }),
            container: Some(Container {
                name: Some(container.into()),
                id: Some(id.into()),
                ..Default::default()
            }),
            ..ev()
        }
    }

    #[test]
    fn identity_fields_filter_and_events_without_them_never_match() {
        let web = in_pod("shop", "web-7d9f", "nginx", "3f2a9c01deadbeef");
        let db = in_pod("shop", "db-0", "postgres", "77aa00ff11223344");
        let bare = ev();
        let cases = [
            (
                SubscribeRequest {
                    namespace: vec!["shop".into()],
                    ..req()
                },
                [true, true, false],
            ),
            (
                SubscribeRequest {
                    namespace: vec!["kube-system".into(), "other".into()],
                    ..req()
                },
                [false, false, false],
            ),
            (
                SubscribeRequest {
                    pod: "web-*".into(),
                    ..req()
                },
                [true, false, false],
            ),
            (
                SubscribeRequest {
                    pod: "*".into(),
                    ..req()
                },
                [true, true, false],
            ),
            (
                SubscribeRequest {
                    container: vec!["postgres".into(), "redis".into()],
                    ..req()
                },
                [false, true, false],
            ),
            (
                SubscribeRequest {
                    container_id: vec!["3f2a9c01".into()],
                    ..req()
                },
                [true, false, false],
            ),
            (
                SubscribeRequest {
                    container_id: vec!["77aa00ff11223344".into(), "3f2a".into()],
                    ..req()
                },
                [true, true, false],
            ),
            (
                SubscribeRequest {
                    namespace: vec!["shop".into()],
                    container: vec!["nginx".into()],
                    ..req()
                },
                [true, false, false],
            ),
        ];
        for (r, want) in cases {
            let f = Filter::from_request(&r).unwrap();
            let got = [&web, &db, &bare].map(|e| f.matches_event(e));
            assert_eq!(got, want, "{r:?}");
        }
        // An event with a pod but no namespace or name (unknown) matches neither filter.
        let unknown = Event {
            pod: Some(Pod::default()),
            container: Some(Container::default()),
            ..ev()
        };
        for r in [
            SubscribeRequest {
                namespace: vec!["shop".into()],
                ..req()
            },
            SubscribeRequest {
                pod: "*".into(),
                ..req()
            },
        ] {
            assert!(!Filter::from_request(&r).unwrap().matches_event(&unknown));
        }
    }

    fn warning(kind: WarningKind, pid: Option<u32>) -> Warning {
        Warning {
            node: "n1".into(),
            kind: kind.as_str().into(),
            pid,
            comm: if pid.is_some() {
                "nginx".into()
            } else {
                String::new()
            },
            ..Default::default()
        }
    }

    #[test]
    fn kind_chooses_events_and_warning_kinds() {
        let nofile = warning(WarningKind::Nofile, Some(7));
        let file_max = warning(WarningKind::FileMax, None);
        let passes = |kind: &[&str]| {
            let f = Filter::from_request(&SubscribeRequest {
                kind: kind.iter().map(|k| k.to_string()).collect(),
                ..req()
            })
            .unwrap();
            (
                f.matches_event(&ev()),
                f.matches_warning(&nofile),
                f.matches_warning(&file_max),
            )
        };
        assert_eq!(passes(&[]), (true, true, true));
        assert_eq!(passes(&["event"]), (true, false, false));
        assert_eq!(passes(&["warning"]), (false, true, true));
        assert_eq!(passes(&["nofile"]), (false, true, false));
        assert_eq!(passes(&["file-max", "event"]), (true, false, true));
        let err = Filter::from_request(&SubscribeRequest {
            kind: vec!["event".into(), "fd".into()],
            ..req()
        })
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("kind[1]: unknown kind \"fd\""), "{err}");
    }

    #[test]
    fn warnings_match_process_filters_on_their_own_fields() {
        let f = |r: SubscribeRequest| Filter::from_request(&r).unwrap();
        let nofile = warning(WarningKind::Nofile, Some(7));
        let file_max = warning(WarningKind::FileMax, None);
        let by_pid = f(SubscribeRequest {
            pid: vec![7],
            ..req()
        });
        assert!(by_pid.matches_warning(&nofile) && !by_pid.matches_warning(&file_max));
        let by_errno = f(SubscribeRequest {
            errno: vec!["EMFILE".into()],
            ..req()
        });
        assert!(
            by_errno.matches_warning(&nofile),
            "errno applies to events only"
        );
        let by_comm = f(SubscribeRequest {
            comm: "ngi*".into(),
            ..req()
        });
        assert!(by_comm.matches_warning(&nofile) && !by_comm.matches_warning(&file_max));
        let by_node = f(SubscribeRequest {
            node: vec!["n2".into()],
            ..req()
        });
        assert!(!by_node.matches_warning(&nofile));
        let by_ns = f(SubscribeRequest {
            namespace: vec!["web".into()],
            ..req()
        });
        assert!(!by_ns.matches_warning(&nofile), "no pod: no match");
    }

    #[test]
    fn errno_aliases_mean_their_canonical_number() {
        let eopnotsupp = Event { errno: 95, ..ev() };
        for name in ["ENOTSUP", "enotsup", "EOPNOTSUPP", "95"] {
            let filter = Filter::from_request(&SubscribeRequest {
                errno: vec![name.into()],
                ..req()
            })
            .unwrap();
            assert!(filter.matches_event(&eopnotsupp), "{name}");
            assert!(!filter.matches_event(&ev()), "{name}");
        }
    }

    #[test]
    fn comm_glob_matches_the_whole_name() {
        let m = |p: &str, t: &str| glob("comm", p).unwrap().is_match(t);
        assert!(m("*", "anything"));
        assert!(m("ngin?", "nginx"));
        assert!(m("py*", "python3"));
        assert!(!m("py*", "xpython"));
        assert!(m("*sock*", "mysocktest"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("[]]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("kworker/*", "kworker/0:1"));
        assert!(m("k*1", "kworker/0:1"));
        assert!(m("**", "a/b"));
    }

    #[test]
    fn bad_comm_globs_say_why() {
        let err = |p: &str| glob("comm", p).unwrap_err().to_string();
        assert!(
            err("[abc").starts_with("comm: \"[abc\" is not a glob (unclosed"),
            "{}",
            err("[abc")
        );
        assert!(
            err("abc\\").starts_with("comm: \"abc\\\\\" is not a glob"),
            "{}",
            err("abc\\")
        );
        assert!(err("[z-a]").contains("range"), "{}", err("[z-a]"));
        assert!(err(&"a".repeat(300)).contains("longer"));
    }

    #[test]
    fn bad_values_name_their_field() {
        let msg = |r: SubscribeRequest| Filter::from_request(&r).unwrap_err().to_string();
        assert!(
            msg(SubscribeRequest {
                errno: vec!["EMFILE".into(), "EBOGUS".into()],
                ..req()
            })
            .starts_with("errno[1]: ")
        );
        assert!(
            msg(SubscribeRequest {
                family: vec!["AF_NOPE".into()],
                ..req()
            })
            .starts_with("family[0]: ")
        );
        assert!(
            msg(SubscribeRequest {
                comm: "[abc".into(),
                ..req()
            })
            .starts_with("comm: ")
        );
        assert!(
            msg(SubscribeRequest {
                node: vec![String::new()],
                ..req()
            })
            .starts_with("node[0]: ")
        );
        assert!(
            msg(SubscribeRequest {
                pod: "web-[".into(),
                ..req()
            })
            .contains("is not a glob")
        );
        let short = msg(SubscribeRequest {
            container_id: vec!["3f2a9c".into(), "3f".into()],
            ..req()
        });
        assert!(short.starts_with("container_id[1]: "), "{short}");
        assert!(short.contains("shorter than 4"), "{short}");
    }
}
