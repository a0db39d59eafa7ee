//! Compiles a `SubscribeRequest`'s filters once and matches events and loss notices against
//! them; every invalid value is `INVALID_ARGUMENT` naming its field.

use std::collections::HashSet;

use globset::{GlobBuilder, GlobMatcher};
use tapper_proto::v1::{Event, LossNotice, SubscribeRequest};

use crate::{error::HubError, validate};

/// Most values accepted in one repeated filter field.
pub const MAX_VALUES: usize = 1024;

/// Longest `comm` pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 256;

/// Server-side subscription filter: AND across fields, OR within a field.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    nodes: HashSet<String>,
    errnos: HashSet<i32>,
    families: HashSet<i32>,
    pids: HashSet<u32>,
    comm: Option<GlobMatcher>,
    cgroups: HashSet<u64>,
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
        validate::node_names(&req.node)?;
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
        let comm = if req.comm.is_empty() {
            None
        } else {
            Some(comm_glob(&req.comm)?)
        };
        Ok(Self {
            nodes: req.node.iter().cloned().collect(),
            errnos,
            families,
            pids: req.pid.iter().copied().collect(),
            comm,
            cgroups: req.cgroup_id.iter().copied().collect(),
        })
    }

    /// Whether `e` (with its hub fields set) passes.
    pub fn matches_event(&self, e: &Event) -> bool {
        (self.nodes.is_empty() || self.nodes.contains(&e.node))
            && (self.errnos.is_empty() || self.errnos.contains(&e.errno))
            && (self.families.is_empty() || e.family.is_some_and(|f| self.families.contains(&f)))
            && (self.pids.is_empty() || self.pids.contains(&e.pid))
            && self.comm.as_ref().is_none_or(|g| g.is_match(&e.comm))
            && (self.cgroups.is_empty() || self.cgroups.contains(&e.cgroup_id))
    }

    /// Loss notices carry no process or errno, so only the node filter applies.
    pub fn matches_loss(&self, l: &LossNotice) -> bool {
        self.nodes.is_empty() || self.nodes.contains(&l.node)
    }
}

/// Compiles the `comm` glob (`*`, `?`, `[a-z]`, `[!a-z]`, `\` escapes, `{a,b}`), matching the
/// whole command name; `/` is an ordinary character there.
fn comm_glob(pattern: &str) -> Result<GlobMatcher, HubError> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(HubError::invalid(
            "comm",
            format!(
                "pattern of {} bytes is longer than {MAX_PATTERN_BYTES}",
                pattern.len()
            ),
        ));
    }
    GlobBuilder::new(pattern)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| HubError::invalid("comm", format!("bad glob: {}", e.kind())))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let m = |p: &str, t: &str| comm_glob(p).unwrap().is_match(t);
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
        let err = |p: &str| comm_glob(p).unwrap_err().to_string();
        assert!(
            err("[abc").starts_with("comm: bad glob: unclosed"),
            "{}",
            err("[abc")
        );
        assert!(
            err("abc\\").starts_with("comm: bad glob"),
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
    }
}
