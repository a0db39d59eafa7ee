//! Running the hub over time: retention, metrics and alerts, each working on ingest through
//! narrow handles (the writer, a metrics handle, the commit observer), never the shared state.

pub mod alerts;
pub mod commit_observer;
pub mod metrics;
pub mod retention;
