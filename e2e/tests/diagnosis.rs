//! The diagnosis of real failures on this host's kernel: the real tapper's events name
//! the cause the evidence shows, with its numbers. Run as root.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Mutex,
    time::Duration,
};

use nix::sys::signal::Signal;
use serde_json::Value;
use tapper_e2e::{
    check::{self, args},
    stack_workload,
    tapper::RunningTapper,
    workload::Manifest,
};

/// One tapper at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

fn tapper_bin() -> PathBuf {
    tapper_testkit::workspace_bin("tapper").unwrap_or_else(|e| panic!("{e}"))
}

fn workload_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_socket-workload"))
}

/// The events of `pid` with `errno_name`.
fn events_of<'a>(events: &'a [Value], pid: u32, errno_name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["pid"] == pid && e["errno_name"] == errno_name)
        .collect()
}

fn cause_and_text(event: &Value) -> (&str, &str) {
    let d = &event["diagnosis"];
    (
        d["cause"].as_str().unwrap_or_else(|| panic!("{event}")),
        d["text"].as_str().unwrap_or_else(|| panic!("{event}")),
    )
}

/// A process that lowered RLIMIT_NOFILE to 16 and stays alive after its EMFILE failures:
/// `rlimit_nofile`, with its open fds (as counted here) and both limits in the sentence.
#[test]
fn emfile_at_a_lowered_limit_is_rlimit_nofile_with_the_numbers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let bin = stack_workload::build(dir.path()).unwrap();
    for probe in ["exit-only", "tracepoint"] {
        let tapper = RunningTapper::start(&tapper_bin(), &["--probe", probe]).unwrap();
        let mut workload = Command::new(&bin)
            .args(["2", "pause"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = workload.id();
        let mut seen = 0;
        tapper
            .wait_event(EVENT_TIMEOUT, |e| {
                seen += usize::from(e["pid"] == pid && e["errno_name"] == "EMFILE");
                seen == 2
            })
            .unwrap();
        // Its descriptors, counted independently while it waits (it may have inherited
        // some above the limit it set).
        let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count();
        assert!(open_fds >= 16, "{open_fds}");
        drop(workload.stdin.take());
        assert!(workload.wait().unwrap().success());
        let out = tapper.stop(Signal::SIGINT).unwrap();
        let events = events_of(&out.events, pid, "EMFILE");
        assert_eq!(events.len(), 2, "{probe}");
        for event in events {
            let expected = format!(
                "open fds {open_fds} of RLIMIT_NOFILE 16 (hard 16): the process is at its \
                 descriptor limit; raise LimitNOFILE/ulimit -n or look for a descriptor leak"
            );
            assert_eq!(
                cause_and_text(event),
                ("rlimit_nofile", expected.as_str()),
                "{probe}: {event}"
            );
        }
    }
}

/// Runs one socket-workload with `workload` arguments beside a tapper in `probe` mode;
/// returns the workload's manifest and the tapper's events.
fn run_beside_tapper(probe: &str, workload: &str) -> (Manifest, Vec<Value>) {
    let tapper = RunningTapper::start(&tapper_bin(), &["--probe", probe]).unwrap();
    let mut manifests = check::run_workloads(workload_bin(), &[args(workload)]).unwrap();
    let out = tapper.stop(Signal::SIGINT).unwrap();
    (manifests.remove(0), out.events)
}

#[test]
fn an_unknown_family_is_family_unsupported() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for probe in ["exit-only", "tracepoint"] {
        let (manifest, events) = run_beside_tapper(probe, "--threads 1 --fail EAFNOSUPPORT=2");
        let events = events_of(&events, manifest.pid, "EAFNOSUPPORT");
        assert_eq!(events.len(), 2, "{probe}");
        for event in events {
            let (cause, text) = cause_and_text(event);
            assert_eq!(cause, "family_unsupported", "{probe}: {event}");
            assert!(
                text.starts_with("family 9999 is not an address family"),
                "{probe}: {event}"
            );
        }
    }
}

/// A seccomp filter's EACCES: in tracepoint mode the call never entered the system call,
/// so `seccomp`; exit-only mode cannot tell a filter from an LSM and says so.
#[test]
fn a_seccomp_denied_call_is_seccomp_in_tracepoint_mode() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (manifest, events) = run_beside_tapper("tracepoint", "--threads 2 --fail SECCOMP=3");
    let denied = events_of(&events, manifest.pid, "EACCES");
    assert_eq!(denied.len(), 6);
    for event in denied {
        let (cause, text) = cause_and_text(event);
        assert_eq!(cause, "seccomp", "{event}");
        assert!(
            text.contains("without sys_enter_socket")
                && text.contains("AF_INET6, SOCK_DGRAM, IPPROTO_UDP"),
            "{event}"
        );
    }
    let (manifest, events) = run_beside_tapper("exit-only", "--threads 1 --fail SECCOMP=2");
    let denied = events_of(&events, manifest.pid, "EACCES");
    assert_eq!(denied.len(), 2);
    for event in denied {
        let (_, text) = cause_and_text(event);
        assert!(
            text.contains("cannot tell a seccomp filter from an LSM")
                && text.contains("--probe tracepoint"),
            "{event}"
        );
    }
}

/// A raw socket from a process of user nobody: `capability`, naming CAP_NET_RAW.
#[test]
fn a_raw_socket_as_an_unprivileged_user_is_capability() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tapper = RunningTapper::start(&tapper_bin(), &["--probe", "exit-only"]).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(workload_bin())
        .args(["--threads", "1", "--fail", "EPERM=2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Manifest = serde_json::from_slice(&out.stdout).unwrap();
    let events = tapper.stop(Signal::SIGINT).unwrap().events;
    let denied = events_of(&events, manifest.pid, "EPERM");
    assert_eq!(denied.len(), 2);
    for event in denied {
        assert_eq!(event["uid"], 65534, "{event}");
        let (cause, text) = cause_and_text(event);
        assert_eq!(cause, "capability", "{event}");
        assert!(text.starts_with("SOCK_RAW needs CAP_NET_RAW"), "{event}");
        // The kernel read the capabilities in the failing task.
        assert_eq!(event["cap_effective"], 0, "{event}");
        assert!(
            text.contains("which this process lacks (effective capabilities: none)"),
            "{event}"
        );
    }
}
