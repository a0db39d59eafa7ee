//! The short-lived check, run on the host and in every kernel-matrix VM: while the tapper
//! (with `--stacks`) is frozen, the short-lived workload hits EMFILE at RLIMIT_NOFILE 64
//! and exits; its two events must then carry exactly what the kernel read in the task
//! (exe, cmdline, limits, fd count), a stack named from the binary on disk, and the
//! diagnosis with its numbers.

use std::{path::Path, time::Duration};

use anyhow::{Context, ensure};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::{Value, json};

use crate::{short_lived, tapper::RunningTapper};

const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The `emfile` mode's failures: the one that found the table full, and one more.
const EMFILE_EVENTS: usize = 2;

/// Runs the check with the tapper in `probe` mode (its default when `None`); returns the
/// mode it attached.
pub fn run(tapper: &Path, workload: &Path, probe: Option<&str>) -> anyhow::Result<String> {
    let mut args = vec!["--stacks", "--comm", "short-lived"];
    if let Some(probe) = probe {
        args.extend(["--probe", probe]);
    }
    let running = RunningTapper::start(tapper, &args)?;
    let attached = running.probe().to_owned();
    let frozen = Pid::from_raw(running.pid() as i32);
    kill(frozen, Signal::SIGSTOP)?;
    let ran = short_lived::run(workload, "emfile");
    kill(frozen, Signal::SIGCONT)?;
    let pid = ran?;
    ensure!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} is still in /proc after it was reaped"
    );
    let mut seen = 0;
    let waited = running.wait_events("the short-lived EMFILE events", EVENT_TIMEOUT, |e| {
        seen += usize::from(e["pid"] == pid);
        (seen == EMFILE_EVENTS).then_some(())
    });
    let out = running.stop(Signal::SIGINT)?;
    waited?;
    let events: Vec<&Value> = out.events.iter().filter(|e| e["pid"] == pid).collect();
    ensure!(
        events.len() == EMFILE_EVENTS,
        "want {EMFILE_EVENTS} events of pid {pid}, got {events:#?}"
    );
    for event in events {
        check_event(event, workload, &attached).with_context(|| format!("event {event}"))?;
    }
    Ok(attached)
}

/// One EMFILE event of the workload, field by field.
fn check_event(event: &Value, workload: &Path, probe: &str) -> anyhow::Result<()> {
    let module = workload.to_str().context("a UTF-8 workload path")?;
    let fields = [
        ("errno_name", json!("EMFILE")),
        ("probe", json!(probe)),
        ("exe", json!("short-lived")),
        ("cmdline", json!(format!("{module} emfile"))),
        (
            "from_kernel",
            json!([
                "exe",
                "cmdline",
                "limits.nofile_soft",
                "limits.nofile_hard",
                "limits.open_fds"
            ]),
        ),
        // EMFILE at 64: every descriptor below the soft limit is taken, none above.
        (
            "limits",
            json!({"nofile_soft": 64, "nofile_hard": 64, "open_fds": 64}),
        ),
        ("seccomp_mode", json!("disabled")),
        (
            "diagnosis",
            json!({
                "cause": "rlimit_nofile",
                "text": "open fds 64 of RLIMIT_NOFILE 64 (hard 64): the process is at its \
                         descriptor limit; raise LimitNOFILE/ulimit -n or look for a \
                         descriptor leak"
            }),
        ),
    ];
    for (key, want) in fields {
        ensure!(event[key] == want, "{key} is {}, want {want}", event[key]);
    }
    let frames = event["user_stack"].as_array().context("no user_stack")?;
    let functions = short_lived::EMFILE_FUNCTIONS;
    ensure!(
        frames.len() >= functions.len(),
        "{} frames, want at least {}",
        frames.len(),
        functions.len()
    );
    for (frame, function) in frames.iter().zip(functions) {
        // The kernel gives a build-id frame without its address: the offset stands in.
        let offset = frame["offset"].as_u64().context("a frame without offset")?;
        let want = json!({
            "address": offset,
            "build_id": short_lived::BUILD_ID,
            "module": module,
            "offset": offset,
            "symbol": function,
        });
        ensure!(*frame == want, "frame {frame}, want {want}");
    }
    Ok(())
}
