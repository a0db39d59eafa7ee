//! The one event table for people, printed by the tapper and by `hub-client watch` alike:
//! one line per event within 120 columns, cells cut with `…` (never wrapped), control
//! characters escaped, stack frames and warnings on lines of their own.

use std::io::{self, Write};

use crate::{
    Timestamp,
    stack_text::frame_text,
    text::escape_control,
    v1::{Container, Event, Pod, StackFrame, Warning},
};

/// The widest a line gets.
pub const MAX_COLUMNS: usize = 120;
/// Characters of a container id shown when the container has no name (as `podman ps`).
const SHORT_ID: usize = 12;

/// The columns before the last (CAUSE): header and width. ERRNO fits every errno name
/// (EPROTONOSUPPORT, ESOCKTNOSUPPORT: 15); CAUSE gets the rest of the 120 columns.
const COLUMNS: [(&str, usize); 8] = [
    ("TIME", 12),
    ("NODE", NODE_WIDTH),
    ("POD/CONTAINER", POD_CONTAINER_WIDTH),
    ("COMM", 11),
    ("PID", 7),
    ("UID", 5),
    ("ERRNO", 15),
    ("SOCKET", 16),
];
/// NODE and POD/CONTAINER are cut in their middle: node names tend to differ at their end
/// (`worker-01`), and the container's name stays in view.
const NODE_WIDTH: usize = 10;
const POD_CONTAINER_WIDTH: usize = 13;
/// Columns whose numbers are right-aligned.
const NUMERIC: [&str; 2] = ["PID", "UID"];

/// The header line.
pub fn write_header(out: &mut impl Write) -> io::Result<()> {
    let cells = COLUMNS.map(|(name, _)| name.to_owned());
    writeln!(out, "{}", line(&cells, "CAUSE"))
}

/// One event as one line; `node` is the node it ran on (the hub's `Event.node`, or the
/// tapper's own node name).
pub fn write_row(out: &mut impl Write, node: &str, event: &Event) -> io::Result<()> {
    let cells = [
        time_of_day(event.ts.as_ref()),
        cut_middle(&escape_control(node), NODE_WIDTH),
        cut_middle(
            &escape_control(&where_ran(event.container.as_ref(), event.pod.as_ref())),
            POD_CONTAINER_WIDTH,
        ),
        escape_control(&event.comm).into_owned(),
        event.pid.to_string(),
        event.uid.to_string(),
        escape_control(&event.errno_name).into_owned(),
        socket_text(event),
    ];
    writeln!(out, "{}", line(&cells, &cause_text(event)))
}

/// An event's stack, one frame a line under its row, innermost first:
/// `    #0  name (module+0xoffset)`.
pub fn write_stack(out: &mut impl Write, frames: &[StackFrame]) -> io::Result<()> {
    for (depth, frame) in frames.iter().enumerate() {
        writeln!(out, "    #{depth:<2} {}", frame_text(frame))?;
    }
    Ok(())
}

/// A warning as one line between the rows, e.g. `-- warning nofile 12:00:01.123 node-a pid
/// 42 (nginx) in shop/web-1/nginx: 820/1024 fds (80%), full in ~3m --`.
pub fn write_warning(out: &mut impl Write, node: &str, w: &Warning) -> io::Result<()> {
    let who = match (w.pid, where_ran(w.container.as_ref(), w.pod.as_ref())) {
        (Some(pid), place) if place == "-" => format!("pid {pid} ({})", w.comm),
        (Some(pid), place) => format!("pid {pid} ({}) in {place}", w.comm),
        (None, _) => "the system's file table".into(),
    };
    let text = format!(
        "-- warning {} {} {node} {who}: {}/{} fds ({:.0}%), {} --",
        w.kind,
        time_of_day(w.ts.as_ref()),
        w.used,
        w.limit,
        w.ratio * 100.0,
        eta_text(w.eta_seconds)
    );
    writeln!(out, "{}", cut(&escape_control(&text), MAX_COLUMNS))
}

