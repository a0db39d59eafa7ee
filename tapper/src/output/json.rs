//! One JSON object per event, one per line: the JSON form of `tapper.v1.Event`.

use std::io::{self, Write};

use tapper_proto::v1::Event;

pub fn write(out: &mut impl Write, event: &Event) -> io::Result<()> {
    serde_json::to_writer(&mut *out, event)?;
    out.write_all(b"\n")
}
