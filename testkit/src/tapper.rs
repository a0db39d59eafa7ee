//! The tapper as a child process: `tapper FLAGS...` started and awaited until its ready
//! line says it attached; stopped by a signal, its final JSON counters read from stderr.

use std::{path::PathBuf, process::Command, time::Duration};

use nix::sys::signal::Signal;
use serde_json::{Map, Value};

use crate::{Process, Stdout, Stopped, TestkitError};

/// How long the tapper may take to load and attach its probes.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How to start a tapper.
#[derive(Clone, Debug)]
pub struct TapperCommand {
    bin: PathBuf,
    flags: Vec<String>,
    stdout: Stdout,
}

/// What the tapper's ready line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapperReady {
    /// The probe mode it attached (`tracepoint`, `fexit`, ...).
    pub probe: String,
    /// Whether it captures io_uring socket failures.
    pub io_uring: bool,
    /// The metrics endpoint (`--metrics-listen`), if asked for.
    pub metrics: Option<String>,
}

/// A running tapper.
pub struct TapperProcess {
    process: Process,
    ready: TapperReady,
}

/// What a stopped tapper left behind.
#[derive(Debug)]
pub struct TapperStopped {
    /// Its exit status and output lines.
    pub stopped: Stopped,
    /// The `stats` object of its final counters line,
    /// `{"counters":"final","stats":{...}}` on stderr.
    pub final_counters: Value,
}

impl TapperCommand {
    /// The tapper binary `bin` (see [`crate::workspace_bin`]); its stdout is discarded
    /// unless [`TapperCommand::capture_stdout`].
    pub fn new(bin: impl Into<PathBuf>) -> TapperCommand {
        TapperCommand {
            bin: bin.into(),
            flags: Vec::new(),
            stdout: Stdout::Discard,
        }
    }

    /// More flags.
    pub fn flags<S: Into<String>>(mut self, flags: impl IntoIterator<Item = S>) -> TapperCommand {
        self.flags.extend(flags.into_iter().map(Into::into));
        self
    }

    /// Keeps its stdout lines (its events with `--output json`).
    pub fn capture_stdout(mut self) -> TapperCommand {
        self.stdout = Stdout::Capture;
        self
    }

    /// Starts the tapper and waits until its ready line says it attached.
    pub fn start(self) -> Result<TapperProcess, TestkitError> {
        let name = format!("tapper {}", self.flags.join(" "));
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.flags);
        let process = Process::spawn(name.trim_end(), cmd, self.stdout)?;
        let fields = process.wait_ready(READY_TIMEOUT)?;
        let ready = TapperReady::from_fields(&fields).ok_or_else(|| TestkitError::NotReady {
            name: name.trim_end().into(),
            why: "printed a ready line without its `probe` mode".into(),
            output: process.output(),
        })?;
        Ok(TapperProcess { process, ready })
    }
}

impl TapperReady {
    fn from_fields(fields: &Map<String, Value>) -> Option<TapperReady> {
        Some(TapperReady {
            probe: fields.get("probe")?.as_str()?.to_owned(),
            io_uring: fields.get("io_uring") == Some(&Value::Bool(true)),
            metrics: fields
                .get("metrics")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

impl TapperProcess {
    /// The fields of its ready line.
    pub fn ready(&self) -> &TapperReady {
        &self.ready
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Waits up to `timeout` for a stdout line for which `f` returns `Some` (see
    /// [`Process::wait_stdout`]); stdout must be captured.
    pub fn wait_stdout<T>(
        &self,
        what: &str,
        timeout: Duration,
        f: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, TestkitError> {
        self.process.wait_stdout(what, timeout, f)
    }

    /// Stops with repeated SIGINT; see [`TapperProcess::stop_with`].
    pub fn stop(self, grace: Duration) -> Result<TapperStopped, TestkitError> {
        self.stop_with(Signal::SIGINT, grace)
    }

    /// Sends `signal` (repeated until it exits within `grace`) and reads its final
    /// counters, which a tapper that stopped cleanly always prints.
    pub fn stop_with(self, signal: Signal, grace: Duration) -> Result<TapperStopped, TestkitError> {
        let name = format!("tapper (pid {})", self.pid());
        let stopped = self.process.stop_with(signal, grace)?;
        match final_counters(&stopped.stderr) {
            Some(final_counters) => Ok(TapperStopped {
                stopped,
                final_counters,
            }),
            None => Err(TestkitError::NoFinalCounters {
                name,
                status: stopped.status,
                output: stopped.stderr.join("\n"),
            }),
        }
    }
}

/// The `stats` of the last `{"counters":"final","stats":{...}}` line among `stderr`.
fn final_counters(stderr: &[String]) -> Option<Value> {
    stderr
        .iter()
        .rev()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|v| v["counters"] == "final")
        .map(|v| v["stats"].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_counters_are_found_among_log_lines() {
        let json = r#"{"counters":"final","stats":{"calls":5,"failures":4}}"#;
        let stats = final_counters(&["a log line".into(), json.into()]).unwrap();
        assert_eq!(
            (stats["calls"].as_u64(), stats["failures"].as_u64()),
            (Some(5), Some(4))
        );
        let periodic = r#"{"counters":"periodic","stats":{"calls":7}}"#;
        assert_eq!(
            final_counters(&["final counters: calls=7".into(), periodic.into()]),
            None
        );
    }

    #[test]
    fn the_ready_line_gives_the_probe_and_io_uring() {
        let fields = serde_json::json!({"probe": "tracepoint", "pid": 7, "io_uring": true});
        let ready = TapperReady::from_fields(fields.as_object().unwrap()).unwrap();
        assert_eq!((ready.probe.as_str(), ready.io_uring), ("tracepoint", true));
        assert_eq!(ready.metrics, None);
        let no_probe = serde_json::json!({"pid": 7});
        assert_eq!(
            TapperReady::from_fields(no_probe.as_object().unwrap()),
            None
        );
    }
}
