//! An aligned table for a terminal, with the header repeated now and then. Strings from
//! the failing process (comm, exe) are printed with control characters escaped.

use std::io::{self, Write};

use tapper_proto::{json::rfc3339, text::escape_control, v1::Event};

pub const HEADER_EVERY: u64 = 40;

pub fn write_header(out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<15} {:>7} {:>7} {:<16} {:<16} {:<10} {:<36} {:<16} {:>8} EXE",
        "TIME", "PID", "TID", "COMM", "ERRNO", "FAMILY", "TYPE", "PROTOCOL", "DURATION"
    )
}

pub fn write_row(out: &mut impl Write, event: &Event) -> io::Result<()> {
    let or_unknown =
        |text: &str| escape_control(if text.is_empty() { "?" } else { text }).into_owned();
    // The time of day is enough on a live screen; JSON carries the full timestamp.
    let ts = event.ts.as_ref().map(rfc3339).unwrap_or_default();
    let time = ts.get(11..26).unwrap_or(&ts);
    writeln!(
        out,
        "{:<15} {:>7} {:>7} {:<16} {:<16} {:<10} {:<36} {:<16} {:>8} {}",
        time,
        event.pid,
        event.tid,
        escape_control(&event.comm),
        escape_control(&event.errno_name),
        or_unknown(&event.family_name),
        or_unknown(&event.type_name),
        or_unknown(&event.protocol_name),
        event
            .duration_ns
            .map_or_else(|| "?".to_owned(), duration_text),
        escape_control(if event.exe.is_empty() {
            "-"
        } else {
            &event.exe
        }),
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
    fn durations_pick_a_readable_unit() {
        assert_eq!(duration_text(999), "999ns");
        assert_eq!(duration_text(12_345), "12.3µs");
        assert_eq!(duration_text(2_500_000), "2.5ms");
        assert_eq!(duration_text(3_000_000_000), "3.00s");
    }
}
