//! One JSON object per event, one per line: the JSON form of `tapper.v1.Event`; a warning
//! is a line of its own, `{"warning": {...}}` (the JSON form of `tapper.v1.Warning`).

use std::io::{self, Write};

use tapper_proto::v1::{Event, Warning};

pub fn write(out: &mut impl Write, event: &Event) -> io::Result<()> {
    serde_json::to_writer(&mut *out, event)?;
    out.write_all(b"\n")
}

/// Written around the message itself, so its keys keep the proto's order.
pub fn write_warning(out: &mut impl Write, warning: &Warning) -> io::Result<()> {
    out.write_all(b"{\"warning\":")?;
    serde_json::to_writer(&mut *out, warning)?;
    out.write_all(b"}\n")
}
