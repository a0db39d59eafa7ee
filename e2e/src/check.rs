//! The capture check: run the tapper beside several workload processes and compare every
//! event and counter with the workloads' manifests. Any difference is reported, by name.

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context, bail};
use nix::sys::signal::Signal;
use serde_json::Value;
use tapper_proto::v1::Event;

use crate::{
    provoke::{Failure, Path as CallPath},
    tapper::RunningTapper,
    uring::SocketRing,
    workload::Manifest,
};

/// Arguments for one `socket-workload` process.
pub type WorkloadArgs = Vec<String>;

pub fn args(text: &str) -> WorkloadArgs {
    text.split_whitespace().map(str::to_owned).collect()
}

/// Three processes, nine threads, every provokable errno of the system call, with
/// successes mixed in.
pub fn standard_workloads() -> Vec<WorkloadArgs> {
    vec![
        args(
            "--threads 4 --fail EAFNOSUPPORT=7 --fail EINVAL=5 --fail EPROTONOSUPPORT=3 --successes 50",
        ),
        args("--threads 3 --fail EPERM=6 --fail EINVAL=2 --successes 40"),
        args("--threads 2 --fail EMFILE=9 --fail EAFNOSUPPORT=1 --successes 30"),
    ]
}

/// Three threads that each install a seccomp filter denying AF_INET6 sockets, then make
/// denied and allowed calls.
pub fn seccomp_workload() -> WorkloadArgs {
    args("--threads 3 --fail SECCOMP=6 --fail EINVAL=2 --successes 20")
}

/// Two threads, each with its own io_uring, making failing `IORING_OP_SOCKET` requests.
pub fn io_uring_workload() -> WorkloadArgs {
    args("--threads 2 --fail URING_EAFNOSUPPORT=5 --fail URING_EINVAL=3 --successes 10")
}

/// Every workload a capture check runs: the standard ones, the seccomp one, and the
/// io_uring one where the tapper captures io_uring.
pub fn all_workloads(io_uring: bool) -> Vec<WorkloadArgs> {
    let mut all = standard_workloads();
    all.push(seccomp_workload());
    if io_uring {
        all.push(io_uring_workload());
    }
    all
}

/// Whether this kernel has what io_uring capture needs, the tracepoint and the socket
/// opcode (5.19; asked of the kernel with a real request): then the tapper must capture
/// io_uring.
pub fn kernel_has_io_uring_sockets() -> bool {
    let tracepoint = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|root| {
            Path::new(root)
                .join("events/io_uring/io_uring_complete")
                .exists()
        });
    tracepoint && SocketRing::new().is_ok()
}

