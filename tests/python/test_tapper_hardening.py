"""The tapper against hostile local processes (issue 9, items 11 and 13): the real tapper
(real eBPF, run as root) ships to the real hub the failures of unprivileged processes
(`setpriv` as nobody) with a huge command line or terminal escapes in their name."""

import errno
import json
import os
import pty
import select
import signal
import subprocess
import time

import pytest

from tapperkit.process import start

NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
# The system interpreter: nobody cannot run a per-user one.
PYTHON = "/usr/bin/python3"
CMDLINE_LIMIT = 4096
ESC = b"\x1b"


def start_tapper(tapper_bin, hub, tmp_path, *args):
    """The tracepoint tapper shipping to `hub`, once attached (its ready line); returns its
    process with its stdout and log paths."""
    out, log = tmp_path / "tapper.out", tmp_path / "tapper.log"
    with open(out, "wb") as o:
        tapper = start([str(tapper_bin), "--probe", "tracepoint", "--hub", hub.url, *args],
                       log, name="tapper", stdout=o)
    return tapper.proc, out, log


def stop_tapper(proc, log):
    """SIGINT, then the final counters; the hub must have acknowledged everything."""
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0, log.read_text()
    text = log.read_text(errors="replace")
    assert "the hub acknowledged every event" in text, text
    # JSON mode prints the counters as one JSON line, table mode as a block.
    finals = [json.loads(line)["stats"] for line in text.splitlines()
              if line.startswith('{"counters":"final"')]
    return finals[0] if finals else None


def run_as_nobody(code, *args):
    """Runs Python `code` as nobody; returns its pid."""
    proc = subprocess.run([*NOBODY, PYTHON, "-c", code, *args], capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.decode().strip())


FAIL_5_TIMES = """
import os, socket, sys
for _ in range(5):
    try:
        socket.socket(9999, socket.SOCK_STREAM)
    except OSError:
        pass
print(os.getpid(), flush=True)
sys.stdin.read()  # alive until the test saw its events: /proc is read after the call
"""


