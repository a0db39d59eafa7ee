//! One JSON object per event, one per line.

use std::io::{self, Write};

use crate::event::Event;

pub fn write(out: &mut impl Write, event: &Event) -> io::Result<()> {
    serde_json::to_writer(&mut *out, event)?;
    out.write_all(b"\n")
}
