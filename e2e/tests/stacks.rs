//! User stacks (`tapper --stacks`) on this host's kernel: workloads built with frame
//! pointers fail through named functions, and the real tapper reports each failure with
//! the stack that names them, innermost first, as build id, module, offset and symbol;
//! also for a process that exited before the tapper read its failure. Run as root.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::Duration,
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::Value;
use tapper_e2e::{stack_workload, tapper::RunningTapper};

/// One tapper at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

fn tapper_bin() -> PathBuf {
    tapper_testkit::workspace_bin("tapper").unwrap_or_else(|e| panic!("{e}"))
}

/// Starts the workload: `count` EMFILE failures, then it waits on stdin.
fn start_workload(bin: &Path, count: u32) -> Child {
    Command::new(bin)
        .args([&count.to_string(), "pause"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs the workload's `count` failures and keeps it alive until the tapper has reported
/// them all; returns its pid.
fn run_workload(tapper: &RunningTapper, bin: &Path, count: usize) -> u32 {
    let mut workload = start_workload(bin, count as u32);
    let pid = workload.id();
    let mut seen = 0;
    tapper
        .wait_event(EVENT_TIMEOUT, |e| {
            seen += usize::from(e["pid"] == pid && e["errno_name"] == "EMFILE");
            seen == count
        })
        .unwrap();
    drop(workload.stdin.take());
    let status = workload.wait().unwrap();
    assert!(status.success(), "workload: {status}");
    pid
}

/// The workload's EMFILE events.
fn emfile_events(events: &[Value], pid: u32) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["pid"] == pid && e["errno_name"] == "EMFILE")
        .collect()
}

/// The frames name the three functions in order, innermost first, then their callers in
/// the workload.
fn assert_names_the_three_functions(event: &Value, bin: &Path) {
    let expected = [
        stack_workload::FUNCTIONS.as_slice(),
        &["fail_emfile", "main"],
    ]
    .concat();
    assert_frames_of(event, bin, &expected);
}

/// The innermost frames name `functions` in order, each with `bin` as module, its build
/// id (as readelf reads it) and a file offset, which the address equals (the kernel gives
/// a build-id frame without its address).
fn assert_frames_of(event: &Value, bin: &Path, functions: &[&str]) {
    let frames = event["user_stack"]
        .as_array()
        .unwrap_or_else(|| panic!("no user_stack: {event}"));
    let symbols: Vec<&str> = frames
        .iter()
        .map(|f| f["symbol"].as_str().unwrap_or("?"))
        .collect();
    assert!(symbols.len() >= functions.len(), "{event}");
    assert_eq!(symbols[..functions.len()], *functions, "{event}");
    let build_id = stack_workload::build_id(bin).unwrap();
    for frame in &frames[..functions.len()] {
        assert_eq!(frame["module"], bin.to_str().unwrap(), "{frame}");
        assert_eq!(frame["build_id"], build_id.as_str(), "{frame}");
        let offset = frame["offset"]
            .as_u64()
            .unwrap_or_else(|| panic!("{frame}"));
        assert_eq!(frame["address"].as_u64(), Some(offset), "{frame}");
    }
}

#[test]
fn an_emfile_event_names_the_three_functions_innermost_first() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let bin = stack_workload::build(dir.path()).unwrap();
    for probe in ["exit-only", "tracepoint"] {
        let tapper = RunningTapper::start(&tapper_bin(), &["--probe", probe, "--stacks"]).unwrap();
        let pid = run_workload(&tapper, &bin, 3);
        let out = tapper.stop(Signal::SIGINT).unwrap();
        let events = emfile_events(&out.events, pid);
        assert_eq!(events.len(), 3, "{probe}");
        for event in events {
            assert_names_the_three_functions(event, &bin);
        }
    }
}

