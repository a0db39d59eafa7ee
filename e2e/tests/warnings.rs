//! Early warnings on this host's kernel: the real tapper and real processes that use up
//! their descriptors under RLIMIT_NOFILE 256. Run as root.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::Mutex,
};

use nix::sys::signal::Signal;
use serde_json::Value;
use tapper_e2e::tapper::{RunningTapper, TapperOutput};

/// One tapper at a time (as in the capture tests).
static SERIAL: Mutex<()> = Mutex::new(());

/// The interval the tests give the tapper (`--warn-interval`), in seconds.
const INTERVAL: f64 = 1.0;

fn tapper_bin() -> PathBuf {
    tapper_testkit::workspace_bin("tapper").unwrap_or_else(|e| panic!("{e}"))
}

fn ramp_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_fd-ramp"))
}

/// Starts `fd-ramp ARGS`; returns the child (its pid is the workload's).
fn ramp(args: &[&str]) -> std::process::Child {
    Command::new(ramp_bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting fd-ramp")
}

/// Waits for a workload and returns its JSON summary.
fn finish(child: std::process::Child) -> Value {
    let Output { status, stdout, .. } = child.wait_with_output().unwrap();
    assert!(status.success(), "fd-ramp failed: {status}");
    serde_json::from_slice(&stdout).unwrap()
}

fn of_pid(items: &[Value], pid: u32) -> Vec<&Value> {
    items.iter().filter(|v| v["pid"] == pid).collect()
}

/// Unix seconds of an RFC 3339 timestamp.
fn secs(ts: &Value) -> f64 {
    let t = tapper_proto::json::parse_rfc3339(ts.as_str().unwrap()).unwrap();
    t.seconds as f64 + t.nanos as f64 / 1e9
}

fn run_tapper(
    extra: &[&str],
    workloads: impl FnOnce() -> Vec<Value>,
) -> (TapperOutput, Vec<Value>) {
    let mut args = vec!["--warn-interval", "1s"];
    args.extend_from_slice(extra);
    let tapper = RunningTapper::start(&tapper_bin(), &args).unwrap();
    let summaries = workloads();
    let out = tapper.stop(Signal::SIGINT).unwrap();
    assert!(
        out.status.success(),
        "tapper: {}\n{}",
        out.status,
        out.stderr.join("\n")
    );
    (out, summaries)
}

/// A process with RLIMIT_NOFILE 256 opens one socket per 20 ms, holds above the ratio for
/// a few seconds, then runs into EMFILE: it is warned with a finite time to exhaustion
/// before its first EMFILE event, then exactly once per interval while it stays above the
/// ratio. A process beside it that stays below the ratio is never warned about.
#[test]
fn a_process_nearing_its_limit_is_warned_before_emfile_once_per_interval() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (out, summaries) = run_tapper(&[], || {
        let near = ramp(&["--fds", "230", "--hold-ms", "3500", "--until-emfile"]);
        let below = ramp(&["--fds", "150", "--hold-ms", "3500"]);
        vec![finish(near), finish(below)]
    });
    let near = summaries[0]["pid"].as_u64().unwrap() as u32;
    let below = summaries[1]["pid"].as_u64().unwrap() as u32;
    assert_eq!(summaries[0]["emfile"], true, "{}", summaries[0]);

    assert!(
        of_pid(&out.warnings, below).is_empty(),
        "{:#?}",
        of_pid(&out.warnings, below)
    );

    let warnings = of_pid(&out.warnings, near);
    assert!(
        warnings.len() >= 3,
        "held above the ratio 3.5 s and more: {warnings:#?}"
    );
    let first = warnings[0];
    assert_eq!(first["kind"], "nofile");
    assert_eq!(first["comm"], "fd-ramp");
    assert!(
        first["exe"].as_str().unwrap().ends_with("/fd-ramp"),
        "{first}"
    );
    assert_eq!(first["limit"], 256);
    let used = first["used"].as_u64().unwrap();
    assert!(
        (205..=230).contains(&used),
        "the crossing of 0.8 x 256: {first}"
    );
    assert!(first["ratio"].as_f64().unwrap() >= 0.8, "{first}");
    let eta = first["eta_seconds"]
        .as_f64()
        .expect("a rising process has an eta");
    assert!(eta.is_finite() && eta > 0.0 && eta < 60.0, "{first}");

    let emfile: Vec<_> = of_pid(&out.events, near)
        .into_iter()
        .filter(|e| e["errno_name"] == "EMFILE")
        .collect();
    assert_eq!(emfile.len(), 1, "the workload stops at its first EMFILE");
    assert!(secs(&first["ts"]) < secs(&emfile[0]["ts"]));
    let position = |v: &Value| out.lines.iter().position(|l| l == v || l["warning"] == *v);
    assert!(
        position(first) < position(emfile[0]),
        "the warning line comes first"
    );

    // The workload reopens a socket above the ratio every 20 ms: each warning comes as
    // soon as the interval since the previous one is over, never sooner.
    let times: Vec<f64> = warnings.iter().map(|w| secs(&w["ts"])).collect();
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            (INTERVAL..INTERVAL + 0.5).contains(&gap),
            "gap {gap:.3} s between warnings: {times:?}"
        );
    }
}

/// `--warn-nofile-ratio 0` turns nofile warnings off.
#[test]
fn ratio_zero_turns_nofile_warnings_off() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (out, summaries) = run_tapper(&["--warn-nofile-ratio", "0"], || {
        vec![finish(ramp(&[
            "--fds",
            "240",
            "--step-ms",
            "2",
            "--hold-ms",
            "300",
        ]))]
    });
    let pid = summaries[0]["pid"].as_u64().unwrap() as u32;
    assert!(of_pid(&out.warnings, pid).is_empty(), "{:#?}", out.warnings);
    assert!(out.warnings.iter().all(|w| w["kind"] != "nofile"));
}
