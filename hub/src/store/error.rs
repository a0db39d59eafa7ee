//! Store failures, the same for every engine; an engine's error is shown with its causes
//! (a PostgreSQL "db error" says what the server said, e.g. that its disk is full).

use std::{error::Error, sync::Arc};

/// An engine's own error.
pub type EngineError = Box<dyn Error + Send + Sync>;

/// `error` followed by each of its causes that its text does not already end with.
pub fn with_causes(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is locked or busy; retrying may work.
    #[error("database busy: {}", with_causes(.0.as_ref()))]
    Busy(EngineError),
    /// Any other error of the engine.
    #[error("{engine}: {}", with_causes(.source.as_ref()))]
    Engine {
        engine: &'static str,
        source: EngineError,
    },
    /// A stored blob does not decode.
    #[error("stored record does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The transaction of a group of steps failed to commit (each step of the group gets
    /// this); the cause names the engine.
    #[error("group commit failed: {0}")]
    GroupCommit(Arc<StoreError>),
    /// The database was written by a newer hub.
    #[error(
        "database schema version {found} is newer than this hub knows ({known}): run a hub of \
         that version, or give --db another database"
    )]
    NewerSchema { found: i64, known: i64 },
    /// The record contradicts what is stored (e.g. a loss over committed seq numbers);
    /// nothing was stored. `field` names the offending field of the request.
    #[error("{field}: {reason}")]
    Rejected { field: &'static str, reason: String },
    /// A query went over its time or work budget and was stopped.
    #[error("{0}")]
    OverBudget(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("db error")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn an_engine_error_shows_its_causes_once() {
        let disk_full = std::io::Error::other("could not extend file: No space left on device");
        let e = StoreError::Engine {
            engine: "postgres",
            source: Box::new(Outer(disk_full)),
        };
        assert_eq!(
            e.to_string(),
            "postgres: db error: could not extend file: No space left on device"
        );
        let group = StoreError::GroupCommit(Arc::new(e));
        assert_eq!(
            group.to_string(),
            "group commit failed: postgres: db error: could not extend file: No space left on device"
        );
    }
}
