//! Identity on real events (run as root): a workload moved into kubelet-like cgroups made
//! by the test (cgroupfs and systemd layouts, v1 hierarchies and cgroup2), a container run
//! by a real containerd driven over the CRI as the kubelet does, and a podman container.
//! Each must yield the exact ids, names and quota on the tapper's events.

mod cgroup_tree;
mod containerd;
mod cri_pod;
mod image;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::bail;
use cgroup_tree::{MEMORY, PIDS, TestCgroup, UNIFIED};
use image::{IMAGE, Podman, run};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use tapper_e2e::tapper::RunningTapper;

/// One tapper at a time, as in the capture tests.
static SERIAL: Mutex<()> = Mutex::new(());

const MEMORY_LIMIT: u64 = 256 << 20;
const PIDS_LIMIT: u64 = 100;
/// The failures each containerized probe makes, 100 ms apart.
const PROBE_FAILURES: usize = 20;
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

fn tapper_bin() -> PathBuf {
    tapper_testkit::workspace_bin("tapper").unwrap_or_else(|e| panic!("{e}"))
}

fn random_hex(len: usize) -> String {
    (0..len)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap())
        .collect()
}

/// A random pod uid (8-4-4-4-12 hex digits).
fn random_uid() -> String {
    [8, 4, 4, 4, 12].map(random_hex).join("-")
}

/// The first path segment, unique to one test run: everything under it is this test's.
fn test_top(what: &str) -> String {
    format!("tapper-e2e-{what}-{}-{}", std::process::id(), random_hex(6))
}

/// Runs the probe program in the cgroups whose `cgroup.procs` files are given: `fails`
/// EAFNOSUPPORT failures, then it lingers two seconds so that its `/proc/PID/cgroup` and
/// its cgroup's process count are still there when the tapper reads them. Returns its pid.
fn run_probe_in(procs_files: &[PathBuf], fails: u32) -> anyhow::Result<u32> {
    let dir = tempfile::tempdir()?;
    let probe = image::build_probe(dir.path())?;
    let mut script = String::new();
    for file in procs_files {
        script += &format!("echo 0 > '{}' && ", file.display());
    }
    script += "exec \"$0\" fail $1 0 2000";
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .arg(&probe)
        .arg(fails.to_string())
        .spawn()?;
    let pid = child.id();
    let status = child.wait()?;
    if !status.success() {
        bail!("the probe in its cgroups failed: {status}");
    }
    Ok(pid)
}

/// Sets the test's memory and pids limits in the cgroup's v1 controllers.
fn set_limits(cgroup: &TestCgroup) {
    let memory = MEMORY_LIMIT.to_string();
    cgroup
        .set(MEMORY, "memory.limit_in_bytes", &memory)
        .unwrap();
    cgroup
        .set(PIDS, "pids.max", &PIDS_LIMIT.to_string())
        .unwrap();
}

fn events_of(events: &[Value], pid: u32) -> Vec<&Value> {
    events.iter().filter(|e| e["pid"] == pid).collect()
}

/// Starts the tapper with these runtime sources (a path, or `none`), listed every second,
/// believing kubelet and runtime layouts under the test's own `top` cgroup. It reports only
/// the probe program's failures, so that other failures on the host cannot delay it past
/// the probe's exit.
fn start_tapper(cri_socket: &str, podman_storage: &str, top: &str) -> RunningTapper {
    let root = format!("/{top}");
    let args = [
        "--comm",
        "probe",
        "--cri-socket",
        cri_socket,
        "--podman-storage",
        podman_storage,
        "--runtime-refresh",
        "1s",
        "--kubelet-cgroup-root",
        &root,
    ];
    RunningTapper::start(&tapper_bin(), &args).unwrap_or_else(|e| panic!("{e:#}"))
}