def start_as_nobody(code, *args):
    """Starts Python `code` as nobody; returns the process and the pid it printed."""
    proc = subprocess.Popen([*NOBODY, PYTHON, "-c", code, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    return proc, int(proc.stdout.readline().decode().strip())


def events_of(path, pid):
    """The JSON events of `pid` the tapper printed to `path` so far."""
    whole_lines = path.read_text().split("\n")[:-1] if path.exists() else []
    return [e for e in map(json.loads, whole_lines) if e.get("pid") == pid]


def hub_client(hub_client_bin, hub, *args):
    out = subprocess.run([str(hub_client_bin), "--hub", hub.url, *args], capture_output=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def stored_events(hub_client_bin, hub, node):
    text = hub_client(hub_client_bin, hub, "watch", "--json", "--since-seq", "0",
                      "--no-follow", "--node", node).decode()
    items = [json.loads(line) for line in text.splitlines()]
    assert not [i for i in items if "loss" in i or "lagged" in i], items
    return items


def test_a_200_kb_command_line_is_truncated_marked_and_blinds_nothing(
        tapper_bin, workload_bin, hub, hub_client_bin, tmp_path):
    node = "long-cmdline"
    tapper, out, log = start_tapper(tapper_bin, hub, tmp_path, "--output", "json",
                                    "--comm", "python3,socket-workload", "--node-name", node)
    # Four arguments of 50 KB (one may be at most 128 KiB): a 200 KB command line.
    long = [start_as_nobody(FAIL_5_TIMES, *["A" * 50_000] * 4) for _ in range(2)]
    long_pids = [pid for _, pid in long]
    # A process that exits before the tapper reads its /proc has no command line to cut, so
    # each stays alive until its five events are out.
    deadline = time.monotonic() + 60
    while any(len(events_of(out, pid)) < 5 for pid in long_pids):
        assert time.monotonic() < deadline, "the long command lines' events never came"
        time.sleep(0.05)
    for proc, _ in long:
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    # Later, ordinary failures from the same node keep arriving.
    work = subprocess.run([str(workload_bin), "--threads", "1", "--fail", "EINVAL=50"],
                          capture_output=True, text=True, timeout=60)
    assert work.returncode == 0, work.stderr
    work_pid = json.loads(work.stdout)["pid"]
    final = stop_tapper(tapper, log)

    local = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(local) == final["events_shown"]
    at_hub = stored_events(hub_client_bin, hub, node)
    assert len(at_hub) == final["events_shown"]
    stats = json.loads(hub_client(hub_client_bin, hub, "stats", "--node", node, "--json"))
    assert (stats["total_events"], stats["total_lost"]) == (final["events_shown"], 0), stats

    for events in (local, at_hub):
        for pid in long_pids:
            mine = [e for e in events if e["pid"] == pid]
            assert len(mine) == 5, [e["cmdline"][:80] for e in events]
            for e in mine:
                assert e["uid"] == 65534 and e["errno_name"] == "EAFNOSUPPORT"
                assert len(e["cmdline"].encode()) == CMDLINE_LIMIT
                assert e["cmdline"].startswith(f"{PYTHON} -c ")
                assert e["truncated"] == ["cmdline"]
        normal = [e for e in events if e["pid"] == work_pid]
        assert len(normal) == 50
        assert all("truncated" not in e for e in normal)


INJECT = """
import ctypes, os, socket
# PR_SET_NAME: the thread's comm, which the kernel reports with every event.
ctypes.CDLL(None).prctl(15, b"\\x1b[2Jevil", 0, 0, 0)
for _ in range(3):
    try:
        socket.socket(9999, socket.SOCK_STREAM)
    except OSError:
        pass
print(os.getpid())
"""


def read_through_a_terminal(argv):
    """Runs argv with its stdout on a pseudo-terminal (so it renders for people); returns
    what it printed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError as err:
            if err.errno != errno.EIO:
                raise
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=10) == 0, proc.stderr.read()
    return b"".join(chunks)


def test_terminal_escapes_from_a_process_name_and_a_node_name_are_shown_escaped(
        tapper_bin, hub, hub_client_bin, tmp_path):
    node = "in\x1b[2J"
    # --comm is a glob: `[[]` matches the literal `[` of the escape sequence.
    tapper, out, log = start_tapper(tapper_bin, hub, tmp_path, "--output", "table",
                                    "--comm", "\x1b[[]2Jevil", "--node-name", node)
    pid = run_as_nobody(INJECT)
    stop_tapper(tapper, log)

    table = out.read_bytes()
    assert ESC not in table, table
    rows = [line for line in table.decode().splitlines() if f" {pid} " in line]
    assert len(rows) == 3 and all("\\x1b[2Jevil" in r for r in rows), table

    watch = read_through_a_terminal([str(hub_client_bin), "--hub", hub.url, "watch",
                                     "--since-seq", "0", "--no-follow"])
    assert ESC not in watch, watch
    rows = [line for line in watch.decode().splitlines() if f" {pid} " in line]
    assert len(rows) == 3, watch
    assert all(" in\\x1b[2J " in r and " \\x1b[2Jevil " in r for r in rows), watch

    tappers = hub_client(hub_client_bin, hub, "tappers")
    assert ESC not in tappers and b"in\\x1b[2J" in tappers, tappers
    stats = hub_client(hub_client_bin, hub, "stats", "--group-by", "node,comm")
    assert ESC not in stats, stats
    assert b"in\\x1b[2J" in stats and b"\\x1b[2Jevil" in stats, stats
    assert b"total events: 3   lost (reported): 0" in stats, stats


def test_the_hub_logs_rejected_batches_once_per_node_with_a_count(hub, stubs):
    """A client resending a batch over the cmdline limit is rejected every time; the hub
    says so in one log line per node (rate-limited), not one per rejection and not never."""
    import grpc

    hub_pb2, hub_pb2_grpc, event_pb2 = stubs
    bad = event_pb2.Event(seq=1, errno=24, errno_name="EMFILE", comm="x",
                          cmdline="A" * (CMDLINE_LIMIT + 1))
    bad.ts.GetCurrentTime()
    with grpc.insecure_channel(hub.addr) as channel:
        stub = hub_pb2_grpc.HubStub(channel)
        for _ in range(20):
            requests = [
                hub_pb2.ReportRequest(hello=hub_pb2.Hello(node="resender", instance_id="i1")),
                hub_pb2.ReportRequest(events=hub_pb2.EventBatch(events=[bad])),
            ]
            with pytest.raises(grpc.RpcError) as err:
                for _ in stub.Report(iter(requests)):
                    pass
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "events[0].cmdline" in err.value.details()
    time.sleep(0.2)
    lines = [line for line in hub.log.read_text(errors="replace").splitlines()
             if "rejecting report" in line]
    assert len(lines) == 1, lines
    assert "resender" in lines[0] and "events[0].cmdline" in lines[0], lines
