//! An aligned table for a terminal, two lines per event within 120 columns, with the
//! header repeated now and then. Strings from
//! the failing process (comm, exe) and its runtime (pod and container names) are printed
//! with control characters escaped.

use std::io::{self, Write};

use tapper_proto::{
    json::rfc3339,
    stack_text::stack_summary,
    text::escape_control,
    v1::{Container, Event, Pod, Warning},
};

pub const HEADER_EVERY: u64 = 40;
/// Innermost frames a row's stack line names (JSON carries them all).
const STACK_SHOWN: usize = 6;
/// The first line of a row, up to its last column (TYPE); with a type name of up to 24
/// characters ("SOCK_STREAM|SOCK_CLOEXEC") the line fits in 120 columns.
macro_rules! first_line {
    () => {
        "{:<15} {:>7} {:>7} {:<15} {:<15} {:<20} {:<10} {}"
    };
}
/// The second line: the rest of the call and where it ran, below the first line's TIME.
macro_rules! second_line {
    () => {
        "{:>15} {:<16} {:>8} {:>10}  {:<32} {}"
    };
}

/// The two header lines, matching a row's two lines.
pub fn write_header(out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        first_line!(),
        "TIME", "PID", "TID", "COMM", "ERRNO", "CAUSE", "FAMILY", "TYPE"
    )?;
    writeln!(
        out,
        second_line!(),
        "", "PROTOCOL", "DURATION", "SUPPRESSED", "POD/CONTAINER", "EXE"
    )
}

/// One event: who failed with which errno, why and with which family and type; below it
/// the protocol, duration, suppressed count, pod/container and executable; then the
/// innermost stack frames when there is a stack.
pub fn write_row(out: &mut impl Write, event: &Event) -> io::Result<()> {
    let or_unknown =
        |text: &str| escape_control(if text.is_empty() { "?" } else { text }).into_owned();
    // The time of day is enough on a live screen; JSON carries the full timestamp.
    let ts = event.ts.as_ref().map(rfc3339).unwrap_or_default();
    let time = ts.get(11..26).unwrap_or(&ts);
    writeln!(
        out,
        first_line!(),
        time,
        event.pid,
        event.tid,
        escape_control(&event.comm),
        escape_control(&event.errno_name),
        or_unknown(event.diagnosis.as_ref().map_or("", |d| d.cause.as_str())),
        or_unknown(&event.family_name),
        or_unknown(&event.type_name),
    )?;
    writeln!(
        out,
        second_line!(),
        "",
        or_unknown(&event.protocol_name),
        event
            .duration_ns
            .map_or_else(|| "?".to_owned(), duration_text),
        event.suppressed,
        escape_control(&pod_container(event.container.as_ref(), event.pod.as_ref())),
        escape_control(if event.exe.is_empty() {
            "-"
        } else {
            &event.exe
        }),
    )?;
    if !event.user_stack.is_empty() {
        writeln!(
            out,
            "{:>15} stack: {}",
            "",
            stack_summary(&event.user_stack, STACK_SHOWN)
        )?;
    }
    Ok(())
}

/// Where the caller ran: `namespace/pod/container` in a pod, the container's name (or
/// short id) outside one, `-` outside containers; `?` for what is unknown.
fn pod_container(container: Option<&Container>, pod: Option<&Pod>) -> String {
    let container = container.map(|c| {
        c.name
            .clone()
            .or_else(|| c.id.as_ref().map(|id| id[..id.len().min(12)].to_owned()))
            .unwrap_or_else(|| "?".into())
    });
    let pod = pod.map(|p| {
        let part = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
        format!("{}/{}", part(&p.namespace), part(&p.name))
    });
    match (pod, container) {
        (Some(pod), Some(container)) => format!("{pod}/{container}"),
        (Some(pod), None) => pod,
        (None, Some(container)) => container,
        (None, None) => "-".into(),
    }
}

/// A warning as one line between the rows, e.g. `WARNING nofile 12:00:01.123456: pid 42
/// (nginx) /usr/sbin/nginx in web/api/nginx: 820 of 1024 descriptors (80%), full in ~12 s`.
pub fn write_warning(out: &mut impl Write, w: &Warning) -> io::Result<()> {
    let ts = w.ts.as_ref().map(rfc3339).unwrap_or_default();
    let time = ts.get(11..26).unwrap_or(&ts);
    let who = match w.pid {
        Some(pid) => format!(
            "pid {pid} ({}) {} in {}",
            escape_control(&w.comm),
            escape_control(if w.exe.is_empty() { "?" } else { &w.exe }),
            escape_control(&pod_container(w.container.as_ref(), w.pod.as_ref())),
        ),
        None => "the system's file table".into(),
    };
    let eta = match w.eta_seconds {
        Some(eta) => format!("full in ~{eta:.1} s"),
        None => "not rising".into(),
    };
    writeln!(
        out,
        "WARNING {} {time}: {who}: {} of {} descriptors ({:.0}%), {eta}",
        w.kind,
        w.used,
        w.limit,
        w.ratio * 100.0
    )
}

