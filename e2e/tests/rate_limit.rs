//! The kernel's rate limit and wake-ups, end to end on this host's kernel: the real tapper,
//! real eBPF, real failing socket() calls. Run as root.

use std::{path::Path, path::PathBuf, sync::Mutex, time::Duration};

use nix::sys::signal::Signal;
use serde_json::Value;
use tapper_e2e::{
    check::{self, args},
    tapper::{RunningTapper, TapperOutput},
    workload::Manifest,
};

/// One tapper at a time keeps the CPU (and so the ring buffer) free for the one under test.
static SERIAL: Mutex<()> = Mutex::new(());

fn tapper_bin() -> PathBuf {
    tapper_testkit::workspace_bin("tapper").unwrap_or_else(|e| panic!("{e}"))
}

fn workload_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_socket-workload"))
}

fn run_one(workload: &str) -> Manifest {
    let mut manifests = check::run_workloads(workload_bin(), &[args(workload)]).unwrap();
    manifests.remove(0)
}

/// The failures an event stands for: itself and those suppressed before it.
fn stands_for(event: &Value) -> u64 {
    1 + event["suppressed"]
        .as_u64()
        .expect("every event has `suppressed`")
}

fn of_pid(out: &TapperOutput, pid: u32) -> Vec<&Value> {
    out.events.iter().filter(|e| e["pid"] == pid).collect()
}

/// A storm from two threads for three seconds with --rate-limit 100 and a burst of 50:
/// the events are few (bounded by burst + rate × time, plus a sweep record when the storm
/// ended with failures pending), yet they
/// stand for every failure exactly; machine-wide, the kernel's failure count equals what
/// the events stand for plus the ring buffer's drops.
#[test]
fn a_storm_is_rate_limited_and_every_failure_is_accounted_for() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tapper = RunningTapper::start(
        &tapper_bin(),
        &["--rate-limit", "100", "--rate-limit-burst", "50"],
    )
    .unwrap();
    let storm_secs = 3.0;
    let manifest = run_one(&format!(
        "--threads 2 --storm {storm_secs} --fail EAFNOSUPPORT=1"
    ));
    let calls: u64 = manifest.failures().values().map(|&n| u64::from(n)).sum();
    assert!(calls > 10_000, "the storm made only {calls} calls");
    // Once the storm's key has been quiet for a second, the sweep emits what it still had
    // pending (nothing, when the storm's last failure was itself let through): wait until
    // the events stand for every failure of the storm, rather than leaving the rest to the
    // tapper's exit.
    let mut stood_for = 0;
    tapper
        .wait_events(
            "events standing for every failure of the storm",
            Duration::from_secs(30),
            |e| {
                if e["pid"] == manifest.pid {
                    stood_for += stands_for(e);
                }
                (stood_for >= calls).then_some(())
            },
        )
        .unwrap();
    let out = tapper.stop(Signal::SIGINT).unwrap();
    assert!(out.status.success(), "{}", out.stderr.join("\n"));

    let mine = of_pid(&out, manifest.pid);
    let bound = 50.0 + 100.0 * (storm_secs + 1.0) + 1.0;
    assert!(
        (mine.len() as f64) <= bound,
        "{} events for {calls} failures; the limit allows at most {bound}",
        mine.len()
    );
    assert!(
        mine.len() >= 50,
        "the burst passes untouched: {}",
        mine.len()
    );
    assert!(
        mine.iter()
            .any(|e| e["suppressed"].as_u64() > Some(0) && e["probe"] != "rate-limit"),
        "an emitted event carries suppressed failures"
    );
    assert_eq!(
        mine.iter().map(|e| stands_for(e)).sum::<u64>(),
        calls,
        "the storm's events stand for exactly its failures"
    );
    let counters = &out.final_counters;
    let all: u64 = out.events.iter().map(stands_for).sum();
    assert_eq!(
        counters["failures"].as_u64().unwrap(),
        all + counters["drops"].as_u64().unwrap(),
        "kernel failures = what the events stand for + drops: {counters}"
    );
    let eafnosupport: u64 = out
        .events
        .iter()
        .filter(|e| e["errno_name"] == "EAFNOSUPPORT")
        .map(stands_for)
        .sum();
    if counters["drops"] == 0 {
        assert_eq!(
            counters["errnos"]["EAFNOSUPPORT"], eafnosupport,
            "{counters}"
        );
    }
    assert!(counters["suppressed"].as_u64().unwrap() >= calls - mine.len() as u64);
}

/// With the limit off, 2 × 5,000 failures in a moment (over the default burst of 1,000)
/// are 10,000 events, none suppressed.
#[test]
fn with_the_limit_off_every_failure_is_an_event() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tapper = RunningTapper::start(&tapper_bin(), &["--rate-limit", "0"]).unwrap();
    let manifest = run_one("--threads 2 --fail EAFNOSUPPORT=5000");
    let out = tapper.stop(Signal::SIGINT).unwrap();
    let mine = of_pid(&out, manifest.pid);
    assert_eq!(out.final_counters["drops"], 0, "{}", out.final_counters);
    assert_eq!(mine.len(), 10_000);
    assert!(mine.iter().all(|e| e["suppressed"] == 0));
}

/// A short burst and then silence: the tapper prints all of it while it keeps running,
/// though the kernel woke it only for the first failure (the others are picked up by its
/// second look at the ring buffer, not by its exit).
#[test]
fn a_burst_followed_by_silence_is_delivered_in_full() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tapper = RunningTapper::start(&tapper_bin(), &[]).unwrap();
    let manifest = run_one("--threads 1 --fail EINVAL=5 --fail EAFNOSUPPORT=3");
    let mut seen = 0;
    tapper
        .wait_events("the burst's 8 events", Duration::from_secs(60), |e| {
            seen += u64::from(e["pid"] == manifest.pid);
            (seen == 8).then_some(())
        })
        .unwrap();
    let out = tapper.stop(Signal::SIGINT).unwrap();
    assert_eq!(of_pid(&out, manifest.pid).len(), 8);
}
