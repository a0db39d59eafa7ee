//! Running the hub over time: retention, metrics and alerts, each observing ingest through
//! narrow handles.

pub mod alerts;
pub mod metrics;
pub mod retention;
