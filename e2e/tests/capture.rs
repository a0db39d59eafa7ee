//! Privileged end-to-end tests on this host's kernel: the real tapper, real eBPF, real
//! failing socket() calls from several processes and threads. Run as root.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::Duration,
};

use nix::sys::signal::Signal;
use tapper_e2e::{
    check::{self, args},
    provoke::Failure,
    tapper::RunningTapper,
};
use tapper_testkit::{Process, Stdout};

/// One tapper at a time keeps the CPU (and so the ring buffer) free for the one under test.
static SERIAL: Mutex<()> = Mutex::new(());

const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe";

/// The tapper binary: $TAPPER_BIN, or the one built next to this test.
fn tapper_bin() -> PathBuf {
    tapper_testkit::workspace_bin("tapper").unwrap_or_else(|e| panic!("{e}"))
}

fn workload_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_socket-workload"))
}

/// Failures of the standard workloads, the seccomp-denied ones, and the io_uring ones.
const STANDARD_FAILURES: usize = 4 * 15 + 3 * 8 + 2 * 10;
const SECCOMP_DENIED: usize = 3 * 6;
const SECCOMP_WORKLOAD_OTHERS: usize = 3 * 2;
const IO_URING_FAILURES: usize = 2 * (5 + 3);

/// The manifest check in `probe` mode: every event exact per (pid, tid, failure), the
/// counters exact (and with `stacks`, a user stack on every failed system call). io_uring
/// capture must be on here (the host kernel has it).
fn check_mode(probe: &str, sees_seccomp: bool, stacks: bool) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let summary = check::run(&tapper_bin(), workload_bin(), probe, stacks)
        .unwrap_or_else(|err| panic!("{err:#}"));
    assert!(summary.io_uring, "io_uring capture is off");
    let seccomp = if sees_seccomp { SECCOMP_DENIED } else { 0 };
    assert_eq!(
        summary.workload_events,
        STANDARD_FAILURES + SECCOMP_WORKLOAD_OTHERS + seccomp + IO_URING_FAILURES
    );
}

#[test]
fn exit_only_mode_reports_exactly_the_provoked_failures() {
    check_mode("exit-only", true, false);
}

#[test]
fn exit_only_mode_with_stacks_reports_exactly_the_provoked_failures_with_stacks() {
    check_mode("exit-only", true, true);
}

#[test]
fn tracepoint_mode_reports_exactly_the_provoked_failures() {
    check_mode("tracepoint", true, false);
}

/// A seccomp filter denies AF_INET6 sockets in three threads of one process: every mode
/// that can see the denied calls reports each one with its exact arguments and errno
/// (checked per thread against the manifest), and none is reported from an unfiltered
/// call.
#[test]
fn seccomp_denied_calls_have_exact_arguments_in_exit_only_and_tracepoint_modes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for probe in ["exit-only", "tracepoint"] {
        let tapper = RunningTapper::start(&tapper_bin(), &["--probe", probe]).unwrap();
        let manifests = check::run_workloads(workload_bin(), &[check::seccomp_workload()]).unwrap();
        let out = tapper.stop(Signal::SIGINT).unwrap();
        let mut problems = Vec::new();
        check::compare_events(&out.events, &manifests, probe, &mut problems);
        assert!(problems.is_empty(), "{probe}: {problems:#?}");
        let denied: Vec<_> = out
            .events
            .iter()
            .filter(|e| e["pid"] == manifests[0].pid && e["errno_name"] == "EACCES")
            .collect();
        assert_eq!(denied.len(), SECCOMP_DENIED, "{probe}");
        let tids: std::collections::BTreeSet<_> =
            denied.iter().map(|e| e["tid"].as_u64()).collect();
        assert_eq!(tids.len(), 3, "{probe}: denied calls from every thread");
        for e in denied {
            assert_eq!(
                (&e["family_name"], &e["type_name"], &e["protocol_name"]),
                (
                    &"AF_INET6".into(),
                    &"SOCK_DGRAM".into(),
                    &"IPPROTO_UDP".into()
                ),
                "{probe}: {e}"
            );
            assert!(e["duration_ns"].is_null(), "{probe}: {e}");
        }
    }
}

