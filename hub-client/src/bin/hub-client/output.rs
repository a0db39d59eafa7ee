//! Renders hub messages for people (aligned tables, control characters escaped, since
//! node names and commands come from remote tappers and their processes) and programs
//! (JSON lines; events in their one JSON form, `tapper_proto::json`).

pub use tapper_proto::json::{loss_json, stats_json, tapper_json, warning_json};
pub use tapper_proto::text::escape_control;
use tapper_proto::{
    Timestamp,
    v1::{Container, Diagnosis, Event, Pod, Warning},
};

/// Characters of a container id shown when the container has no name (as `podman ps`).
const SHORT_ID: usize = 12;

/// Where an event ran, for the watch table's POD/CONTAINER column: `namespace/pod/container`
/// in a pod, the container's name (or short id) outside one, `-` when neither is known.
pub fn pod_container(e: &Event) -> String {
    where_ran(e.container.as_ref(), e.pod.as_ref())
}

/// The MESSAGE column of an event, with the failures the tapper's rate limit folded into
/// it, e.g. `Too many open files (+41 suppressed)`.
pub fn message_with_suppressed(e: &Event) -> String {
    let message = escape_control(&e.message);
    match e.suppressed {
        0 => message.into_owned(),
        n => format!("{message} (+{n} suppressed)"),
    }
}

/// The CAUSE column: the diagnosis's cause, `-` from a reporter that does not diagnose.
pub fn cause(diagnosis: Option<&Diagnosis>) -> String {
    diagnosis.map_or_else(|| "-".into(), |d| d.cause.clone())
}

/// A warning in one line of the watch table, e.g.
/// `warning nofile: node-a pid 42 (nginx) web/api/nginx 820/1024 fds (80%), full in ~12 s`.
pub fn warning_line(w: &Warning) -> String {
    let who = match w.pid {
        Some(pid) => format!(
            " pid {pid} ({}) {}",
            w.comm,
            where_ran(w.container.as_ref(), w.pod.as_ref())
        ),
        None => String::new(),
    };
    let eta = match w.eta_seconds {
        Some(eta) => format!(", full in ~{eta:.0} s"),
        None => ", not rising".into(),
    };
    format!(
        "warning {}: {}{who} {}/{} ({:.0}%){eta}",
        w.kind,
        w.node,
        w.used,
        w.limit,
        w.ratio * 100.0
    )
}

fn where_ran(container: Option<&Container>, pod: Option<&Pod>) -> String {
    let container = container.and_then(|c| {
        c.name
            .clone()
            .or_else(|| c.id.as_ref().map(|id| id.chars().take(SHORT_ID).collect()))
    });
    let pod = pod.and_then(|p| p.name.as_ref().map(|name| (p.namespace.as_deref(), name)));
    match (pod, container) {
        (Some((ns, pod)), c) => format!(
            "{}/{pod}/{}",
            ns.unwrap_or("?"),
            c.as_deref().unwrap_or("?")
        ),
        (None, Some(c)) => c,
        (None, None) => "-".into(),
    }
}

/// RFC 3339 with nanoseconds, UTC; empty when absent.
pub fn rfc3339(ts: Option<&Timestamp>) -> String {
    ts.map(tapper_proto::json::rfc3339).unwrap_or_default()
}

/// Prints rows as a left-aligned table with a header, control characters escaped.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", table(header, rows));
}

/// The text of [`print_table`], one line per row.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| escape_control(c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        text.push_str(s.trim_end());
        text.push('\n');
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapper_proto::v1::{Container, Pod};

    #[test]
    fn the_message_names_suppressed_failures() {
        let mut e = Event {
            message: "Too many open files".into(),
            ..Default::default()
        };
        assert_eq!(message_with_suppressed(&e), "Too many open files");
        e.suppressed = 41;
        assert_eq!(
            message_with_suppressed(&e),
            "Too many open files (+41 suppressed)"
        );
    }

    #[test]
    fn the_cause_column_is_the_diagnosis_cause_or_a_dash() {
        assert_eq!(cause(None), "-");
        let d = Diagnosis {
            cause: "capability".into(),
            text: "SOCK_RAW needs CAP_NET_RAW".into(),
        };
        assert_eq!(cause(Some(&d)), "capability");
    }

    #[test]
    fn pod_container_says_where_an_event_ran() {
        let container = |name: Option<&str>, id: &str| Container {
            name: name.map(Into::into),
            id: Some(id.into()),
            ..Default::default()
        };
        let pod = Pod {
            namespace: Some("shop".into()),
            name: Some("web-1".into()),
            ..Default::default()
        };
        let id = "3f2a9c01deadbeef3f2a9c01";
        let cases = [
            (None, None, "-"),
            (Some(container(None, id)), None, "3f2a9c01dead"),
            (Some(container(Some("nginx"), id)), None, "nginx"),
            (
                Some(container(Some("nginx"), id)),
                Some(pod.clone()),
                "shop/web-1/nginx",
            ),
            (None, Some(pod.clone()), "shop/web-1/?"),
            (
                Some(container(Some("nginx"), id)),
                Some(Pod {
                    namespace: None,
                    ..pod
                }),
                "?/web-1/nginx",
            ),
        ];
        for (container, pod, want) in cases {
            let e = Event {
                container,
                pod,
                ..Default::default()
            };
            assert_eq!(pod_container(&e), want);
        }
    }

    #[test]
    fn table_cells_are_escaped_and_aligned_by_their_escaped_width() {
        let rows = vec![
            vec!["\x1b[2Jnode".to_owned(), "1".to_owned()],
            vec!["web-1".to_owned(), "22".to_owned()],
        ];
        let text = table(&["NODE", "EVENTS"], &rows);
        assert_eq!(
            text,
            "NODE         EVENTS\n\\x1b[2Jnode  1\nweb-1        22\n"
        );
    }
}