/// A short readable name for a duration in nanoseconds (`12.3µs`).
fn duration_text(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_a_row_are_escaped() {
        let event = Event {
            comm: "\x1b[2Jevil".into(),
            exe: "/tmp/\x1b]0;owned\x07".into(),
            errno_name: "EAFNOSUPPORT".into(),
            ..Default::default()
        };
        let mut out = Vec::new();
        write_row(&mut out, &event).unwrap();
        let row = String::from_utf8(out).unwrap();
        assert!(!row.contains('\x1b') && !row.contains('\x07'), "{row:?}");
        assert!(row.contains("\\x1b[2Jevil"), "{row}");
        assert!(row.contains("/tmp/\\x1b]0;owned\\x07"), "{row}");
    }

    #[test]
    fn a_typical_row_and_the_header_fit_in_120_columns() {
        let event = Event {
            ts: Some(tapper_proto::Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_456_789,
            }),
            pid: 4_194_304,
            tid: 4_194_304,
            comm: "fifteen-chars-x".into(),
            errno_name: "EPROTONOSUPPORT".into(),
            family_name: "AF_NETLINK".into(),
            type_name: "SOCK_STREAM|SOCK_CLOEXEC".into(),
            protocol_name: "IPPROTO_ICMPV6".into(),
            duration_ns: Some(123_456),
            suppressed: 1_000_000,
            diagnosis: Some(tapper_proto::v1::Diagnosis {
                cause: "protocol_unsupported".into(),
                text: String::new(),
            }),
            container: Some(Container {
                name: Some("web".into()),
                ..Default::default()
            }),
            pod: Some(Pod {
                namespace: Some("shop".into()),
                name: Some("front-7d9f8c6b5-x2x4q".into()),
                ..Default::default()
            }),
            exe: "/usr/local/bin/front".into(),
            ..Default::default()
        };
        let mut out = Vec::new();
        write_header(&mut out).unwrap();
        write_row(&mut out, &event).unwrap();
        let text = String::from_utf8(out).unwrap();
        for line in text.lines() {
            assert!(
                line.chars().count() <= 120,
                "{} columns: {line}",
                line.chars().count()
            );
        }
        assert_eq!(text.lines().count(), 4, "{text}");
    }

    #[test]
    fn the_cause_column_shows_the_diagnosis_or_a_question_mark() {
        let mut event = Event {
            errno_name: "EMFILE".into(),
            ..Default::default()
        };
        let cause_of = |event: &Event| {
            let (mut header, mut row) = (Vec::new(), Vec::new());
            write_header(&mut header).unwrap();
            write_row(&mut row, event).unwrap();
            let (header, row) = (
                String::from_utf8(header).unwrap(),
                String::from_utf8(row).unwrap(),
            );
            let at = header.find("CAUSE").unwrap();
            row[at..].split_whitespace().next().unwrap().to_owned()
        };
        assert_eq!(cause_of(&event), "?");
        event.diagnosis = Some(tapper_proto::v1::Diagnosis {
            cause: "rlimit_nofile".into(),
            text: "open fds 64 of RLIMIT_NOFILE 64".into(),
        });
        assert_eq!(cause_of(&event), "rlimit_nofile");
    }

    #[test]
    fn a_stack_prints_on_a_line_of_its_own_innermost_first() {
        use tapper_proto::v1::StackFrame;
        let named = |address, symbol: &str| StackFrame {
            address,
            symbol: Some(symbol.into()),
            ..Default::default()
        };
        let mut event = Event::default();
        let mut out = Vec::new();
        write_row(&mut out, &event).unwrap();
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2);
        event.user_stack = vec![named(1, "inner"), named(2, "outer")];
        let mut out = Vec::new();
        write_row(&mut out, &event).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[2].trim_start(), "stack: inner < outer");
    }

    #[test]
    fn pod_and_container_show_what_is_known() {
        use tapper_proto::v1::{Container, Pod};
        let id = "0123456789abcdef".repeat(4);
        let mut event = Event::default();
        assert_eq!(
            pod_container(event.container.as_ref(), event.pod.as_ref()),
            "-"
        );
        event.container = Some(Container {
            id: Some(id.clone()),
            ..Default::default()
        });
        assert_eq!(
            pod_container(event.container.as_ref(), event.pod.as_ref()),
            "0123456789ab"
        );
        event.pod = Some(Pod {
            namespace: Some("shop".into()),
            ..Default::default()
        });
        assert_eq!(
            pod_container(event.container.as_ref(), event.pod.as_ref()),
            "shop/?/0123456789ab"
        );
        event.container.as_mut().unwrap().name = Some("web".into());
        event.pod.as_mut().unwrap().name = Some("front-1".into());
        assert_eq!(
            pod_container(event.container.as_ref(), event.pod.as_ref()),
            "shop/front-1/web"
        );
    }

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(duration_text(999), "999ns");
        assert_eq!(duration_text(12_345), "12.3µs");
        assert_eq!(duration_text(2_500_000), "2.5ms");
        assert_eq!(duration_text(3_000_000_000), "3.00s");
    }
}
