//! What the kernel reads in the failing task: short-lived C processes fail `socket()` and
//! are reaped before the real tapper may look at `/proc` (it is stopped meanwhile), so
//! their events carry exe, cmdline and limits from the kernel alone, with capabilities and
//! seccomp mode. In the default mode and in tracepoint mode. Run as root.

use std::{path::Path, sync::Mutex, time::Duration};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::{Value, json};
use tapper_e2e::{context_check, short_lived, tapper::RunningTapper};

/// One tapper at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const EVENT_TIMEOUT: Duration = Duration::from_secs(30);
const CAP_NET_RAW: u32 = 13;

/// The events of each mode's process, run while the tapper is stopped: (mode, events).
fn run_while_stopped(tapper_args: &[&str], modes: &[&str]) -> Vec<(String, Vec<Value>)> {
    let dir = tempfile::tempdir().unwrap();
    let bin = short_lived::build(dir.path()).unwrap();
    let tapper_bin = tapper_testkit::workspace_bin("tapper").unwrap_or_else(|e| panic!("{e}"));
    let tapper = RunningTapper::start(&tapper_bin, tapper_args).unwrap();
    let stopped = Pid::from_raw(tapper.pid() as i32);
    kill(stopped, Signal::SIGSTOP).unwrap();
    let pids: Vec<(String, u32)> = modes
        .iter()
        .map(|mode| (mode.to_string(), short_lived::run(&bin, mode).unwrap()))
        .collect();
    for (_, pid) in &pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} is gone"
        );
    }
    kill(stopped, Signal::SIGCONT).unwrap();
    let expected = |mode: &str| if mode == "emfile" { 2 } else { 1 };
    let mut seen = vec![0; pids.len()];
    tapper
        .wait_event(EVENT_TIMEOUT, |e| {
            for (n, (_, pid)) in seen.iter_mut().zip(&pids) {
                *n += usize::from(e["pid"] == *pid && e["comm"] == "short-lived");
            }
            pids.iter()
                .zip(&seen)
                .all(|((mode, _), &n)| n >= expected(mode))
        })
        .unwrap();
    let out = tapper.stop(Signal::SIGINT).unwrap();
    pids.into_iter()
        .map(|(mode, pid)| {
            let events: Vec<Value> = out
                .events
                .iter()
                .filter(|e| e["pid"] == pid && e["comm"] == "short-lived")
                .cloned()
                .collect();
            assert_eq!(events.len(), expected(&mode), "{mode}: {events:#?}");
            (mode, events)
        })
        .collect()
}

/// This test's own effective capabilities, which its root children inherit.
fn own_cap_effective() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

fn check(tapper_args: &[&str], probe: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let modes = ["emfile", "raw-as-nobody", "seccomp"];
    let runs = run_while_stopped(tapper_args, &modes);
    let all_from_kernel = json!([
        "exe",
        "cmdline",
        "limits.nofile_soft",
        "limits.nofile_hard",
        "limits.open_fds"
    ]);
    for (mode, events) in &runs {
        for e in events {
            assert_eq!(e["probe"], probe, "{mode}: {e}");
            assert_eq!(e["exe"], "short-lived", "{mode}: {e}");
            let cmdline = e["cmdline"].as_str().unwrap();
            assert!(
                cmdline.ends_with(&format!("/short-lived {mode}")),
                "{mode}: {cmdline}"
            );
            assert_eq!(e["from_kernel"], all_from_kernel, "{mode}: {e}");
        }
    }
    let [(_, emfile), (_, raw), (_, seccomp)] = &runs[..] else {
        unreachable!("three modes")
    };
    for e in emfile {
        assert_eq!(e["errno_name"], "EMFILE");
        // EMFILE at 64: every descriptor below the soft limit is taken, none above.
        assert_eq!(
            e["limits"],
            json!({"nofile_soft": 64, "nofile_hard": 64, "open_fds": 64})
        );
        assert_eq!(e["cap_effective"], own_cap_effective());
        assert_eq!(e["seccomp_mode"], "disabled");
    }
    let raw = &raw[0];
    assert_eq!(
        (&raw["errno_name"], &raw["uid"]),
        (&json!("EPERM"), &json!(65534))
    );
    let caps = raw["cap_effective"].as_u64().unwrap();
    assert_eq!(caps & (1 << CAP_NET_RAW), 0, "{raw}");
    assert_eq!(caps, 0, "a uid switch from root clears the effective set");
    assert_eq!(raw["seccomp_mode"], "disabled");
    let seccomp = &seccomp[0];
    assert_eq!(
        (&seccomp["errno_name"], &seccomp["family_name"]),
        (&json!("EACCES"), &json!("AF_INET6"))
    );
    assert_eq!(seccomp["seccomp_mode"], "filter");
    // The tapper's own limits are not the process's: the kernel read the failing task's.
    assert_ne!(seccomp["limits"]["nofile_soft"], 64);
}

#[test]
fn default_mode_reads_what_vanishes_with_the_process() {
    check(&[], "exit-only");
}

#[test]
fn tracepoint_mode_reads_what_vanishes_with_the_process() {
    check(&["--probe", "tracepoint"], "tracepoint");
}

/// The kernel-matrix VMs' short-lived check, here: exe, cmdline, limits, fd count, a stack
/// named from the binary on disk and the diagnosis, exactly, for a process already gone.
#[test]
fn a_process_gone_after_emfile_has_its_context_stack_and_diagnosis() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let bin = short_lived::build(dir.path()).unwrap();
    let tapper = tapper_testkit::workspace_bin("tapper").unwrap_or_else(|e| panic!("{e}"));
    for probe in [None, Some("tracepoint")] {
        let attached = context_check::run(&tapper, &bin, probe)
            .unwrap_or_else(|err| panic!("{probe:?}: {err:#}"));
        assert_eq!(attached, probe.unwrap_or("exit-only"));
    }
}
