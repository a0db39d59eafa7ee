//! The PostgreSQL engine, for stateless hub replicas: any number of hubs share one
//! database. One writer connection per hub (commit groups of all replicas at the same time,
//! numbered as `numbering` says), a pool of reader connections, and a LISTEN connection
//! that wakes the live tail of the events and losses tables, which reads up to the
//! watermark.

mod changes;
mod connect;
mod insert;
mod losses;
mod numbering;
mod reader;
mod replay;
mod retention;
mod schema;
mod stats;
mod tappers;
mod warnings;
mod writer;

pub use changes::PgChanges;
pub use connect::{Database, is_url, redact};
pub use reader::PgReader;
pub use writer::PgWriter;

use super::{QueryBudget, Result, StoreError, with_causes};

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        if e.is_closed() || io {
            // The connection is gone (the database restarted, or the network): retryable.
            return Self::Busy(format!("database connection lost: {}", with_causes(&e)).into());
        }
        Self::Engine {
            engine: "postgres",
            source: e.into(),
        }
    }
}

/// Opens the database at `url` (migrating its schema if needed) for one hub replica: the
/// writer, the reader (queries under `budget`) and the change notifications.
pub fn open(url: &str, budget: QueryBudget) -> Result<(PgWriter, PgReader, PgChanges)> {
    let db = Database::parse(url)?;
    let watermark = numbering::Watermark::default();
    let writer = PgWriter::open(db.clone(), &watermark)?;
    Ok((
        writer,
        PgReader::new(db.clone(), budget, watermark.clone()),
        PgChanges::new(db, watermark),
    ))
}

/// Nanoseconds in SQL are BIGINT; u64 values keep their bit pattern.
fn u2i(v: u64) -> i64 {
    v as i64
}

fn i2u(v: i64) -> u64 {
    v as u64
}

/// Advisory lock keys of the fleet (one namespace: "tapp" in the high bytes).
mod locks {
    /// Held for a moment while a block of hub_seq numbers is reserved, and shared while
    /// the watermark is read.
    pub const NUMBERING: i64 = 0x7461_7070_0000_0001;
    /// Held while one replica migrates the schema.
    pub const MIGRATION: i64 = 0x7461_7070_0000_0002;
    /// Held for its whole session by the one replica that runs retention.
    pub const RETENTION: i64 = 0x7461_7070_0000_0003;
}

/// The channel whose notifications wake every replica's tail after a transaction that held
/// hub_seq numbers ended.
const CHANNEL: &str = "tapper_hub_rows";
