//! Store failures, the same for every engine.

/// An engine's own error.
pub type EngineError = Box<dyn std::error::Error + Send + Sync>;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is locked or busy; retrying may work.
    #[error("database busy: {0}")]
    Busy(EngineError),
    /// Any other error of the engine.
    #[error("{engine}: {source}")]
    Engine {
        engine: &'static str,
        source: EngineError,
    },
    /// A stored blob does not decode.
    #[error("stored record does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
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