#[test]
fn kubelet_cgroup_paths_in_v1_hierarchies_give_ids_and_quota() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let top = test_top("v1");
    let (id, uid) = (random_hex(64), random_uid());
    let layouts = [
        // cgroupfs driver: the runtime is not in the path.
        (
            format!("/{top}/kubepods/besteffort/pod{uid}/{id}"),
            Value::Null,
        ),
        // systemd driver, with containerd's scope.
        (
            format!(
                "/{top}/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{id}.scope",
                uid.replace('-', "_")
            ),
            json!("containerd"),
        ),
    ];
    let tapper = start_tapper("none", "none", &top);
    let mut runs = Vec::new();
    for (path, runtime) in layouts {
        let cgroup = TestCgroup::create(&path, &[MEMORY, PIDS]).unwrap();
        set_limits(&cgroup);
        let pid = run_probe_in(&cgroup.procs_files(&[MEMORY, PIDS]), 5).unwrap();
        runs.push((cgroup, pid, runtime));
    }
    let out = tapper.stop(Signal::SIGTERM).unwrap();
    for (cgroup, pid, runtime) in &runs {
        let mine = events_of(&out.events, *pid);
        assert_eq!(mine.len(), 5, "{}", cgroup.path);
        for event in mine {
            assert_eq!(event["cgroup_path"], cgroup.path.as_str());
            assert_eq!(
                event["container"],
                json!({"id": id, "runtime": runtime, "name": null, "image": null})
            );
            assert_eq!(
                event["pod"],
                json!({"uid": uid, "namespace": null, "name": null, "labels": {}})
            );
            let quota = &event["quota"];
            assert_eq!(quota["memory_max"], MEMORY_LIMIT, "{event}");
            assert_eq!(quota["pids_max"], PIDS_LIMIT, "{event}");
            // The probe alone (single-threaded, still lingering).
            assert_eq!(quota["pids_current"], 1, "{event}");
            assert!(quota["memory_current"].as_u64().unwrap() > 0, "{event}");
            assert_eq!(
                (&quota["file_nr"], &quota["file_max"]),
                (&Value::Null, &Value::Null)
            );
        }
    }
}

#[test]
fn a_cgroup2_id_resolves_to_its_path_and_v1_quota_at_the_same_path() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let top = test_top("v2");
    let (id, uid) = (random_hex(64), random_uid());
    let path = format!(
        "/{top}/kubepods.slice/kubepods-pod{}.slice/crio-{id}.scope",
        uid.replace('-', "_")
    );
    let cgroup = TestCgroup::create(&path, &[UNIFIED, MEMORY, PIDS]).unwrap();
    set_limits(&cgroup);
    let tapper = start_tapper("none", "none", &top);
    // Only the cgroup2 hierarchy is joined: the v1 path in /proc/PID/cgroup stays the
    // test's own, so the path can only come from the cgroup2 id.
    let pid = run_probe_in(&cgroup.procs_files(&[UNIFIED]), 3).unwrap();
    let out = tapper.stop(Signal::SIGTERM).unwrap();
    let v2_id = std::os::unix::fs::MetadataExt::ino(
        &std::fs::metadata(cgroup.dir(Path::new(UNIFIED))).unwrap(),
    );
    let mine = events_of(&out.events, pid);
    assert_eq!(mine.len(), 3);
    for event in mine {
        assert_eq!(event["cgroup_id"], v2_id);
        assert_eq!(event["cgroup_path"], path.as_str());
        assert_eq!(event["container"]["id"], id.as_str());
        assert_eq!(event["container"]["runtime"], "crio");
        assert_eq!(event["pod"]["uid"], uid.as_str());
        // This host's cgroup2 has no memory or pids controller: the v1 ones at the same
        // path answer, and nothing runs in them.
        let quota = &event["quota"];
        assert_eq!(quota["memory_max"], MEMORY_LIMIT, "{event}");
        assert_eq!(quota["pids_max"], PIDS_LIMIT, "{event}");
        assert_eq!(quota["pids_current"], 0, "{event}");
    }
}