/// Runs the workloads concurrently and returns their manifests.
pub fn run_workloads(workload: &Path, workloads: &[WorkloadArgs]) -> anyhow::Result<Vec<Manifest>> {
    let children = workloads
        .iter()
        .map(|args| {
            Command::new(workload)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("starting {}", workload.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    children
        .into_iter()
        .zip(workloads)
        .map(|(child, args)| {
            let out = child.wait_with_output()?;
            if !out.status.success() {
                bail!(
                    "workload {args:?} failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            serde_json::from_slice(&out.stdout).context("parsing a workload manifest")
        })
        .collect()
}

pub struct Summary {
    pub events: usize,
    /// Failures the workloads made that this mode sees.
    pub workload_events: usize,
    pub calls: u64,
    /// Whether the tapper captured io_uring requests (and the io_uring workload ran).
    pub io_uring: bool,
}

/// Attaches the tapper in `probe` mode, runs every workload (the io_uring one where the
/// tapper captures io_uring, which it must where the kernel has the tracepoint), and
/// checks everything. With `stacks`, the tapper runs with `--stacks` and every failed
/// system call of the workloads must also come with a user stack.
pub fn run(tapper: &Path, workload: &Path, probe: &str, stacks: bool) -> anyhow::Result<Summary> {
    let mut args = vec!["--probe", probe];
    if stacks {
        args.push("--stacks");
    }
    let running = RunningTapper::start(tapper, &args)?;
    let io_uring = running.io_uring();
    if !io_uring && kernel_has_io_uring_sockets() {
        let out = running.stop(Signal::SIGINT)?;
        bail!(
            "the kernel has io_uring:io_uring_complete and IORING_OP_SOCKET but the tapper \
             does not capture io_uring; its log:\n{}",
            out.stderr.join("\n")
        );
    }
    let workloads = all_workloads(io_uring);
    let manifests = run_workloads(workload, &workloads);
    let output = running.stop(Signal::SIGINT);
    let (manifests, output) = (manifests?, output?);
    if !output.status.success() {
        bail!(
            "the tapper exited with {}; stderr:\n{}",
            output.status,
            output.stderr.join("\n")
        );
    }
    let mut problems = Vec::new();
    compare_events(&output.events, &manifests, probe, &mut problems);
    if stacks {
        check_stacks(&output.events, &manifests, &mut problems);
    }
    compare_counters(
        &output.events,
        &output.final_counters,
        &manifests,
        probe,
        &mut problems,
    );
    if !problems.is_empty() {
        bail!(
            "{} problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    Ok(Summary {
        events: output.events.len(),
        workload_events: manifests
            .iter()
            .flat_map(|m| m.failures())
            .filter(|(f, _)| f.seen_by(probe))
            .map(|(_, n)| n as usize)
            .sum(),
        calls: manifests.iter().map(Manifest::calls).sum(),
        io_uring,
    })
}

/// Every failed system call of the workloads has a user stack with an innermost address
/// (the workloads have no frame pointers, so deeper frames are not required, and they exit
/// at once, so modules may be unknown). io_uring completions are left out: they may run in
/// a kernel worker without a user stack.
fn check_stacks(events: &[Value], manifests: &[Manifest], problems: &mut Vec<String>) {
    let pids: Vec<u32> = manifests.iter().map(|m| m.pid).collect();
    for e in events {
        let ours = e["pid"]
            .as_u64()
            .is_some_and(|p| pids.contains(&(p as u32)));
        if !ours || e["source"] != "syscall" {
            continue;
        }
        if e["user_stack"][0]["address"].as_u64().unwrap_or(0) == 0 {
            problems.push(format!("no user stack: {e}"));
        }
    }
}

/// A tapper line as `tapper.v1.Event`, if it is exactly that event's JSON form (every key
/// the schema writes, nothing else, each in its type).
fn parse_event(line: &Value) -> Result<Event, String> {
    let event: Event = serde_json::from_value(line.clone())
        .map_err(|e| format!("event is not a tapper.v1.Event ({e}): {line}"))?;
    let written = serde_json::to_value(&event).map_err(|e| e.to_string())?;
    if &written != line {
        return Err(format!(
            "event is not in the tapper.v1.Event JSON form:\n    got  {line}\n    want {written}"
        ));
    }
    Ok(event)
}

/// Every workload event must be expected, carry the right fields, and be counted once.
pub fn compare_events(
    events: &[Value],
    manifests: &[Manifest],
    probe: &str,
    problems: &mut Vec<String>,
) {
    let uid = nix::unistd::getuid().as_raw();
    let my_pid = std::process::id();
    let mut seen: BTreeMap<(u32, u32, Failure), u32> = BTreeMap::new();
    for line in events {
        let event = match parse_event(line) {
            Ok(event) => event,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        let pid = event.pid;
        let Some(manifest) = manifests.iter().find(|m| m.pid == pid) else {
            continue;
        };
        let tid = event.tid;
        let Some(thread) = manifest.threads.iter().find(|t| t.tid == tid) else {
            problems.push(format!(
                "event from pid {pid} names tid {tid}, which made no calls"
            ));
            continue;
        };
        let errno_name = event.errno_name.as_str();
        let Some(failure) = Failure::of_event(&event.source, errno_name) else {
            problems.push(format!(
                "unexpected errno {errno_name} (source {:?}) from pid {pid}: {line}",
                event.source
            ));
            continue;
        };
        *seen.entry((pid, tid, failure)).or_default() += 1;
        let want_probe = match failure.path() {
            CallPath::Syscall => probe,
            CallPath::IoUring => "io_uring",
        };
        // Only a pair's entry probe gives a start time; seccomp-denied calls never enter.
        let want_duration = matches!(probe, "kprobe" | "tracepoint") && failure.enters_socket();
        let (family, sock_type, protocol) = failure.args();
        let (family_name, type_name, protocol_name) = failure.arg_names();
        let message = nix::errno::Errno::from_raw(failure.errno()).desc();
        let checks: [(&str, String, String); 14] = [
            (
                "errno",
                event.errno.to_string(),
                failure.errno().to_string(),
            ),
            (
                "family",
                format!("{:?}", event.family),
                format!("{:?}", Some(family)),
            ),
            (
                "type",
                format!("{:?}", event.r#type),
                format!("{:?}", Some(sock_type)),
            ),
            (
                "protocol",
                format!("{:?}", event.protocol),
                format!("{:?}", Some(protocol)),
            ),
            ("family_name", event.family_name.clone(), family_name.into()),
            ("type_name", event.type_name.clone(), type_name.into()),
            (
                "protocol_name",
                event.protocol_name.clone(),
                protocol_name.into(),
            ),
            ("probe", event.probe.clone(), want_probe.into()),
            ("source", event.source.clone(), failure.source().into()),
            (
                "duration_ns is set",
                event.duration_ns.is_some().to_string(),
                want_duration.to_string(),
            ),
            ("comm", event.comm.clone(), thread.comm.clone()),
            ("uid", event.uid.to_string(), uid.to_string()),
            ("message", event.message.clone(), message.into()),
            (
                "errno_name",
                event.errno_name.clone(),
                failure.errno_name().into(),
            ),
        ];
        for (key, got, want) in checks {
            if got != want {
                problems.push(format!(
                    "{errno_name} event from tid {tid}: {key} is {got}, want {want}"
                ));
            }
        }
        check_context(&event, failure, probe, problems);
        if event.ppid.is_some_and(|ppid| ppid != my_pid) {
            problems.push(format!(
                "event from pid {pid}: ppid {:?} is not this harness ({my_pid})",
                event.ppid
            ));
        }
        let ts = line["ts"].as_str().unwrap_or("");
        if !(ts.len() == 30 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.') {
            problems.push(format!("ts `{ts}` is not RFC 3339 UTC with nanoseconds"));
        }
    }
    for manifest in manifests {
        for thread in &manifest.threads {
            for (failure, &made) in &thread.failures {
                let want = if failure.seen_by(probe) { made } else { 0 };
                let got = seen
                    .get(&(manifest.pid, thread.tid, *failure))
                    .copied()
                    .unwrap_or(0);
                if got != want {
                    problems.push(format!(
                        "pid {} tid {}: {} events for {} ({} made), want {want} in {probe} mode",
                        manifest.pid,
                        thread.tid,
                        got,
                        failure.name(),
                        made,
                    ));
                }
            }
        }
    }
}

/// What the kernel read in the failing task, and the diagnosis drawn from it: every event
/// has the capabilities and seccomp mode, an EMFILE event its limits with the table full,
/// and each failure the cause its evidence shows.
fn check_context(event: &Event, failure: Failure, probe: &str, problems: &mut Vec<String>) {
    let errno_name = &event.errno_name;
    let tid = event.tid;
    let mut problem =
        |what: String| problems.push(format!("{errno_name} event from tid {tid}: {what}"));
    if event.cap_effective.is_none() {
        problem("cap_effective was not read".into());
    }
    // A seccomp workload's threads run under its filter for every failure they make.
    let seccomp_ok = match failure {
        Failure::Seccomp => event.seccomp_mode == "filter",
        _ => ["disabled", "filter"].contains(&event.seccomp_mode.as_str()),
    };
    if !seccomp_ok {
        problem(format!("seccomp_mode is {:?}", event.seccomp_mode));
    }
    if failure == Failure::Emfile {
        let limits = event.limits.unwrap_or_default();
        match (limits.nofile_soft, limits.open_fds) {
            (Some(soft), Some(open)) if open >= soft => {}
            _ => problem(format!(
                "limits {limits:?} do not show a full descriptor table"
            )),
        }
        if !event.from_kernel.iter().any(|f| f == "limits.nofile_soft") {
            problem(format!(
                "from_kernel {:?} lacks the kernel's limits",
                event.from_kernel
            ));
        }
    }
    let want_cause = match failure {
        Failure::Eafnosupport | Failure::UringEafnosupport => Some("family_unsupported"),
        Failure::Einval | Failure::UringEinval => Some("type_invalid"),
        Failure::Eprotonosupport => Some("protocol_unsupported"),
        Failure::Eperm => Some("capability"),
        Failure::Emfile => Some("rlimit_nofile"),
        // Only a pair sees that the call never entered; exit-only says it cannot tell.
        Failure::Seccomp => (probe == "tracepoint").then_some("seccomp"),
    };
    let cause = event.diagnosis.as_ref().map(|d| d.cause.as_str());
    if let Some(want) = want_cause
        && cause != Some(want)
    {
        problem(format!("diagnosis cause {cause:?}, want {want}"));
    }
}

/// The final counters must account for every event exactly.
pub fn compare_counters(
    events: &[Value],
    counters: &Value,
    manifests: &[Manifest],
    probe: &str,
    problems: &mut Vec<String>,
) {
    let get = |key: &str| counters[key].as_u64().unwrap_or(u64::MAX);
    let (failures, drops, received) = (get("failures"), get("drops"), get("events_received"));
    if drops != 0 {
        problems.push(format!("{drops} events dropped in the ring buffer"));
    }
    if failures != received + drops {
        problems.push(format!(
            "failures counter {failures} != events received {received} + drops {drops}"
        ));
    }
    if received != events.len() as u64 {
        problems.push(format!(
            "events_received {received} != {} event lines printed",
            events.len()
        ));
    }
    let mut by_errno: BTreeMap<String, u64> = BTreeMap::new();
    for event in events {
        *by_errno
            .entry(event["errno_name"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    let counted: BTreeMap<String, u64> = counters["errnos"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    if counted != by_errno {
        problems.push(format!(
            "per-errno counters {counted:?} != events per errno {by_errno:?}"
        ));
    }
    // Only a pair's entry probe counts calls; the exit-only modes see returns alone.
    let workload_calls: u64 = manifests.iter().map(Manifest::entered_calls).sum();
    let pair = matches!(probe, "kprobe" | "tracepoint");
    if pair && get("calls") < workload_calls {
        problems.push(format!(
            "calls counter {} < the workloads' {workload_calls} calls",
            get("calls")
        ));
    }
    if !pair && get("calls") != 0 {
        problems.push(format!(
            "calls counter {} in {probe} mode, want 0",
            get("calls")
        ));
    }
}