/// Failing IORING_OP_SOCKET requests from two threads' own rings (one refused when the
/// request is prepared, one by the socket code) are reported exactly, with
/// `"source": "io_uring"`, while the rings' successful requests are not.
#[test]
fn io_uring_socket_failures_are_reported_exactly() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tapper = RunningTapper::start(&tapper_bin(), &["--probe", "tracepoint"]).unwrap();
    assert!(tapper.io_uring(), "the ready line says io_uring is off");
    let manifests = check::run_workloads(workload_bin(), &[check::io_uring_workload()]).unwrap();
    let out = tapper.stop(Signal::SIGINT).unwrap();
    let mut problems = Vec::new();
    check::compare_events(&out.events, &manifests, "tracepoint", &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
    let mine: Vec<_> = out
        .events
        .iter()
        .filter(|e| e["pid"] == manifests[0].pid && e["source"] == "io_uring")
        .collect();
    assert_eq!(mine.len(), IO_URING_FAILURES);
    assert!(mine.iter().all(|e| e["probe"] == "io_uring"));
}

#[test]
fn no_io_uring_turns_io_uring_capture_off() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tapper = RunningTapper::start(&tapper_bin(), &["--no-io-uring"]).unwrap();
    assert!(!tapper.io_uring());
    let manifests = check::run_workloads(workload_bin(), &[check::io_uring_workload()]).unwrap();
    let out = tapper.stop(Signal::SIGTERM).unwrap();
    assert!(
        out.stderr
            .join("\n")
            .contains("turned off by --no-io-uring")
    );
    assert!(!out.events.iter().any(|e| e["pid"] == manifests[0].pid));
}

/// This host refuses BPF trampolines (fentry/fexit load fails with EPERM): the mode must
/// say so and name the way out. Where the kernel allows them, it must pass the check.
#[test]
fn fexit_mode_works_or_says_why_not() {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    match RunningTapper::start(&tapper_bin(), &["--probe", "fexit"]) {
        Ok(tapper) => {
            tapper.stop(Signal::SIGTERM).unwrap();
            drop(serial);
            check_mode("fexit", false, false);
        }
        Err(err) => {
            let text = format!("{err:#}");
            for needle in [
                "--probe fexit cannot work here",
                "__sys_socket",
                "--probe exit-only",
            ] {
                assert!(text.contains(needle), "output lacks `{needle}`: {text}");
            }
        }
    }
}

