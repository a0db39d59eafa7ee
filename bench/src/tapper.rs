//! Starting the tapper and bpftrace as probe peers (through the test kit), and reading the
//! tapper's final JSON counters.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context, Result};
use serde_json::Value;
use tapper_testkit::{Process, Stdout};

/// The bpftrace peer program: counts failed socket() calls by command and errno.
pub const BPFTRACE_PROGRAM: &str =
    "tracepoint:syscalls:sys_exit_socket /args->ret < 0/ { @[comm, -args->ret] = count(); }";

/// bpftrace doing what the tapper does per failure: one record out to user space, here a
/// printed line.
pub const BPFTRACE_PRINTF_PROGRAM: &str = "tracepoint:syscalls:sys_exit_socket /args->ret < 0/ \
     { printf(\"%d %d %s %d\\n\", pid, tid, comm, -args->ret); }";

/// bpftrace doing what the pair modes do on every call: save the arguments on entry in a
/// hash keyed by thread, look them up and delete them on exit, count failures.
pub const BPFTRACE_CORRELATED_PROGRAM: &str = "tracepoint:syscalls:sys_enter_socket { \
     @args[tid] = (args->family, args->type, args->protocol, nsecs); } \
     tracepoint:syscalls:sys_exit_socket { $a = @args[tid]; delete(@args[tid]); \
     if (args->ret < 0) { @[comm, -args->ret, $a.0] = count(); } }";

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts `tapper --probe MODE --output OUTPUT --counters json [extra...]` (events go to
/// /dev/null) and waits for its ready line.
pub fn start_tapper(tapper: &Path, mode: &str, output: &str, extra: &[String]) -> Result<Process> {
    let mut cmd = Command::new(tapper);
    cmd.args(["--probe", mode, "--output", output, "--counters", "json"])
        .args(extra);
    let peer = Process::spawn(&format!("tapper --probe {mode}"), cmd, Stdout::Discard)?;
    peer.wait_ready(START_TIMEOUT)?;
    Ok(peer)
}

/// Starts bpftrace with `program` and waits for its "Attaching" line.
pub fn start_bpftrace(bpftrace: &Path, program: &str) -> Result<Process> {
    let mut cmd = Command::new(bpftrace);
    cmd.args(["-e", program]);
    let peer = Process::spawn("bpftrace", cmd, Stdout::Capture)?;
    peer.wait_stdout("its `Attaching` line", START_TIMEOUT, |line| {
        line.contains("Attaching").then_some(())
    })?;
    Ok(peer)
}

/// The tapper's final counters (`{"counters":"final","stats":{...}}` on stderr).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Final {
    pub calls: u64,
    pub failures: u64,
    pub drops: u64,
    pub misses: u64,
    pub events_received: u64,
}

/// Stops the tapper and parses its final counters, the JSON line on stderr.
pub fn stop_tapper(peer: Process) -> Result<Final> {
    let stopped = peer.stop(Duration::from_secs(20))?;
    parse_final(&stopped.stderr).with_context(|| {
        format!(
            "no final counters from the tapper:\n{}",
            stopped.stderr.join("\n")
        )
    })
}

fn parse_final(lines: &[String]) -> Option<Final> {
    let v = lines
        .iter()
        .rev()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|v| v["counters"] == "final")?;
    let get = |k: &str| v["stats"][k].as_u64().unwrap_or(0);
    Some(Final {
        calls: get("calls"),
        failures: get("failures"),
        drops: get("drops"),
        misses: get("misses"),
        events_received: get("events_received"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_json_line_among_logs() {
        let json = r#"{"counters":"final","stats":{"calls":5,"failures":4,"drops":1,"misses":0,"events_received":3}}"#;
        let f = parse_final(&["a log line".into(), json.into()]).unwrap();
        assert_eq!(
            (f.calls, f.failures, f.drops, f.events_received),
            (5, 4, 1, 3)
        );
        assert_eq!(parse_final(&["final counters: calls=7".into()]), None);
    }
}
