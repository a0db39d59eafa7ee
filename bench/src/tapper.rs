//! Starting the tapper and bpftrace as probe peers (through the test kit), and the tapper's
//! final counters as numbers.

use std::{path::Path, process::Command, time::Duration};

use anyhow::Result;
use serde_json::Value;
use tapper_testkit::{Process, Stdout, TapperCommand, TapperProcess};

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
pub fn start_tapper(
    tapper: &Path,
    mode: &str,
    output: &str,
    extra: &[String],
) -> Result<TapperProcess> {
    Ok(TapperCommand::new(tapper)
        .flags(["--probe", mode, "--output", output, "--counters", "json"])
        .flags(extra.iter().cloned())
        .start()?)
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

/// Stops the tapper (SIGINT) and reads its final counters.
pub fn stop_tapper(peer: TapperProcess) -> Result<Final> {
    let stopped = peer.stop(Duration::from_secs(20))?;
    Ok(Final::from_stats(&stopped.final_counters))
}

impl Final {
    /// From the `stats` object of the final counters line; a missing counter is 0.
    fn from_stats(stats: &Value) -> Final {
        let get = |k: &str| stats[k].as_u64().unwrap_or(0);
        Final {
            calls: get("calls"),
            failures: get("failures"),
            drops: get("drops"),
            misses: get("misses"),
            events_received: get("events_received"),
        }
    }
}

/// A probe peer of the overhead runs: the tapper (its final counters read at stop) or
/// bpftrace.
pub enum Peer {
    Tapper(TapperProcess),
    Bpftrace(Process),
}

impl Peer {
    /// Stops the peer; the tapper's final counters, if it is the tapper.
    pub fn stop(self) -> Result<Option<Final>> {
        match self {
            Peer::Tapper(tapper) => stop_tapper(tapper).map(Some),
            Peer::Bpftrace(bpftrace) => {
                bpftrace.stop(Duration::from_secs(20))?;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_map_by_name_and_missing_ones_are_zero() {
        let stats = serde_json::json!({"calls":5,"failures":4,"drops":1,"events_received":3});
        let f = Final::from_stats(&stats);
        assert_eq!(
            (f.calls, f.failures, f.drops, f.misses, f.events_received),
            (5, 4, 1, 0, 3)
        );
    }
}
