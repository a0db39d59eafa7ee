//! Local output of events: JSON lines for machines, the one event table for people
//! (`tapper_proto::table`, as `hub-client watch` prints it).

mod json;

use std::io::{self, Write};

use tapper_proto::{
    table,
    v1::{Event, Warning},
};

/// Table rows between repeated headers.
const HEADER_EVERY: u64 = 40;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table (the default when stdout is a terminal).
    Table,
    /// One JSON object per line (the default otherwise).
    Json,
    /// Print no events (counters only).
    None,
}

/// Writes events to stdout in one format, flushing each so pipes see them live.
pub struct EventWriter {
    format: Format,
    /// The node name the table shows (the one sent to hubs).
    node: String,
    out: io::BufWriter<io::Stdout>,
    rows: u64,
}

impl EventWriter {
    pub fn new(format: Format, node: String) -> Self {
        Self {
            format,
            node,
            out: io::BufWriter::new(io::stdout()),
            rows: 0,
        }
    }

    /// Whether events are written at all (not with `--output none`).
    pub fn shows_events(&self) -> bool {
        self.format != Format::None
    }

    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        match self.format {
            Format::Json => json::write(&mut self.out, event)?,
            Format::Table => {
                if self.rows.is_multiple_of(HEADER_EVERY) {
                    table::write_header(&mut self.out)?;
                }
                table::write_row(&mut self.out, &self.node, event)?;
                table::write_stack(&mut self.out, &event.user_stack)?;
            }
            Format::None => return Ok(()),
        }
        self.rows += 1;
        Ok(())
    }

    /// Writes a warning: a JSON line of its own, or one readable line between table rows.
    pub fn write_warning(&mut self, warning: &Warning) -> io::Result<()> {
        match self.format {
            Format::Json => json::write_warning(&mut self.out, warning),
            Format::Table => table::write_warning(&mut self.out, &self.node, warning),
            Format::None => Ok(()),
        }
    }

    /// Flushes what was written; call after each batch drained from the kernel.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
