"""The OCI images, run for real with podman: the hub's container, and the tapper's container
(privileged, in the host's pid namespace) catching a failure provoked by a host process
and reporting it to the hub; both saved by podman and imported into a containerd, as the
Kubernetes recipe loads them into a node. Podman keeps its storage in the test's temp dir."""

import glob
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from tapperkit.binaries import ROOT

# The host's cgroups are hybrid: crun refuses them, runc does not. Podman's default
# RLIMIT_NOFILE/NPROC are above what this user may set, so containers get lower ones.
LIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]


class Podman:
    """podman with private storage under `base`, containers under their own cgroup parent."""

    def __init__(self, base):
        self.base = base
        self.cgroup_parent = f"/tapper-images-test-{os.getpid()}"
        self.global_opts = [
            "--root", str(base / "root"), "--runroot", str(base / "run"),
            "--tmpdir", str(base / "tmp"), "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", "runc"]

    def __call__(self, *args, timeout=120, check=True):
        out = subprocess.run(["podman", *self.global_opts, *args], capture_output=True,
                             text=True, timeout=timeout)
        if check:
            assert out.returncode == 0, f"podman {' '.join(args)}: {out.stderr}"
        return out

    def run_detached(self, *args):
        return self("run", "-d", "--network", "host", "--cgroup-parent", self.cgroup_parent,
                    *LIMITS, *args).stdout.strip()

    def ready(self, container, timeout=120):
        """The fields of the container's ready line (on its stderr)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            logs = self("logs", container, check=False)
            for line in logs.stderr.splitlines():
                if line.startswith('{"ready":'):
                    return json.loads(line)["ready"]
            state = self("inspect", "--format", "{{.State.Status}}", container).stdout
            if state.strip() == "exited":
                break
            time.sleep(0.25)
        pytest.fail(f"container {container} never got ready; its log:\n"
                    f"{self('logs', container, check=False).stderr}", pytrace=False)

    def remove_cgroups(self):
        """Removes the (by now empty) cgroups podman made under the test's parent."""
        tops = glob.glob(f"/sys/fs/cgroup{self.cgroup_parent}")
        tops += glob.glob(f"/sys/fs/cgroup/*{self.cgroup_parent}")
        for top in tops:
            for d, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                os.rmdir(d)

    def stop(self, container):
        """Stops with SIGTERM and returns the exit code."""
        self("stop", "--time", "20", container)
        return int(self("inspect", "--format", "{{.State.ExitCode}}", container).stdout)


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: apt-get install podman runc (scripts/setup.sh --test)",
                    pytrace=False)
    base = tmp_path_factory.mktemp("podman")
    p = Podman(base)
    build = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-images.sh"), "--tag", "test", "--",
         *p.global_opts], capture_output=True, text=True, timeout=2400)
    assert build.returncode == 0, build.stderr
    yield p
    p("rm", "--all", "--force", "--time", "5", check=False)
    p("system", "reset", "--force", check=False)
    p.remove_cgroups()
    subprocess.run(["rm", "-rf", str(base)], check=False)


def test_images_are_from_scratch_with_one_static_binary(podman):
    for image, binary in [("tapper", "/tapper"), ("tapper-hub", "/hub")]:
        info = json.loads(podman("image", "inspect", f"localhost/{image}:test").stdout)[0]
        assert info["Config"]["Entrypoint"][0] == binary
        assert len(info["RootFS"]["Layers"]) == 1, "FROM scratch plus one COPY"
        assert info["Size"] < 64 * 1024 * 1024, info["Size"]


def test_images_are_manifest_lists_of_an_amd64_and_an_arm64_image(podman, tmp_path):
    elf_machine = {"amd64": 62, "arm64": 183}  # EM_X86_64, EM_AARCH64
    for image, binary in [("tapper", "tapper"), ("tapper-hub", "hub")]:
        listed = json.loads(podman("manifest", "inspect", f"localhost/{image}:test").stdout)
        platforms = sorted((m["platform"]["os"], m["platform"]["architecture"])
                           for m in listed["manifests"])
        assert platforms == [("linux", "amd64"), ("linux", "arm64")], listed
        for arch, machine in elf_machine.items():
            ref = f"localhost/{image}:test-{arch}"
            info = json.loads(podman("image", "inspect", ref).stdout)[0]
            assert info["Architecture"] == arch, (ref, info["Architecture"])
            container = podman("create", ref).stdout.strip().splitlines()[-1]
            copy = tmp_path / f"{binary}-{arch}"
            podman("cp", f"{container}:/{binary}", str(copy))
            podman("rm", container)
            header = copy.read_bytes()[:20]
            assert header[:4] == b"\x7fELF", ref
            assert int.from_bytes(header[18:20], "little") == machine, (ref, header)


