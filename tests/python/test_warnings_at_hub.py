"""Nofile warnings from the real tapper at the real hub: a process under RLIMIT_NOFILE 256
that uses up its descriptors is warned about; the hub stores the warnings, streams them
live and replays them with the `kind` filter (grpcio and hub-client watch), counts them
in its metrics, and a rule on them fires in the real Alertmanager."""

import json
import os
import subprocess
import threading

import grpc
import pytest

from tapperkit.binaries import binary
from tapperkit.process import ready_fields
from tapperkit.monitoring import Alertmanager, wait_for
from tapperkit.net import free_port, scrape
from test_tapper_hardening import hub_client, start_tapper, stop_tapper

RULE = """
[[rule]]
name = "FdExhaustionAhead"
kind = "nofile"
threshold = 1
window = "1m"
group_by = ["node"]
severity = "warning"
"""


@pytest.fixture(scope="session")
def fd_ramp_bin():
    return binary("FD_RAMP_BIN", "fd-ramp")


@pytest.fixture
def alertmanager(tmp_path):
    am = Alertmanager(tmp_path, free_port())
    am.start()
    yield am
    am.stop()


def subscribe(stubs, hub, **request):
    """The items of a Subscribe (replay without follow unless asked) as (kind, message)."""
    hub_pb2, hub_pb2_grpc, _ = stubs
    with grpc.insecure_channel(hub.addr) as channel:
        stream = hub_pb2_grpc.HubStub(channel).Subscribe(hub_pb2.SubscribeRequest(**request),
                                                        timeout=30)
        return [(item.WhichOneof("item"), getattr(item, item.WhichOneof("item")))
                for item in stream]


def live_warnings(stubs, hub, node, sink, streams):
    hub_pb2, hub_pb2_grpc, _ = stubs
    with grpc.insecure_channel(hub.addr) as channel:
        stream = hub_pb2_grpc.HubStub(channel).Subscribe(
            hub_pb2.SubscribeRequest(node=[node], kind=["warning"], follow=True))
        streams.append(stream)
        try:
            for item in stream:
                sink.append(item)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                raise


def test_warnings_are_stored_streamed_replayed_by_kind_counted_and_alerted(
        tapper_bin, fd_ramp_bin, hub_factory, hub_client_bin, stubs, alertmanager, tmp_path):
    node = f"warn-node-{os.getpid()}"
    rules = tmp_path / "rules.toml"
    rules.write_text(RULE)
    hub = hub_factory("--alert-rules", str(rules), "--alertmanager", alertmanager.url,
                      "--metrics-listen", "127.0.0.1:0")
    live, streams = [], []
    listener = threading.Thread(target=live_warnings, args=(stubs, hub, node, live, streams),
                                daemon=True)
    listener.start()
    wait_for(lambda: streams, "the live subscription")

    tapper, out, log = start_tapper(tapper_bin, hub, tmp_path, "--output", "json",
                                    "--comm", "fd-ramp", "--node-name", node,
                                    "--warn-interval", "1s")
    try:
        ramp = subprocess.run([str(fd_ramp_bin), "--fds", "230", "--hold-ms", "1500",
                               "--until-emfile"], capture_output=True, text=True, timeout=60)
        assert ramp.returncode == 0, ramp.stderr
        pid = json.loads(ramp.stdout)["pid"]
    finally:
        stop_tapper(tapper, log)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    printed = [line["warning"] for line in lines
               if "warning" in line and line["warning"]["pid"] == pid]
    assert len(printed) >= 2, lines

    # Replayed with the kind filter: exactly the printed warnings, nothing else.
    stored = subscribe(stubs, hub, node=[node], kind=["nofile"], since_hub_seq=0)
    assert [kind for kind, _ in stored] == ["warning"] * len(printed), stored
    for (_, w), p in zip(stored, printed):
        assert (w.kind, w.pid, w.comm, w.used, w.limit) == \
            ("nofile", pid, "fd-ramp", p["used"], p["limit"])
        assert w.node == node and w.hub_seq > 0 and w.seq >= 1 and w.instance_id
        assert abs(w.ratio - p["ratio"]) < 1e-9
        assert w.HasField("eta_seconds") == (p["eta_seconds"] is not None)
        # Diagnosed by the tapper, stored and replayed as printed.
        assert p["diagnosis"]["cause"] == "rlimit_nofile", p
        assert f"open fds of RLIMIT_NOFILE {p['limit']} " in p["diagnosis"]["text"], p
        assert (w.diagnosis.cause, w.diagnosis.text) == \
            (p["diagnosis"]["cause"], p["diagnosis"]["text"])
    events = subscribe(stubs, hub, node=[node], kind=["event"], since_hub_seq=0)
    assert {kind for kind, _ in events} == {"event"}, events
    assert [e.errno_name for _, e in events if e.pid == pid] == ["EMFILE"]
    assert subscribe(stubs, hub, node=[node], kind=["file-max"], since_hub_seq=0) == []
    everything = subscribe(stubs, hub, node=[node], since_hub_seq=0)
    assert len(everything) == len(stored) + len(events)
    # Events and warnings share the instance's seq numbers: no gap, no repeat.
    seqs = sorted(m.seq for _, m in everything)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs

    with pytest.raises(grpc.RpcError) as bad:
        subscribe(stubs, hub, kind=["nofiles"])
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad.value.details().startswith('kind[0]: unknown kind "nofiles"'), bad.value.details()

    # Streamed live to the subscriber that was waiting.
    wait_for(lambda: len(live) >= len(printed), "the warnings on the live stream")
    streams[0].cancel()
    assert [i.warning.seq for i in live if i.HasField("warning")] == [w.seq for _, w in stored]

    # hub-client watch --kind.
    text = hub_client(hub_client_bin, hub, "watch", "--json", "--since-seq", "0",
                      "--no-follow", "--node", node, "--kind", "nofile").decode()
    watched = [json.loads(line) for line in text.splitlines()]
    assert [w["warning"]["seq"] for w in watched] == [w.seq for _, w in stored], watched
    assert watched[0]["warning"]["pid"] == pid and watched[0]["warning"]["kind"] == "nofile"

    # Counted, and alerted on.
    metrics = ready_fields(hub.log)["metrics"]
    counted = scrape(metrics)[("hub_warnings_total", frozenset({("node", node),
                                                                ("kind", "nofile")}))]
    assert counted == len(printed)
    alert = wait_for(lambda: [a for a in alertmanager.alerts("FdExhaustionAhead")
                              if a["labels"].get("node") == node], "the alert")[0]
    assert alert["labels"] == {"alertname": "FdExhaustionAhead", "severity": "warning",
                               "node": node, "kind": "nofile"}, alert
    assert alert["annotations"]["process"].startswith(f"last warning: pid {pid} (fd-ramp)")