#[test]
fn without_stacks_events_carry_no_user_stack() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let bin = stack_workload::build(dir.path()).unwrap();
    let tapper = RunningTapper::start(&tapper_bin(), &["--probe", "exit-only"]).unwrap();
    let pid = run_workload(&tapper, &bin, 2);
    let out = tapper.stop(Signal::SIGINT).unwrap();
    let events = emfile_events(&out.events, pid);
    assert_eq!(events.len(), 2);
    for event in events {
        assert!(event.get("user_stack").is_none(), "{event}");
    }
}

/// The workload fails once and waits; once the tapper has reported that failure, the
/// tapper is frozen (SIGSTOP), the workload fails again and exits, and only then does the
/// tapper read the second failure: its stack still has modules, offsets and names.
#[test]
fn a_process_that_exited_before_its_stack_was_read_still_gets_modules_and_names() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let bin = stack_workload::build(dir.path()).unwrap();
    let tapper =
        RunningTapper::start(&tapper_bin(), &["--probe", "exit-only", "--stacks"]).unwrap();
    let mut workload = start_workload(&bin, 1);
    let pid = workload.id();
    tapper
        .wait_event(EVENT_TIMEOUT, |e| {
            e["pid"] == pid && e["errno_name"] == "EMFILE"
        })
        .unwrap();
    let tapper_pid = Pid::from_raw(tapper.pid() as i32);
    kill(tapper_pid, Signal::SIGSTOP).unwrap();
    let resumed = (|| {
        workload.stdin.take().unwrap().write_all(b"go\n")?;
        let status = workload.wait()?;
        assert!(status.success(), "workload: {status}");
        // Gone for good: nothing of it is left in /proc.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        std::io::Result::Ok(())
    })();
    kill(tapper_pid, Signal::SIGCONT).unwrap();
    resumed.unwrap();
    let out = tapper.stop(Signal::SIGINT).unwrap();
    let events = emfile_events(&out.events, pid);
    assert_eq!(events.len(), 2);
    assert_names_the_three_functions(events[1], &bin);
}

/// The short-lived workload fails once and exits at once, while the tapper is frozen
/// (SIGSTOP): the tapper reads the failure only after the process is gone, and still
/// names its frames from the binary on disk, found by build id.
#[test]
fn a_process_gone_at_once_gets_build_ids_modules_offsets_and_names() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let bin = stack_workload::build_short_lived(dir.path()).unwrap();
    for probe in ["exit-only", "tracepoint"] {
        let tapper = RunningTapper::start(
            &tapper_bin(),
            &["--probe", probe, "--stacks", "--comm", "stack-short-liv"],
        )
        .unwrap();
        let tapper_pid = Pid::from_raw(tapper.pid() as i32);
        kill(tapper_pid, Signal::SIGSTOP).unwrap();
        let ran = (0..2)
            .map(|_| {
                let child = Command::new(&bin).spawn()?;
                let pid = child.id();
                let status = child.wait_with_output()?.status;
                assert!(status.success(), "short-lived: {status}");
                assert!(!Path::new(&format!("/proc/{pid}")).exists());
                std::io::Result::Ok(pid)
            })
            .collect::<std::io::Result<Vec<u32>>>();
        kill(tapper_pid, Signal::SIGCONT).unwrap();
        let pids = ran.unwrap();
        let mut waiting = pids.clone();
        tapper
            .wait_events("the short-lived failures", EVENT_TIMEOUT, |e| {
                waiting.retain(|&pid| e["pid"] != pid);
                waiting.is_empty().then_some(())
            })
            .unwrap();
        let out = tapper.stop(Signal::SIGINT).unwrap();
        for pid in pids {
            let event = out
                .events
                .iter()
                .find(|e| e["pid"] == pid)
                .unwrap_or_else(|| panic!("{probe}: no event of {pid}"));
            assert_eq!(event["errno_name"], "EAFNOSUPPORT", "{event}");
            assert_frames_of(event, &bin, &stack_workload::SHORT_LIVED_FUNCTIONS);
        }
    }
}
