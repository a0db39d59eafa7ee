//! Running the hub over time: retention, metrics and alerts, each observing ingest through
//! narrow handles.

pub mod alerts;
pub mod commit_observer;
pub mod metrics;
pub mod retention;
