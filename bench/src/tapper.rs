//! Starting the tapper and bpftrace as probe peers, and reading the tapper's final counters.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::peer::{Peer, Stream};

/// The line the tapper prints on stderr once its probes are attached.
pub const TAPPER_READY: &str = "capturing failed socket() calls";

/// The bpftrace peer program: counts failed socket() calls by command and errno.
pub const BPFTRACE_PROGRAM: &str =
    "tracepoint:syscalls:sys_exit_socket /args->ret < 0/ { @[comm, -args->ret] = count(); }";

/// bpftrace doing what the tapper does on every call: save the arguments on entry in a
/// hash keyed by thread, look them up and delete them on exit, count failures.
pub const BPFTRACE_CORRELATED_PROGRAM: &str = "tracepoint:syscalls:sys_enter_socket { \
     @args[tid] = (args->family, args->type, args->protocol, nsecs); } \
     tracepoint:syscalls:sys_exit_socket { $a = @args[tid]; delete(@args[tid]); \
     if (args->ret < 0) { @[comm, -args->ret, $a.0] = count(); } }";

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts `tapper --probe MODE --output OUTPUT [extra...]` (JSON output goes to /dev/null)
/// and waits until it is capturing.
pub fn start_tapper(tapper: &Path, mode: &str, output: &str, extra: &[String]) -> Result<Peer> {
    let mut cmd = Command::new(tapper);
    cmd.args(["--probe", mode, "--output", output]).args(extra);
    Peer::spawn(
        &format!("tapper --probe {mode}"),
        cmd,
        TAPPER_READY,
        Stream::Stderr,
        false,
        START_TIMEOUT,
    )
}

/// Starts bpftrace with `program` and waits for its "Attaching" line.
pub fn start_bpftrace(bpftrace: &Path, program: &str) -> Result<Peer> {
    let mut cmd = Command::new(bpftrace);
    cmd.args(["-e", program]);
    Peer::spawn(
        "bpftrace",
        cmd,
        "Attaching",
        Stream::Stdout,
        true,
        START_TIMEOUT,
    )
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

/// Stops the tapper and parses its final counters (the JSON line of `--output json`, or
/// the `final counters: calls=.. failures=..` text line of the other outputs).
pub fn stop_tapper(peer: Peer) -> Result<Final> {
    let lines = peer.stop(Duration::from_secs(20))?;
    parse_final(&lines)
        .with_context(|| format!("no final counters from the tapper:\n{}", lines.join("\n")))
}

fn parse_final(lines: &[String]) -> Option<Final> {
    for line in lines.iter().rev() {
        if line.contains("\"counters\":\"final\"") {
            let v: Value = serde_json::from_str(line).ok()?;
            let get = |k: &str| v["stats"][k].as_u64().unwrap_or(0);
            return Some(Final {
                calls: get("calls"),
                failures: get("failures"),
                drops: get("drops"),
                misses: get("misses"),
                events_received: get("events_received"),
            });
        }
        if let Some(rest) = line.split("final counters:").nth(1) {
            let get = |k: &str| {
                rest.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            return Some(Final {
                calls: get("calls"),
                failures: get("failures"),
                drops: get("drops"),
                misses: get("misses"),
                events_received: get("received"),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        let json = r#"{"counters":"final","stats":{"calls":5,"failures":4,"drops":1,"misses":0,"events_received":3}}"#;
        let f = parse_final(&[json.into()]).unwrap();
        assert_eq!(
            (f.calls, f.failures, f.drops, f.events_received),
            (5, 4, 1, 3)
        );
        let text = "final counters: calls=7 failures=6 drops=2 misses=1 received=4 shown=4";
        let f = parse_final(&["x".into(), text.into(), "  EINVAL 6".into()]).unwrap();
        assert_eq!(
            (f.calls, f.failures, f.drops, f.misses, f.events_received),
            (7, 6, 2, 1, 4)
        );
    }
}
