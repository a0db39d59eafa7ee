"""Pod identity cannot be spoofed from a delegated cgroup (issue 27, item 6): nobody, in a
cgroup2 subtree delegated to it, copies a victim's kubelet layout
(`kubepods/besteffort/pod<uid>/<container id>`) and fails socket(); the real tapper must
not name that pod or container. A root-owned copy of the layout below the top is not
believed either, while the same layout under a --kubelet-cgroup-root is."""

import os
import secrets
import time
import uuid
from pathlib import Path

import pytest

from tapperkit.tapper import start_as_nobody, start_tapper

UNIFIED = Path("/sys/fs/cgroup/unified")

# Waits for a line (the test moves it into its delegated cgroup meanwhile), makes the
# victim's layout below that cgroup, joins its leaf, fails socket() and says so.
SPOOF = """
import os, socket, sys
print(os.getpid(), flush=True)
sys.stdin.readline()
leaf = sys.argv[1]
os.makedirs(leaf)
with open(os.path.join(leaf, "cgroup.procs"), "w") as f:
    f.write("0")
try:
    socket.socket(9999, socket.SOCK_STREAM)
except OSError:
    pass
print("failed", flush=True)
sys.stdin.readline()
"""

# Fails socket() once its line came (the test has moved it by then), and says so.
FAIL_WHEN_TOLD = """
import os, socket, sys
print(os.getpid(), flush=True)
sys.stdin.readline()
try:
    socket.socket(9999, socket.SOCK_STREAM)
except OSError:
    pass
print("failed", flush=True)
sys.stdin.readline()
"""


def remove_tree(top):
    """Removes a cgroup tree deepest first, giving exited members a moment to leave."""
    for d, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
        for _ in range(50):
            try:
                os.rmdir(d)
                break
            except OSError:
                time.sleep(0.1)


@pytest.fixture
def top():
    """A cgroup2 directory of this test's own at the top of the hierarchy."""
    if not UNIFIED.is_dir():
        pytest.fail(f"no cgroup2 mount at {UNIFIED}", pytrace=False)
    path = UNIFIED / f"tapper-spoof-{os.getpid()}-{secrets.token_hex(3)}"
    path.mkdir()
    yield path
    remove_tree(path)


def victim_layout():
    return f"kubepods/besteffort/pod{uuid.uuid4()}/{secrets.token_hex(32)}"


def delegate(cgroup, uid):
    """Delegates `cgroup` to `uid` as systemd does: the directory and its control files."""
    for path in [cgroup, cgroup / "cgroup.procs", cgroup / "cgroup.subtree_control",
                 cgroup / "cgroup.threads"]:
        os.chown(path, uid, uid)


def go(workload):
    workload.stdin.write("go\n")
    workload.stdin.flush()


def test_a_kubelet_layout_in_a_delegated_subtree_names_no_pod(tapper_bin, tmp_path, top):
    delegated = top / "delegated"
    delegated.mkdir()
    delegate(delegated, 65534)
    nested = top / "nested" / victim_layout()
    nested.mkdir(parents=True)
    # The test's top as a kubelet root: only ownership keeps the delegated copy out there.
    tapper = start_tapper(tapper_bin, tmp_path, "--comm", "python3",
                          "--kubelet-cgroup-root", f"/{top.name}")
    spoof_leaf = delegated / victim_layout()
    spoofer, spoofer_pid = start_as_nobody(SPOOF, str(spoof_leaf))
    # A root-owned copy below the top, not under a kubelet root: the layout rule keeps it out.
    copier, copier_pid = start_as_nobody(FAIL_WHEN_TOLD)
    # The real thing: a root-owned layout right below the configured root.
    trusted = top / victim_layout()
    trusted.mkdir(parents=True)
    genuine, genuine_pid = start_as_nobody(FAIL_WHEN_TOLD)
    try:
        (delegated / "cgroup.procs").write_text(spoofer_pid)
        go(spoofer)
        assert spoofer.stdout.readline().strip() == "failed"
        (nested / "cgroup.procs").write_text(copier_pid)
        go(copier)
        assert copier.stdout.readline().strip() == "failed"
        (trusted / "cgroup.procs").write_text(genuine_pid)
        go(genuine)
        assert genuine.stdout.readline().strip() == "failed"
        spoofed = tapper.wait_event(int(spoofer_pid))[0]
        copied = tapper.wait_event(int(copier_pid))[0]
        real = tapper.wait_event(int(genuine_pid))[0]
    finally:
        for proc in (spoofer, copier, genuine):
            proc.kill()
            proc.wait()
    tapper.stop()
    for event, leaf in [(spoofed, spoof_leaf), (copied, nested)]:
        # The path is shown as it is, but names no pod and no container.
        assert event["cgroup_path"] == "/" + str(leaf.relative_to(UNIFIED)), event
        assert event["container"] is None and event["pod"] is None, event
    # The control: the same layout where the kubelet would put it is believed.
    container_id, pod_dir = trusted.name, trusted.parent.name
    assert real["container"]["id"] == container_id, real
    assert "pod" + real["pod"]["uid"] == pod_dir, real
