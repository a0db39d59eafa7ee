//! The path of a reported record: counted against the ingest budget, validated, committed in groups, fanned out to live
//! subscribers (or read back from a shared store's tail), with the registry of connected
//! tappers and the log of rejected reports.

pub mod connected;
pub mod db_tail;
pub mod fanout;
pub mod filter;
pub mod group_commit;
pub mod held;
pub mod reject_log;
pub mod validate;
