//! Child processes for tests and benchmarks: start a workspace binary with its output
//! captured, wait for its one-line JSON ready signal, and stop it cleanly; typed starters
//! for the hub and the tapper on top.

mod bin;
mod error;
mod hub;
mod lines;
mod postgres;
mod process;
mod tapper;

pub use bin::workspace_bin;
pub use error::TestkitError;
pub use hub::{HubCommand, HubProcess, HubReady};
pub use postgres::{Postgres, PostgresError};
pub use process::{Process, Stdout, Stopped};
pub use tapper::{TapperCommand, TapperProcess, TapperReady, TapperStopped};