def test_tapper_container_reports_a_host_failure_to_the_hub_container(
        podman, hub_client_bin, tmp_path):
    data = tmp_path / "hub-data"
    data.mkdir()
    os.chown(data, 65532, 65532)
    hub = podman.run_detached("-v", f"{data}:/var/lib/tapper-hub", "localhost/tapper-hub:test",
                              "--listen", "127.0.0.1:0")
    try:
        addr = podman.ready(hub)["listen"]
        url = f"http://{addr}"
        tapper = podman.run_detached(
            "--privileged", "--pid", "host",
            "-v", "/sys/kernel/tracing:/sys/kernel/tracing",
            "localhost/tapper:test", "--output", "json", "--hub", url,
            "--node-name", "podman-node")
        try:
            # auto picks exit-only here, as on the host (its self-test passed in the container).
            assert podman.ready(tapper)["probe"] == "exit-only"
            # A host process makes the failing call; the hub is asked for its pid only.
            provoker = subprocess.Popen(
                [sys.executable, "-c",
                 "import socket, sys\n"
                 "sys.stdin.readline()\n"
                 "try:\n    socket.socket(9999, socket.SOCK_STREAM, 0)\n"
                 "except OSError as e:\n    print(e.errno)\n"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            watch = subprocess.Popen(
                [str(hub_client_bin), "--hub", url, "watch", "--since-seq", "0",
                 "--pid", str(provoker.pid), "--count", "1", "--json"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out, _ = provoker.communicate("go\n", timeout=30)
            assert out.strip() == "97", "socket(9999, ...) fails with EAFNOSUPPORT"
            try:
                line, err = watch.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                watch.kill()
                pytest.fail("no event reached the hub; tapper log:\n"
                            + podman("logs", tapper, check=False).stderr, pytrace=False)
            assert watch.returncode == 0, err
            e = json.loads(line)
            assert (e["node"], e["pid"], e["errno_name"], e["family"]) == (
                "podman-node", provoker.pid, "EAFNOSUPPORT", 9999), e
            assert e["comm"].startswith("python"), e
            tappers = subprocess.run(
                [str(hub_client_bin), "--hub", url, "tappers", "--json"],
                capture_output=True, text=True, timeout=30)
            assert tappers.returncode == 0, tappers.stderr
            (t,) = [json.loads(l) for l in tappers.stdout.splitlines()]
            assert (t["node"], t["connected"], t["probe_mode"]) == (
                "podman-node", True, "exit-only"), t
        finally:
            assert podman.stop(tapper) == 0, podman("logs", tapper, check=False).stderr
    finally:
        assert podman.stop(hub) == 0, podman("logs", hub, check=False).stderr
    assert (data / "hub.db").is_file(), "the hub kept its database on the volume"


def start_containerd(base):
    """A containerd of its own (root, state and socket under `base`, no CRI plugin); returns
    the process and its socket."""
    base.mkdir()
    socket = base / "containerd.sock"
    config = base / "config.toml"
    config.write_text(f'''version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{base}/opt"
''')
    log = open(base / "containerd.log", "w")
    process = subprocess.Popen(["containerd", "--config", str(config)], stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while subprocess.run(["ctr", "--address", str(socket), "version"],
                         capture_output=True).returncode != 0:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"containerd did not start: {(base / 'containerd.log').read_text()}",
                        pytrace=False)
        time.sleep(0.2)
    return process, socket


def test_images_load_into_a_nodes_containerd_as_the_recipe_does(podman, tmp_path):
    # docs/operations.md: podman save the two images, ctr -n k8s.io images import on a node.
    archive = tmp_path / "tapper-images.tar"
    images = ["localhost/tapper:test", "localhost/tapper-hub:test"]
    podman("save", "-m", "-o", str(archive), *images, timeout=300)
    process, socket = start_containerd(tmp_path / "containerd")
    try:
        ctr = ["ctr", "--address", str(socket), "-n", "k8s.io", "images"]
        # native: the overlay snapshotter cannot nest where the temp dir is on overlayfs.
        out = subprocess.run([*ctr, "import", "--snapshotter", "native", str(archive)],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
        listed = subprocess.run([*ctr, "ls", "-q"], capture_output=True, text=True, timeout=60)
        # The kubelet finds an image by the reference the manifests name.
        assert set(images) <= set(listed.stdout.split()), listed.stdout
    finally:
        process.terminate()
        process.wait(timeout=30)
