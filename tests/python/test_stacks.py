"""User stacks end to end: the real tapper (--stacks, real eBPF, run as root) ships EMFILE
failures of a frame-pointer workload to the real hub, whose SQLite store keeps each
distinct stack once; a grpcio live subscriber, a grpcio and a grpcurl replay, and
`hub-client watch --stacks` all see the same frames."""

import json
import os
import pty
import signal
import sqlite3
import subprocess
import threading

import grpc
import pytest

from tapperkit.binaries import ROOT
from tapperkit.process import ready_fields
from test_grpcurl import grpcurl_run, parse_stream
from test_tapper_to_hub import wait_for

NODE = "stacks-node"
FAILURES = 20
FUNCTIONS = ["stack_inner", "stack_middle", "stack_outer", "fail_emfile", "main"]


@pytest.fixture
def stack_workload(tmp_path):
    """The C workload built with frame pointers (see e2e/workloads/stack_workload.c)."""
    binary = tmp_path / "stack-workload"
    subprocess.run(["gcc", "-O0", "-g", "-fno-omit-frame-pointer", "-o", str(binary),
                    str(ROOT / "e2e" / "workloads" / "stack_workload.c")], check=True)
    return binary


def subscribe(stubs, hub, sink, streams, **request):
    hub_pb2, hub_pb2_grpc, _ = stubs
    with grpc.insecure_channel(hub.addr) as channel:
        stream = hub_pb2_grpc.HubStub(channel).Subscribe(
            hub_pb2.SubscribeRequest(node=[NODE], **request))
        streams.append(stream)
        try:
            for item in stream:
                if item.HasField("event"):
                    sink.append(item.event)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                raise


def frames_of(event):
    return [(f.address, f.module, f.offset, f.symbol if f.HasField("symbol") else None,
             f.build_id if f.HasField("build_id") else None)
            for f in event.user_stack]


def readelf_build_id(path):
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                if line.strip().startswith("Build ID:"))


def watch_table(hub_client_bin, hub):
    """`hub-client watch --stacks` replaying everything, on a terminal (its table mode)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(hub_client_bin), "--hub", hub.url, "watch", "--stacks", "--node", NODE,
         "--since-seq", "0", "--no-follow"],
        stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_stacks_survive_the_store_once_per_distinct_stack(
        tapper_bin, stack_workload, hub_factory, hub_client_bin, grpcurl, stubs, tmp_path):
    db = tmp_path / "hub.db"
    hub = hub_factory("--db", str(db))
    live, live_streams = [], []
    threading.Thread(target=subscribe, args=(stubs, hub, live, live_streams),
                     kwargs={"follow": True}, daemon=True).start()
    wait_for(lambda: live_streams, "the live subscription")

    log = tmp_path / "tapper.log"
    with open(log, "wb") as f:
        tapper = subprocess.Popen(
            [str(tapper_bin), "--probe", "exit-only", "--stacks", "--output", "none",
             "--comm", "stack-workload", "--hub", hub.url, "--node-name", NODE],
            stdout=subprocess.DEVNULL, stderr=f)
    wait_for(lambda: ready_fields(log) or tapper.poll() is not None, "the tapper to attach",
             timeout=60)
    assert tapper.poll() is None, log.read_text()
    # The workload stays alive (waiting on stdin) until its failures are at the hub.
    workload = subprocess.Popen([str(stack_workload), str(FAILURES), "pause"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    wait_for(lambda: len(live) >= FAILURES, f"{FAILURES} events at the live subscriber")
    workload.stdin.close()
    assert workload.wait(timeout=30) == 0
    tapper.send_signal(signal.SIGINT)
    assert tapper.wait(timeout=30) == 0, log.read_text()
    live_streams[0].cancel()

    assert len(live) == FAILURES
    build_id = readelf_build_id(stack_workload)
    for event in live:
        assert event.pid == workload.pid and event.errno_name == "EMFILE"
        symbols = [f.symbol for f in event.user_stack[:len(FUNCTIONS)]]
        assert symbols == FUNCTIONS, event
        assert all(f.module == str(stack_workload) for f in event.user_stack[:len(FUNCTIONS)])
        # Build-id frames: the workload's build id, the file offset as the address.
        assert all(f.build_id == build_id and f.address == f.offset
                   for f in event.user_stack[:len(FUNCTIONS)]), event
    # The same call site every time: one distinct stack, stored once.
    assert len({tuple(frames_of(e)) for e in live}) == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM stacks").fetchone()[0] == 1
        assert conn.execute(
            "SELECT COUNT(DISTINCT stack_id), COUNT(*) FROM events WHERE stack_id IS NOT NULL"
        ).fetchone() == (1, FAILURES)

    # A grpcio replay returns exactly the live frames.
    replayed, replay_streams = [], []
    subscribe(stubs, hub, replayed, replay_streams, since_hub_seq=0, follow=False)
    assert [frames_of(e) for e in replayed] == [frames_of(e) for e in live]

    # grpcurl (reflection only) sees them as JSON.
    out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/Subscribe",
                      data={"node": [NODE], "since_hub_seq": 0, "follow": False})
    assert out.returncode == 0, out.stderr
    curl_events = [m["event"] for m in parse_stream(out.stdout) if "event" in m]
    assert len(curl_events) == FAILURES
    for event, expected in zip(curl_events, live):
        frames = [(int(f["address"]), f.get("module"), int(f["offset"]) if "offset" in f
                   else None, f.get("symbol"), f.get("buildId")) for f in event["userStack"]]
        assert frames == frames_of(expected)

    # hub-client watch --stacks prints each event's frames under its row.
    table = watch_table(hub_client_bin, hub)
    for depth, name in enumerate(FUNCTIONS):
        line = f"#{depth:<2} {name} ({stack_workload}+0x"
        assert table.count(line) == FAILURES, table


def test_events_without_stacks_store_no_stack(replay_to, hub_factory, tmp_path):
    db = tmp_path / "hub.db"
    hub = hub_factory("--db", str(db))
    replay_to(hub, "plain-node", 50)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 50
        assert conn.execute("SELECT COUNT(*) FROM stacks").fetchone()[0] == 0
        assert conn.execute(
            "SELECT COUNT(*) FROM events WHERE stack_id IS NOT NULL").fetchone()[0] == 0
