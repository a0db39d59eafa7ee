"""End to end: the real tapper (real eBPF, run as root) ships provoked socket() failures to
the real hub; grpcurl (reflection only) and a grpcio client receive exactly them."""

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter

import grpc
import pytest

from tapperkit.process import ready_fields, start
from test_grpcurl import grpcurl_run, parse_stream

NODE = "e2e-node"
WORKLOAD = ["--threads", "3", "--fail", "EINVAL=5", "--fail", "EPERM=4",
            "--fail", "EAFNOSUPPORT=3", "--successes", "20"]
EXPECTED_ARGS = {
    "EINVAL": ("AF_INET", "9|0x3030", "IPPROTO_IP"),
    "EPERM": ("AF_INET", "SOCK_RAW", "IPPROTO_ICMP"),
    "EAFNOSUPPORT": ("9999", "SOCK_STREAM", "0"),
}
# The diagnosis of each: the flag bits, a raw socket from a thread without CAP_NET_RAW, a
# family that does not exist.
EXPECTED_DIAGNOSIS = {
    "EINVAL": ("type_invalid", "unknown flag bits 0x3030"),
    "EPERM": ("capability", "SOCK_RAW needs CAP_NET_RAW"),
    "EAFNOSUPPORT": ("family_unsupported", "family 9999 is not an address family"),
}


def start_tapper(tapper_bin, hub, tmp_path):
    """The tracepoint tapper shipping the workload's failures to `hub`, once attached."""
    log = tmp_path / "tapper.log"
    tapper = start([str(tapper_bin), "--probe", "tracepoint", "--output", "none",
                    "--comm", "socket-workload", "--hub", hub.url, "--node-name", NODE],
                   log, name="tapper")
    return tapper.proc, log


def grpcio_subscriber(stubs, hub, sink, done):
    hub_pb2, hub_pb2_grpc, _ = stubs
    with grpc.insecure_channel(hub.addr) as channel:
        stub = hub_pb2_grpc.HubStub(channel)
        stream = stub.Subscribe(hub_pb2.SubscribeRequest(node=[NODE], follow=True))
        done.append(stream)
        try:
            for item in stream:
                if item.HasField("event"):
                    sink.append(item.event)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                raise


