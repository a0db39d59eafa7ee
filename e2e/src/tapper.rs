//! The real tapper with `--output json`, run through the test kit: its JSON events read
//! while it runs, and at stop its events, warnings and final counters.

use std::{path::Path, process::ExitStatus, time::Duration};

use anyhow::Context;
use nix::sys::signal::Signal;
use serde_json::Value;
use tapper_testkit::{TapperCommand, TapperProcess, TapperStopped};

const STOP_GRACE: Duration = Duration::from_secs(30);

pub struct RunningTapper {
    process: TapperProcess,
}

pub struct TapperOutput {
    pub status: ExitStatus,
    pub events: Vec<Value>,
    /// The warnings (the objects under each `{"warning": ...}` line), in order.
    pub warnings: Vec<Value>,
    /// Every stdout line, parsed, in order (events and warnings together).
    pub lines: Vec<Value>,
    /// The `stats` object of the final counters line.
    pub final_counters: Value,
    pub stderr: Vec<String>,
}

impl RunningTapper {
    /// Starts `tapper --output json ARGS` and waits until it has attached.
    pub fn start(bin: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let process = TapperCommand::new(bin)
            .flags(["--output", "json"])
            .flags(args.iter().copied())
            .capture_stdout()
            .start()?;
        Ok(Self { process })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The probe mode it attached, from its ready line.
    pub fn probe(&self) -> &str {
        &self.process.ready().probe
    }

    /// Whether it captures io_uring socket failures, from its ready line.
    pub fn io_uring(&self) -> bool {
        self.process.ready().io_uring
    }

    /// Waits up to `timeout` for the tapper to print events for which `count` (given each
    /// event line in order) returns `Some`, while it keeps running.
    pub fn wait_events<T>(
        &self,
        what: &str,
        timeout: Duration,
        count: impl FnMut(&Value) -> Option<T>,
    ) -> anyhow::Result<T> {
        let mut count = count;
        Ok(self.process.wait_stdout(what, timeout, |line| {
            serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|event| count(&event))
        })?)
    }

    /// Waits up to `timeout` for an event line for which `wanted` holds, and returns it.
    pub fn wait_event(
        &self,
        timeout: Duration,
        mut wanted: impl FnMut(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        self.wait_events("the awaited event", timeout, |event| {
            wanted(event).then(|| event.clone())
        })
    }

    /// Sends `signal` (repeated until it exits), and parses what the tapper printed.
    pub fn stop(self, signal: Signal) -> anyhow::Result<TapperOutput> {
        let TapperStopped {
            stopped,
            final_counters,
        } = self.process.stop_with(signal, STOP_GRACE)?;
        let lines = stopped
            .stdout
            .iter()
            .map(|line| serde_json::from_str(line).with_context(|| format!("output line `{line}`")))
            .collect::<anyhow::Result<Vec<Value>>>()?;
        let (warnings, events): (Vec<Value>, Vec<Value>) = lines
            .iter()
            .cloned()
            .partition(|line| line.get("warning").is_some());
        let warnings = warnings.into_iter().map(|w| w["warning"].clone()).collect();
        Ok(TapperOutput {
            status: stopped.status,
            events,
            warnings,
            lines,
            final_counters,
            stderr: stopped.stderr,
        })
    }
}
