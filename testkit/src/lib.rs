//! Child processes for tests and benchmarks: start a workspace binary (tapper, hub) with
//! its output captured, wait for its one-line JSON ready signal, and stop it cleanly.

mod bin;
mod error;
mod lines;
mod postgres;
mod process;

pub use bin::workspace_bin;
pub use error::TestkitError;
pub use postgres::{Postgres, PostgresError};
pub use process::{Process, Stdout, Stopped};