/// Polls `done` every 100 ms until it holds, or fails after `timeout` saying `what`.
fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            bail!("{what} did not happen within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Events of `pid` hold names from some point on, and once named they stay named. Says
/// from which event on (how long the first listing took, in events).
fn assert_named_from_some_point(mine: &[&Value], field: &str) {
    let first = mine
        .iter()
        .position(|e| !e["container"][field].is_null())
        .unwrap_or_else(|| panic!("no event has container.{field}: {mine:?}"));
    assert!(
        mine[first..]
            .iter()
            .all(|e| !e["container"][field].is_null()),
        "{mine:?}"
    );
    eprintln!(
        "container.{field} from event {} of {} on",
        first + 1,
        mine.len()
    );
}

#[test]
fn podman_containers_get_their_id_name_and_image() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let podman = Podman::new(dir.path());
    podman.build_probe_image().unwrap();
    let top = test_top("podman");
    let name = top.clone();
    let tapper = start_tapper("none", podman.root.to_str().unwrap(), &top);
    let started = run(podman.command().args(["run", "-d", "--name", &name]).args([
        "--network",
        "host",
        // No CAP_SYS_RESOURCE here: podman's default limits could not be set.
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "--cgroup-parent",
        &format!("/{top}"),
        IMAGE,
        "fail",
        &PROBE_FAILURES.to_string(),
        "100",
    ]));
    let result = started.and_then(|out| {
        let id = String::from_utf8(out.stdout)?.trim().to_owned();
        let inspect = run(podman
            .command()
            .args(["inspect", "-f", "{{.State.Pid}}", &name]))?;
        let pid: u32 = String::from_utf8(inspect.stdout)?.trim().parse()?;
        run(podman.command().args(["wait", &name]))?;
        Ok((id, pid))
    });
    let out = tapper.stop(Signal::SIGTERM);
    let _ = run(podman.command().args(["rm", "-f", "-t", "0", &name]));
    cgroup_tree::remove_everywhere(&top);
    let (out, (id, pid)) = (out.unwrap(), result.unwrap());
    let mine = events_of(&out.events, pid);
    assert_eq!(mine.len(), PROBE_FAILURES, "{:?}", out.stderr);
    for event in &mine {
        assert_eq!(event["cgroup_path"], format!("/{top}/libpod-{id}"));
        assert_eq!(event["container"]["id"], id.as_str());
        assert_eq!(event["container"]["runtime"], "podman");
        assert_eq!(event["pod"], Value::Null);
    }
    assert_named_from_some_point(&mine, "name");
    let last = mine.last().unwrap();
    assert_eq!(last["container"]["name"], name.as_str());
    assert_eq!(last["container"]["image"], IMAGE);
}

#[test]
fn containerd_cri_pod_and_container_names_reach_events() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let archive = Podman::new(&dir.path().join("podman"))
        .build_probe_image()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(containerd_scenario(dir.path(), &archive));
}