#[test]
fn kprobe_mode_fails_clearly_where_the_kernel_has_no_kprobes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if Path::new(KPROBE_PMU).exists() {
        // A kernel with kprobes: the kprobe pair must then work exactly.
        drop(_serial);
        check_mode("kprobe", false, false);
        return;
    }
    let out = Command::new(tapper_bin())
        .args(["--probe", "kprobe"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    for needle in ["CONFIG_KPROBES", KPROBE_PMU, "--probe tracepoint"] {
        assert!(stderr.contains(needle), "stderr lacks `{needle}`: {stderr}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn auto_mode_says_which_mode_it_chose_and_why() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tapper = RunningTapper::start(&tapper_bin(), &["--probe", "auto"]).unwrap();
    let (chosen, tapper_pid) = (tapper.probe().to_owned(), tapper.pid());
    let manifests =
        check::run_workloads(workload_bin(), &[args("--threads 1 --fail EINVAL=3")]).unwrap();
    let out = tapper.stop(Signal::SIGTERM).unwrap();
    let log = out.stderr.join("\n");
    // Exit-only is auto's first choice wherever its self-test passes, as it does here.
    let expected = "exit-only";
    assert!(
        log.contains(&format!("probe mode: {expected}")),
        "log: {log}"
    );
    let mine: Vec<_> = out
        .events
        .iter()
        .filter(|e| e["pid"] == manifests[0].pid)
        .collect();
    assert_eq!(mine.len(), 3);
    assert!(mine.iter().all(|e| e["probe"] == expected));
    assert_eq!(chosen, expected, "the ready line's probe mode");
    // The self-test's own failing call is neither printed nor counted.
    assert!(!out.events.iter().any(|e| e["pid"] == tapper_pid));
    let counted = out.final_counters["failures"].as_u64().unwrap();
    assert_eq!(counted, out.events.len() as u64, "{}", out.final_counters);
}

#[test]
fn filters_narrow_the_output_but_not_the_counters() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tapper = RunningTapper::start(
        &tapper_bin(),
        &[
            "--errno",
            "EINVAL,eperm",
            "--comm",
            "socket-workload",
            "--stats-interval",
            "200ms",
        ],
    )
    .unwrap();
    let manifests = check::run_workloads(
        workload_bin(),
        &[args(
            "--threads 2 --fail EINVAL=4 --fail EPERM=3 --fail EAFNOSUPPORT=5 --successes 10",
        )],
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300)); // let one interval line print
    let out = tapper.stop(Signal::SIGTERM).unwrap();
    assert!(out.status.success());
    let pid = manifests[0].pid;
    let mine: Vec<_> = out.events.iter().filter(|e| e["pid"] == pid).collect();
    let count = |name: &str| mine.iter().filter(|e| e["errno_name"] == name).count();
    assert_eq!(
        (count("EINVAL"), count("EPERM"), count("EAFNOSUPPORT")),
        (8, 6, 0)
    );
    assert!(out.events.iter().all(|e| e["comm"] == "socket-workload"
        && (e["errno_name"] == "EINVAL" || e["errno_name"] == "EPERM")));
    let counters = &out.final_counters;
    assert!(
        counters["errnos"]["EAFNOSUPPORT"].as_u64().unwrap() >= 10,
        "{counters}"
    );
    assert_eq!(
        counters["events_shown"].as_u64().unwrap(),
        out.events.len() as u64
    );
    assert!(counters["events_received"].as_u64().unwrap() >= 24);
    let intervals = out
        .stderr
        .iter()
        .filter(|l| l.contains(r#""counters":"interval""#))
        .count();
    assert!(intervals >= 1, "no interval counters in {:?}", out.stderr);
}

/// No tapper reports or counts a tapper's self-test call, its own or another's: during a
/// rolling restart a new tapper's exit-only self-test runs while the old one captures.
#[test]
fn no_tapper_reports_a_self_test_call_its_own_or_another_s() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let start = |probe: &str| RunningTapper::start(&tapper_bin(), &["--probe", probe]).unwrap();
    let (old_exit_only, old_tracepoint) = (start("exit-only"), start("tracepoint"));
    std::thread::sleep(Duration::from_secs(2));
    let new_exit_only = start("exit-only");
    // A marker failure after the new tapper's self-test: once each tapper shows it, each
    // has read everything before it.
    const MARKER_PROTOCOL: i32 = 4243;
    let marker = tapper_e2e::provoke::socket_call(libc::AF_INET, libc::SOCK_DGRAM, MARKER_PROTOCOL);
    assert!(marker.is_err(), "the marker call succeeded");
    let is_marker =
        |e: &serde_json::Value| e["pid"] == std::process::id() && e["protocol"] == MARKER_PROTOCOL;
    let outputs: Vec<_> = [old_exit_only, old_tracepoint, new_exit_only]
        .into_iter()
        .map(|tapper| {
            tapper
                .wait_event(Duration::from_secs(10), is_marker)
                .unwrap();
            tapper.stop(Signal::SIGTERM).unwrap()
        })
        .collect();
    for (name, out) in ["old exit-only", "old tracepoint", "new exit-only"]
        .iter()
        .zip(&outputs)
    {
        let self_tests: Vec<_> = out.events.iter().filter(|e| e["family"] == 4321).collect();
        assert!(
            self_tests.is_empty(),
            "the {name} tapper reported {self_tests:?}"
        );
    }
    for (name, out) in ["old exit-only", "old tracepoint"].iter().zip(&outputs) {
        let counters = &out.final_counters;
        assert!(
            counters["self_tests"].as_u64().unwrap() >= 1,
            "the {name} tapper did not see the new one's self-test: {counters}"
        );
    }
}

/// bpftrace (an independent tracer) and the tapper count the same randomized workload.
#[test]
fn bpftrace_and_the_tapper_agree_on_a_random_workload() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tracer = Bpftrace::start(
        "BEGIN { printf(\"ready\\n\"); } \
         tracepoint:syscalls:sys_exit_socket /args->ret < 0/ { @[pid, -args->ret] = count(); }",
    );
    let tapper = RunningTapper::start(&tapper_bin(), &["--probe", "exit-only"]).unwrap();

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("workload seed {seed}");
    let workload = |s: u64| {
        args(&format!(
            "--threads 3 --seed {s} --fail EAFNOSUPPORT=20 --fail EINVAL=20 \
             --fail EPROTONOSUPPORT=20 --fail EPERM=20 --fail EMFILE=20 --fail SECCOMP=20 \
             --successes 100"
        ))
    };
    let manifests =
        check::run_workloads(workload_bin(), &[workload(seed), workload(seed + 1)]).unwrap();

    let out = tapper.stop(Signal::SIGINT).unwrap();
    let rest = tracer.stop();

    let mut by_bpftrace: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    for l in rest.lines() {
        // @[PID, ERRNO]: COUNT
        let Some(body) = l.strip_prefix("@[") else {
            continue;
        };
        let (key, count) = body.split_once("]: ").unwrap();
        let (pid, errno) = key.split_once(", ").unwrap();
        by_bpftrace.insert(
            (pid.parse().unwrap(), errno.parse().unwrap()),
            count.parse().unwrap(),
        );
    }
    let mut by_tapper: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    for e in &out.events {
        *by_tapper
            .entry((e["pid"].as_u64().unwrap(), e["errno"].as_i64().unwrap()))
            .or_default() += 1;
    }
    for m in &manifests {
        let pid = m.pid as u64;
        let planned: BTreeMap<(u64, i64), u64> = m
            .failures()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(f, n): (Failure, u32)| ((pid, f.errno() as i64), n as u64))
            .collect();
        let pick = |map: &BTreeMap<(u64, i64), u64>| -> BTreeMap<(u64, i64), u64> {
            map.iter()
                .filter(|((p, _), _)| *p == pid)
                .map(|(k, v)| (*k, *v))
                .collect()
        };
        assert_eq!(
            pick(&by_bpftrace),
            planned,
            "bpftrace vs the workload's manifest (seed {seed})"
        );
        assert_eq!(
            pick(&by_tapper),
            planned,
            "tapper vs the workload's manifest (seed {seed})"
        );
    }
}

