//! What can go wrong with a child process; every variant carries the process's captured
//! output, so a failing test shows why.

use std::path::PathBuf;

/// An error of the harness, with the child's output where there is one.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error("{path} does not exist: build it first (cargo build) or set {var}")]
    BinaryNotFound { path: PathBuf, var: String },
    #[error("starting {name}: {source}")]
    Spawn {
        name: String,
        source: std::io::Error,
    },
    #[error("{name} {why}; its output:\n{output}")]
    NotReady {
        name: String,
        why: String,
        output: String,
    },
    #[error(
        "{name} did not exit within {grace:?} of {signal}, so it was killed; its output:\n{output}"
    )]
    NotStopped {
        name: String,
        grace: std::time::Duration,
        signal: String,
        output: String,
    },
    #[error("{name} exited with {status}; its output:\n{output}")]
    Failed {
        name: String,
        status: std::process::ExitStatus,
        output: String,
    },
    #[error(
        "{name} exited with {status} without printing its final counters; its output:\n{output}"
    )]
    NoFinalCounters {
        name: String,
        status: std::process::ExitStatus,
        output: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}