async fn containerd_scenario(dir: &Path, archive: &Path) {
    use k8s_cri::v1::*;

    let state = dir.join("containerd");
    std::fs::create_dir_all(&state).unwrap();
    let containerd = containerd::Containerd::start(&state, IMAGE).await.unwrap();
    containerd.import(archive, IMAGE).unwrap();
    let mut cri = containerd.runtime().await.unwrap();
    let top = test_top("cri");
    let uid = random_uid();
    let (pod_name, namespace) = ("web-7d4b9c", "shop");
    let tapper = start_tapper(containerd.socket.to_str().unwrap(), "none", &top);

    // As the kubelet: the pod's labels plus its own io.kubernetes.* ones, host network.
    let host_network = Some(NamespaceOption {
        network: NamespaceMode::Node as i32,
        ..Default::default()
    });
    let kubelet_labels = HashMap::from([
        ("io.kubernetes.pod.name".to_owned(), pod_name.to_owned()),
        (
            "io.kubernetes.pod.namespace".to_owned(),
            namespace.to_owned(),
        ),
        ("io.kubernetes.pod.uid".to_owned(), uid.clone()),
    ]);
    let mut pod_labels = kubelet_labels.clone();
    pod_labels.insert("app".into(), "web".into());
    let sandbox_config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: pod_name.into(),
            uid: uid.clone(),
            namespace: namespace.into(),
            attempt: 0,
        }),
        // A host-network pod keeps the node's name (and UTS namespace), as the kubelet does.
        hostname: String::new(),
        log_directory: dir.join("logs").display().to_string(),
        labels: pod_labels,
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("/{top}/kubepods/besteffort/pod{uid}"),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: host_network.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sandbox = cri
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: String::new(),
        })
        .await;
    let scenario = match &sandbox {
        Ok(sandbox) => {
            let pod = cri_pod::TestPod {
                sandbox: sandbox.get_ref().pod_sandbox_id.clone(),
                config: sandbox_config,
                kubelet_labels,
                cgroup_dir: Path::new(MEMORY).join(format!("{top}/kubepods/besteffort/pod{uid}")),
            };
            cri_pod::run_containers(&mut cri, &pod).await
        }
        Err(status) => Err(anyhow::anyhow!("RunPodSandbox: {status}")),
    };
    if let Ok(sandbox) = &sandbox {
        let pod_sandbox_id = sandbox.get_ref().pod_sandbox_id.clone();
        let stop = StopPodSandboxRequest {
            pod_sandbox_id: pod_sandbox_id.clone(),
        };
        let _ = cri.stop_pod_sandbox(stop).await;
        let _ = cri
            .remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id })
            .await;
    }
    let out = tapper.stop(Signal::SIGTERM);
    let log = containerd.log();
    let stopped = containerd.stop();
    cgroup_tree::remove_everywhere(&top);
    let (out, ()) = (out.unwrap(), stopped.unwrap());
    let containers = scenario.unwrap_or_else(|e| panic!("{e:#}\ncontainerd's log:\n{log}"));

    let pod =
        json!({"uid": uid, "namespace": namespace, "name": pod_name, "labels": {"app": "web"}});
    for (name, id, pid, failures) in containers {
        let mine = events_of(&out.events, pid);
        assert_eq!(mine.len(), failures, "{name}: {:?}", out.stderr);
        for event in &mine {
            assert_eq!(
                event["cgroup_path"],
                format!("/{top}/kubepods/besteffort/pod{uid}/{id}")
            );
            assert_eq!(event["container"]["id"], id.as_str());
            assert_eq!(event["pod"]["uid"], uid.as_str());
        }
        if name == "oneshot" {
            // Its pod was listed before it started: the short-lived container's events
            // carry the pod's names from the first one on.
            assert!(mine.iter().all(|e| e["pod"] == pod), "{mine:?}");
        } else {
            assert_named_from_some_point(&mine, "name");
            assert_eq!(mine.last().unwrap()["pod"], pod);
            let last = mine.last().unwrap();
            assert_eq!(
                last["container"],
                json!({"id": id, "runtime": "containerd", "name": name, "image": IMAGE})
            );
        }
    }
}

#[test]
fn a_missing_runtime_path_is_a_clear_error() {
    let out = Command::new(tapper_bin())
        .args(["--cri-socket", "/nonexistent/containerd.sock"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        "--cri-socket /nonexistent/containerd.sock: no such file",
        "`auto`",
        "`none`",
    ] {
        assert!(stderr.contains(needle), "stderr lacks `{needle}`: {stderr}");
    }
}

#[test]
fn a_runtime_that_does_not_answer_holds_back_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // A socket path nobody listens on: every listing fails.
    let socket = dir.path().join("silent.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let top = test_top("silent");
    let (id, uid) = (random_hex(64), random_uid());
    let path = format!("/{top}/kubepods/burstable/pod{uid}/{id}");
    let cgroup = TestCgroup::create(&path, &[MEMORY, PIDS]).unwrap();
    let tapper = start_tapper(socket.to_str().unwrap(), "none", &top);
    let pid = run_probe_in(&cgroup.procs_files(&[MEMORY, PIDS]), 4).unwrap();
    let out = tapper.stop(Signal::SIGTERM).unwrap();
    let mine = events_of(&out.events, pid);
    assert_eq!(mine.len(), 4);
    for event in mine {
        assert_eq!(
            event["container"],
            json!({"id": id, "runtime": null, "name": null, "image": null})
        );
        assert_eq!(event["pod"]["uid"], uid.as_str());
    }
    let log = out.stderr.join("\n");
    assert!(
        log.contains("did not answer") && log.contains("silent.sock"),
        "{log}"
    );
}