#[test]
fn the_tapper_mounts_tracefs_when_it_is_not_mounted() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tracefs = "/sys/kernel/tracing";
    let mounted = || {
        std::fs::read_to_string("/proc/self/mounts")
            .unwrap()
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some(tracefs))
    };
    if mounted() {
        let status = Command::new("umount").arg(tracefs).status().unwrap();
        assert!(
            status.success(),
            "cannot unmount {tracefs} to set up the test"
        );
    }
    assert!(!Path::new(tracefs).join("events").exists());
    let tapper = RunningTapper::start(&tapper_bin(), &["--probe", "tracepoint"]).unwrap();
    let out = tapper.stop(Signal::SIGTERM).unwrap();
    let log = out.stderr.join("\n");
    assert!(
        log.contains("tracefs is not mounted; mounting it at /sys/kernel/tracing"),
        "{log}"
    );
    assert!(mounted(), "the tapper's mount should stay for other tools");
}

#[test]
fn missing_privileges_name_the_capabilities_needed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(which("setpriv"))
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(tapper_bin())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("CAP_BPF") && stderr.contains("CAP_PERFMON"),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("root"), "stderr: {stderr}");
}

#[test]
fn bad_flags_are_rejected_with_a_clear_message() {
    for (flag, value, needle) in [
        ("--errno", "EBOGUS", r#"unknown errno name "EBOGUS""#),
        ("--pid", "-4", "not a process id"),
        (
            "--probe",
            "fentry",
            "possible values: auto, exit-only, fexit, kprobe, tracepoint",
        ),
        ("--ring-buffer-size", "12345", "power of two"),
    ] {
        let out = Command::new(tapper_bin())
            .arg(format!("{flag}={value}"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(needle), "{flag} {value}: {stderr}");
    }
}

/// bpftrace as an independent oracle: started, awaited until its probes are attached,
/// and stopped so that it prints its maps.
struct Bpftrace(Process);

impl Bpftrace {
    /// Starts `bpftrace -e PROGRAM`; the program's BEGIN must print `ready`, which bpftrace
    /// runs once every probe is attached.
    fn start(program: &str) -> Bpftrace {
        let mut cmd = Command::new(which("bpftrace"));
        cmd.args(["-e", program]);
        let process = Process::spawn("bpftrace", cmd, Stdout::Capture).unwrap();
        process
            .wait_stdout("`ready`", Duration::from_secs(60), |l| {
                (l == "ready").then_some(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        Bpftrace(process)
    }

    /// SIGINT (repeated: bpftrace can miss one that arrives as it settles) until it exits;
    /// returns its stdout.
    fn stop(self) -> String {
        let stopped = self
            .0
            .stop(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}"));
        stopped.stdout.join("\n")
    }
}

fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{program} is not installed; run scripts/setup.sh --test"))
}