/// When a warning's limit will be reached, e.g. `full in ~3m`; `not rising` without an
/// estimate; never `~0 s`.
pub fn eta_text(eta_seconds: Option<f64>) -> String {
    let Some(eta) = eta_seconds.filter(|s| s.is_finite() && *s >= 0.0) else {
        return "not rising".into();
    };
    let whole = eta.round() as u64;
    match whole {
        0 => "full in <1s".into(),
        1..60 => format!("full in ~{whole}s"),
        60..3_600 => format!("full in ~{}m", (eta / 60.0).round() as u64),
        3_600..86_400 => format!("full in ~{}h", (eta / 3_600.0).round() as u64),
        _ => format!("full in ~{}d", (eta / 86_400.0).round() as u64),
    }
}

/// Where a process ran: `namespace/pod/container` in a pod, the container's name (or
/// short id) outside one, `-` outside containers; `?` for an unknown part.
pub fn where_ran(container: Option<&Container>, pod: Option<&Pod>) -> String {
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

/// The call's arguments in short names, `INET/STREAM/TCP`: without the `AF_`, `SOCK_`,
/// `IPPROTO_` and `NETLINK_` prefixes and the harmless `SOCK_CLOEXEC`/`SOCK_NONBLOCK` flags.
fn socket_text(event: &Event) -> String {
    let short = |name: &str, prefixes: &[&str]| -> String {
        let parts: Vec<&str> = name
            .split('|')
            .filter(|part| !matches!(*part, "SOCK_CLOEXEC" | "SOCK_NONBLOCK"))
            .map(|part| {
                prefixes
                    .iter()
                    .find_map(|prefix| part.strip_prefix(prefix))
                    .unwrap_or(part)
            })
            .collect();
        match parts.join("|") {
            text if text.is_empty() => "?".into(),
            text => text,
        }
    };
    escape_control(&format!(
        "{}/{}/{}",
        short(&event.family_name, &["AF_"]),
        short(&event.type_name, &["SOCK_"]),
        short(&event.protocol_name, &["IPPROTO_", "NETLINK_"])
    ))
    .into_owned()
}

/// The diagnosis's cause (`-` from a reporter that does not diagnose), then for running
/// out of descriptors the open descriptors and the soft limit, `rlimit_nofile 64/64`.
fn cause_text(event: &Event) -> String {
    let cause = event.diagnosis.as_ref().map_or("-", |d| d.cause.as_str());
    let out_of_descriptors = matches!(event.errno_name.as_str(), "EMFILE" | "ENFILE");
    let limits = event
        .limits
        .as_ref()
        .filter(|_| out_of_descriptors)
        .and_then(|l| {
            let open = l.open_fds.map_or_else(|| "?".into(), |n| n.to_string());
            l.nofile_soft.map(|soft| format!(" {open}/{soft}"))
        });
    escape_control(&format!("{cause}{}", limits.unwrap_or_default())).into_owned()
}

/// `HH:MM:SS.mmm` (UTC) of a timestamp; `?` when absent.
fn time_of_day(ts: Option<&Timestamp>) -> String {
    ts.map_or_else(
        || "?".into(),
        |ts| {
            let of_day = ts.seconds.rem_euclid(86_400);
            format!(
                "{:02}:{:02}:{:02}.{:03}",
                of_day / 3_600,
                of_day / 60 % 60,
                of_day % 60,
                ts.nanos.clamp(0, 999_999_999) / 1_000_000
            )
        },
    )
}

/// The cells laid out in their columns, the last (free width) cell after them, the whole
/// cut to [`MAX_COLUMNS`].
fn line(cells: &[String; 8], last: &str) -> String {
    let mut text = String::with_capacity(MAX_COLUMNS);
    for ((name, width), cell) in COLUMNS.iter().zip(cells) {
        // Numbers are never cut: a wider one shifts the line, which is cut at its end.
        if NUMERIC.contains(name) {
            text.push_str(&format!("{cell:>width$} "));
        } else {
            text.push_str(&format!("{:<width$} ", cut(cell, *width)));
        }
    }
    text.push_str(last);
    cut(text.trim_end(), MAX_COLUMNS)
}

/// `text` in at most `width` characters, its end replaced by `…` when cut.
fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// `text` in at most `width` characters, `…` in place of its middle when cut; the end, which
/// tells names apart (`web-2/nginx`, `worker-07`), keeps two thirds.
fn cut_middle(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return text.to_owned();
    }
    let head = (width - 1) / 3;
    let tail = width - 1 - head;
    let mut cut: String = text.chars().take(head).collect();
    cut.push('…');
    cut.extend(text.chars().skip(count - tail));
    cut
}

#[cfg(test)]
mod tests;
