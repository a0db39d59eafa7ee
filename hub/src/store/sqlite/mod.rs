//! The SQLite engine: one writer connection (WAL, `synchronous = FULL`) and a pool of
//! reader connections, so readers see committed snapshots and never hold up a commit.

mod checkpoint;
mod files;
mod gate;
mod identity;
mod insert;
mod losses;
mod reader;
mod replay;
mod retention;
mod rollups;
mod scan;
pub(super) mod schema;
mod stacks;
mod stats;
mod tappers;
mod warnings;
mod writer;

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use rusqlite::Connection;

pub use reader::SqliteReader;
pub use writer::SqliteWriter;

use super::{QueryBudget, Result, StoreError};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                Self::Busy(e.into())
            }
            _ => Self::Engine {
                engine: "sqlite",
                source: e.into(),
            },
        }
    }
}

/// Where every connection of one store opens the database.
#[derive(Debug, Clone)]
struct Location {
    /// A path, or a URI (rusqlite opens with URI names enabled).
    name: String,
    /// `:memory:` becomes a named shared-cache in-memory database, so the writer and the
    /// readers see the same data. It has no WAL: readers there read uncommitted, which
    /// keeps them from taking the table locks that would stop the writer.
    memory: bool,
}

impl Location {
    fn new(path: &str) -> Self {
        if path != ":memory:" {
            return Self {
                name: path.to_owned(),
                memory: false,
            };
        }
        static N: AtomicU64 = AtomicU64::new(0);
        Self {
            name: format!(
                "file:tapper-hub-{}-{}?mode=memory&cache=shared",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
            memory: true,
        }
    }

    fn connect(&self) -> Result<Connection> {
        let conn = Connection::open(&self.name)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(conn)
    }
}

/// Opens (creating or migrating) the database at `path`: the writer first, then readers.
/// A new file (and any directory above it) is created private to the hub's user. Reader
/// queries run under `budget`.
pub fn open(path: &str, budget: QueryBudget) -> Result<(SqliteWriter, SqliteReader)> {
    let location = Location::new(path);
    if !location.memory && !path.starts_with("file:") {
        files::create_private(std::path::Path::new(path)).map_err(|e| StoreError::Engine {
            engine: "sqlite",
            source: format!("creating {path:?}: {e}").into(),
        })?;
    }
    let writer = SqliteWriter::open(&location)?;
    Ok((writer, SqliteReader::new(location, budget)))
}

/// Appends ` AND node IN (?, ...)` for `nodes` (nothing when empty) and binds them.
fn push_node_filter(sql: &mut String, args: &mut Vec<rusqlite::types::Value>, nodes: &[String]) {
    if nodes.is_empty() {
        return;
    }
    sql.push_str(" AND node IN (");
    sql.push_str(&vec!["?"; nodes.len()].join(", "));
    sql.push(')');
    args.extend(nodes.iter().map(|n| n.clone().into()));
}

/// SQLite stores u64 as i64 bit patterns (cgroup ids can use the top bit).
fn u2i(v: u64) -> i64 {
    v as i64
}

fn i2u(v: i64) -> u64 {
    v as u64
}

/// Opening for the engine's tests; records come from the conformance suite's builders.
#[cfg(test)]
mod testkit {
    pub use crate::store::conformance::records::{TempDb, ev, hello, key};

    use super::{SqliteReader, SqliteWriter};
    use crate::store::{QueryBudget, Result};

    /// Opens a store with the default query budget.
    pub fn open(path: &str) -> Result<(SqliteWriter, SqliteReader)> {
        super::open(path, QueryBudget::default())
    }
}
