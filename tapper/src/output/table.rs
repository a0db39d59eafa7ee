//! An aligned table for a terminal, with the header repeated now and then.

use std::io::{self, Write};

use crate::{decode::duration_text, event::Event};

pub const HEADER_EVERY: u64 = 40;

pub fn write_header(out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<15} {:>7} {:>7} {:<16} {:<16} {:<10} {:<36} {:<16} {:>8} EXE",
        "TIME", "PID", "TID", "COMM", "ERRNO", "FAMILY", "TYPE", "PROTOCOL", "DURATION"
    )
}

pub fn write_row(out: &mut impl Write, event: &Event) -> io::Result<()> {
    let unknown = || "?".to_owned();
    // The time of day is enough on a live screen; JSON carries the full timestamp.
    let time = event.ts.get(11..26).unwrap_or(&event.ts);
    writeln!(
        out,
        "{:<15} {:>7} {:>7} {:<16} {:<16} {:<10} {:<36} {:<16} {:>8} {}",
        time,
        event.pid,
        event.tid,
        event.comm,
        event.errno_name,
        event.family_name.clone().unwrap_or_else(unknown),
        event.type_name.clone().unwrap_or_else(unknown),
        event.protocol_name.clone().unwrap_or_else(unknown),
        event.duration_ns.map(duration_text).unwrap_or_else(unknown),
        event.exe.as_deref().unwrap_or("-"),
    )
}