def wait_for(predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        time.sleep(0.05)


def test_tapper_events_reach_grpcurl_and_grpcio_exactly(
        tapper_bin, workload_bin, hub, grpcurl, stubs, tmp_path):
    # Both subscribers are live before any failure happens.
    live = subprocess.Popen(
        [str(grpcurl), "-plaintext", "-d", json.dumps({"node": [NODE]}), hub.addr,
         "tapper.v1.Hub/Subscribe"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    grpcio_events, grpcio_stream = [], []
    listener = threading.Thread(target=grpcio_subscriber,
                                args=(stubs, hub, grpcio_events, grpcio_stream), daemon=True)
    listener.start()
    wait_for(lambda: grpcio_stream, "the grpcio subscription")
    time.sleep(0.5)  # grpcurl resolves the method through reflection before it subscribes

    tapper, log = start_tapper(tapper_bin, hub, tmp_path)
    out = subprocess.run([str(workload_bin), *WORKLOAD], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    manifest = json.loads(out.stdout)
    tapper.send_signal(signal.SIGINT)
    assert tapper.wait(timeout=30) == 0, log.read_text()
    assert "the hub acknowledged every event" in log.read_text(), log.read_text()

    expected = Counter()
    for thread in manifest["threads"]:
        for name, n in thread["failures"].items():
            expected[(thread["tid"], name.upper())] += n
    total = sum(expected.values())
    assert total == 3 * (5 + 4 + 3)

    wait_for(lambda: len(grpcio_events) >= total, f"{total} events at the grpcio client")
    time.sleep(0.3)  # anything beyond the expected count would show up now
    grpcio_stream[0].cancel()
    assert Counter((e.tid, e.errno_name) for e in grpcio_events) == expected
    for e in grpcio_events:
        assert e.node == NODE and e.pid == manifest["pid"] and e.probe == "tracepoint"
        assert (e.family_name, e.type_name, e.protocol_name) == EXPECTED_ARGS[e.errno_name]
        assert e.comm == "socket-workload" and e.uid == 0 and e.hub_seq > 0
        assert e.message and e.ts.seconds > 0 and e.HasField("duration_ns")
        assert e.seq >= 1 and e.instance_id
        cause, evidence = EXPECTED_DIAGNOSIS[e.errno_name]
        assert e.diagnosis.cause == cause and evidence in e.diagnosis.text, e.diagnosis

    # grpcurl streams pretty JSON objects; stop it once it printed them all (it may lag
    # behind grpcio on a busy machine), or at the deadline.
    def grpcurl_events():
        os.set_blocking(live.stdout.fileno(), False)
        text, deadline = "", time.monotonic() + 30
        while time.monotonic() < deadline:
            chunk = live.stdout.read()
            text += chunk or ""
            try:
                events = [m["event"] for m in parse_stream(text) if "event" in m]
            except json.JSONDecodeError:
                events = []  # an object cut mid-way: read on
            if len(events) >= total:
                break
            time.sleep(0.1)
        time.sleep(0.3)  # anything beyond the expected count would show up now
        live.terminate()
        rest, _ = live.communicate(timeout=10)
        return [m["event"] for m in parse_stream(text + (rest or "")) if "event" in m]
    curl_events = grpcurl_events()
    assert Counter((e["tid"], e["errnoName"]) for e in curl_events) == expected
    for e in curl_events:
        assert e["node"] == NODE and e["pid"] == manifest["pid"]
        assert (e["familyName"], e["typeName"], e["protocolName"]) == EXPECTED_ARGS[e["errnoName"]]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", e["ts"])
        cause, evidence = EXPECTED_DIAGNOSIS[e["errnoName"]]
        assert e["diagnosis"]["cause"] == cause and evidence in e["diagnosis"]["text"], e

    # Stored and replayed: the same diagnosis comes back from the hub's store.
    out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/Subscribe",
                      data={"since_hub_seq": "0", "follow": False, "node": [NODE]})
    assert out.returncode == 0, out.stderr
    replayed = [m["event"] for m in parse_stream(out.stdout) if "event" in m]
    assert len(replayed) == len(curl_events)
    by_seq = {e["seq"]: e["diagnosis"] for e in curl_events}
    assert {e["seq"]: e["diagnosis"] for e in replayed} == by_seq

    # Aggregates and the tapper list agree.
    out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/GetStats",
                      data={"group_by": ["GROUP_BY_ERRNO"], "node": [NODE]})
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert int(stats["totalEvents"]) == total
    assert {r["errnoName"]: int(r["count"]) for r in stats["rows"]} == \
        {"EINVAL": 15, "EPERM": 12, "EAFNOSUPPORT": 9}
    def our_tappers():
        out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/ListTappers")
        assert out.returncode == 0, out.stderr
        return [t for t in json.loads(out.stdout)["tappers"] if t["node"] == NODE]
    wait_for(lambda: not our_tappers()[0].get("connected", False), "the hub to see the tapper leave")
    tappers = our_tappers()
    assert len(tappers) == 1
    assert int(tappers[0]["eventsReceived"]) == total
    assert tappers[0]["probeMode"] == "tracepoint"
    assert tappers[0]["counters"]["failures"] is not None


def test_kernel_ring_buffer_drops_reach_the_hub_as_losses(
        tapper_bin, workload_bin, hub, hub_client_bin, tmp_path):
    """A one-page ring buffer overflows under a burst; every failure is then either an event
    at the hub or counted in a loss record there (the rate limit off: every failure is an
    event or a drop)."""
    log = tmp_path / "tapper.log"
    with open(log, "wb") as f:
        tapper = subprocess.Popen(
            [str(tapper_bin), "--probe", "tracepoint", "--output", "json",
             "--ring-buffer-size", "4096", "--rate-limit", "0", "--comm", "socket-workload",
             "--hub", hub.url, "--node-name", NODE],
            stdout=subprocess.DEVNULL, stderr=f)
    wait_for(lambda: ready_fields(log) or tapper.poll() is not None, "the tapper to attach", timeout=60)
    assert tapper.poll() is None, log.read_text()
    out = subprocess.run([str(workload_bin), "--threads", "2", "--fail", "EINVAL=20000"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    tapper.send_signal(signal.SIGINT)
    assert tapper.wait(timeout=30) == 0, log.read_text()
    final = next(json.loads(line)["stats"] for line in log.read_text().splitlines()
                 if line.startswith('{"counters":"final"'))
    drops = final["drops"]
    assert drops > 0, f"a 4 KiB ring buffer should overflow: {final}"
    assert final["failures"] == final["events_received"] + drops

    stats = json.loads(subprocess.run(
        [str(hub_client_bin), "--hub", hub.url, "stats", "--node", NODE, "--json"],
        capture_output=True, text=True, timeout=60, check=True).stdout)
    assert stats["total_lost"] == drops, stats
    assert stats["total_events"] == final["events_shown"], stats
    # Every provoked failure is an event at the hub or one of the counted drops.
    assert final["events_shown"] <= 40000 <= final["events_shown"] + drops, final


def test_at_exit_the_tapper_says_what_the_hub_did_not_get(tapper_bin, workload_bin, tmp_path):
    """With no hub listening: nothing to deliver is said as such (never "acknowledged
    every event"), and events that could not be delivered are counted with their seqs."""
    def run_tapper(name, workload):
        log = tmp_path / f"{name}.log"
        tapper = start([str(tapper_bin), "--probe", "tracepoint", "--output", "none",
                        "--comm", "socket-workload", "--hub", "http://127.0.0.1:1"],
                       log, name="tapper")
        if workload:
            subprocess.run([str(workload_bin), "--threads", "1", "--fail", "EINVAL=3"],
                           check=True, capture_output=True, timeout=60)
            time.sleep(0.5)
        tapper.stop()
        return log.read_text()

    quiet = run_tapper("quiet", workload=False)
    assert "acknowledged every event" not in quiet, quiet
    assert "no event to deliver, but the hub was never reached" in quiet, quiet
    busy = run_tapper("busy", workload=True)
    assert "acknowledged every event" not in busy, busy
    assert re.search(r"stopping with 3 events not delivered \(seq 1 to 3\)", busy), busy
