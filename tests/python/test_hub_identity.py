"""Who failed, in which pod and container, at the hub: identity-bearing events fed through
`hub-client replay`, served back, filtered and grouped through grpcio, grpcurl and the
hub-client CLI; and a database of the previous schema migrated on start."""

import json
import os
import pty
import select
import sqlite3
import subprocess
import time

import grpc
import pytest
from google.protobuf.json_format import MessageToDict

from test_grpcurl import grpcurl_run

ID_WEB1 = "a1" * 32
ID_WEB2 = "b2" * 32
ID_OPS = "c3" * 32
ID_PODMAN = "d4" * 32


def event(seq, pid, comm, container=None, pod=None, quota=None, cgroup_path=None):
    """One event in the tapper's JSON form."""
    return {
        "seq": seq, "ts": "2026-11-25T12:00:00.123456789Z", "pid": pid, "tid": pid,
        "ppid": 1, "uid": 0, "gid": 0, "comm": comm, "exe": f"/usr/bin/{comm}",
        "cmdline": comm, "cgroup_id": 4000 + seq, "family": 9999, "family_name": "9999",
        "type": 1, "type_name": "SOCK_STREAM", "protocol": 0, "protocol_name": None,
        "errno": 97, "errno_name": "EAFNOSUPPORT",
        "message": "Address family not supported by protocol", "duration_ns": 900,
        "probe": "tracepoint", "source": "syscall", "cgroup_path": cgroup_path,
        "container": container, "pod": pod, "quota": quota,
    }


def in_pod(seq, namespace, pod, name, cid, labels):
    return event(
        seq, 100 + seq, name,
        container={"id": cid, "runtime": "containerd", "name": name,
                   "image": f"registry.local/{name}:1.0"},
        pod={"uid": f"uid-{namespace}-{pod}", "namespace": namespace, "name": pod,
             "labels": labels},
        quota={"memory_max": 268435456, "memory_current": 1048576, "pids_max": 64,
               "pids_current": 3, "file_nr": None, "file_max": None},
        cgroup_path=f"/kubepods/besteffort/pod{namespace}-{pod}/{cid}",
    )


def fleet():
    """Events of three pods (two namespaces, a pod name in both), a podman container
    outside any pod, and a host process."""
    return [
        in_pod(1, "shop", "web-1", "nginx", ID_WEB1, {"app": "web", "tier": "front"}),
        in_pod(2, "shop", "web-1", "nginx", ID_WEB1, {"app": "web", "tier": "front"}),
        in_pod(3, "shop", "web-2", "nginx", ID_WEB2, {"app": "web"}),
        in_pod(4, "ops", "web-1", "agent", ID_OPS, {}),
        event(5, 205, "toolbox", container={"id": ID_PODMAN, "runtime": "podman",
                                            "name": "toolbox", "image": None},
              cgroup_path=f"/machine.slice/libpod-{ID_PODMAN}.scope/container"),
        event(6, 206, "cron"),
    ]


def feed(hub_client_bin, hub, node, events, tmp_path):
    lines = tmp_path / f"{node}.jsonl"
    lines.write_text("".join(json.dumps(e) + "\n" for e in events))
    out = subprocess.run(
        [str(hub_client_bin), "replay", "--hub", hub.url, "--node", node,
         "--file", str(lines)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["flushed"] and summary["sent"] == len(events), summary
    return summary


def identity(e):
    """The identity fields of an event (proto message or JSON form), as JSON values."""
    d = e if isinstance(e, dict) else MessageToDict(e, preserving_proto_field_name=True)
    keep = ("source", "cgroup_path", "container", "pod", "quota")
    out = {k: d.get(k) for k in keep}
    # The JSON form writes absent sub-fields as null; the proto's dict leaves them out.
    for k in ("container", "pod", "quota"):
        if out[k] is not None:
            out[k] = {f: v for f, v in out[k].items() if v not in (None, {})}
            for f in ("memory_max", "memory_current", "pids_max", "pids_current"):
                if f in out[k]:
                    out[k][f] = int(out[k][f])
    return out


def subscribe(stub, hub_pb2, **filters):
    req = hub_pb2.SubscribeRequest(since_hub_seq=0, follow=False, **filters)
    return [i.event for i in stub.Subscribe(req, timeout=30) if i.WhichOneof("item") == "event"]


def test_identity_is_served_back_exactly_and_filters_replay_and_live(
        hub, hub_client_bin, stubs, tmp_path):
    hub_pb2, hub_pb2_grpc, _ = stubs
    sent = fleet()
    feed(hub_client_bin, hub, "node-a", sent, tmp_path)
    with grpc.insecure_channel(hub.addr) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        got = subscribe(stub, hub_pb2)
        assert [e.seq for e in got] == [1, 2, 3, 4, 5, 6]
        for want, e in zip(sent, got):
            assert identity(e) == identity(want), e.seq
        assert dict(got[0].pod.labels) == {"app": "web", "tier": "front"}
        assert not got[5].HasField("pod") and not got[5].HasField("container")

        cases = [
            ({"namespace": ["shop"]}, [1, 2, 3]),
            ({"namespace": ["ops", "nowhere"]}, [4]),
            ({"pod": "web-*"}, [1, 2, 3, 4]),
            ({"pod": "web-[2-9]"}, [3]),
            ({"namespace": ["ops"], "pod": "web-1"}, [4]),
            ({"container": ["nginx"]}, [1, 2, 3]),
            ({"container": ["toolbox", "agent"]}, [4, 5]),
            ({"container_id": [ID_OPS]}, [4]),
            ({"container_id": [ID_PODMAN[:12], ID_WEB2[:4]]}, [3, 5]),
            ({"container": ["nginx"], "pod": "web-1"}, [1, 2]),
        ]
        for filters, seqs in cases:
            assert [e.seq for e in subscribe(stub, hub_pb2, **filters)] == seqs, filters

        # Live: a following subscriber sees only the new events of its pods.
        live = stub.Subscribe(hub_pb2.SubscribeRequest(
            since_hub_seq=got[-1].hub_seq + 1, follow=True, namespace=["shop"],
            pod="web-2"), timeout=60)
        more = [in_pod(7, "shop", "web-2", "nginx", ID_WEB2, {}),
                in_pod(8, "shop", "web-1", "nginx", ID_WEB1, {}),
                in_pod(9, "shop", "web-2", "sidecar", "e5" * 32, {})]
        feed(hub_client_bin, hub, "node-b", more, tmp_path)
        seen = []
        for item in live:
            seen.append((item.event.node, item.event.seq, item.event.container.name))
            if len(seen) == 2:
                break
        live.cancel()
        assert seen == [("node-b", 1, "nginx"), ("node-b", 3, "sidecar")]

        for filters, field in [({"container_id": ["ab1"]}, "container_id[0]"),
                               ({"pod": "web-["}, "pod"),
                               ({"namespace": ["x"] * 1025}, "namespace")]:
            with pytest.raises(grpc.RpcError) as err:
                subscribe(stub, hub_pb2, **filters)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, filters
            assert err.value.details().startswith(field + ":"), err.value.details()


def test_stats_group_by_namespace_pod_and_container_through_grpcurl(
        grpcurl, hub, hub_client_bin, tmp_path):
    feed(hub_client_bin, hub, "node-a", fleet(), tmp_path)

    def rows(*group_by):
        out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/GetStats",
                          data={"group_by": list(group_by)})
        assert out.returncode == 0, out.stderr
        r = json.loads(out.stdout)
        assert r["totalEvents"] == "6"
        return [(row.get("namespace"), row.get("pod"), row.get("container"),
                 row.get("containerId"), int(row["count"])) for row in r["rows"]]

    assert rows("GROUP_BY_NAMESPACE") == [
        ("shop", None, None, None, 3), (None, None, None, None, 2),
        ("ops", None, None, None, 1)]
    assert rows("GROUP_BY_POD") == [
        (None, None, None, None, 2), ("shop", "web-1", None, None, 2),
        ("ops", "web-1", None, None, 1), ("shop", "web-2", None, None, 1)]
    assert rows("GROUP_BY_NAMESPACE", "GROUP_BY_CONTAINER") == [
        ("shop", None, "nginx", ID_WEB1, 2), (None, None, None, None, 1),
        (None, None, "toolbox", ID_PODMAN, 1), ("ops", None, "agent", ID_OPS, 1),
        ("shop", None, "nginx", ID_WEB2, 1)]
    # Unknown group keys are still refused, by position.
    out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/GetStats", data={"group_by": [6, 42]})
    assert out.returncode != 0 and "group_by[1]" in out.stderr, out.stderr


def run_in_pty(cmd, timeout=30):
    """Runs `cmd` with its stdout on a terminal (so hub-client prints its table); returns
    the exit code and what it printed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    proc.wait(timeout=10)
    return proc.returncode, b"".join(chunks).decode().replace("\r\n", "\n")


def test_hub_client_watch_shows_pod_container_and_filters(
        hub, hub_client_bin, tmp_path):
    feed(hub_client_bin, hub, "node-a", fleet(), tmp_path)
    code, text = run_in_pty([str(hub_client_bin), "--hub", hub.url, "watch", "--since-seq",
                             "0", "--no-follow"])
    assert code == 0, text
    header, *lines = [l for l in text.splitlines() if l.strip()]
    assert "POD/CONTAINER" in header.split()
    column = header.index("POD/CONTAINER")
    cells = [l[column:].split()[0] for l in lines]
    # namespace/pod/container, cut in its middle to the column's 13 characters,
    # keeping what tells pods apart.
    assert cells == ["shop…-1/nginx", "shop…-1/nginx", "shop…-2/nginx",
                     "ops/…-1/agent", "toolbox", "-"], text
    assert all(len(l) <= 120 for l in lines), text

    out = subprocess.run(
        [str(hub_client_bin), "--hub", hub.url, "watch", "--since-seq", "0", "--no-follow",
         "--json", "--namespace", "shop", "--pod", "web-*", "--container", "nginx",
         "--container-id", ID_WEB2[:12]],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    got = [json.loads(l) for l in out.stdout.splitlines()]
    assert [(e["seq"], e["pod"]["name"], e["container"]["id"]) for e in got] == [
        (3, "web-2", ID_WEB2)]

    out = subprocess.run(
        [str(hub_client_bin), "--hub", hub.url, "stats", "--group-by", "pod,container"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    table = out.stdout.splitlines()
    assert table[0].split() == ["POD", "CONTAINER", "EVENTS"]
    assert table[1].split() == ["shop/web-1", "nginx", f"({ID_WEB1[:12]})", "2"]
    assert ["ops/web-1", "agent", f"({ID_OPS[:12]})", "1"] in [l.split() for l in table]

    out = subprocess.run(
        [str(hub_client_bin), "--hub", hub.url, "watch", "--container-id", "ab"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "container_id[0]" in out.stderr, out.stderr


def test_a_database_of_the_previous_schema_migrates_on_start(
        hub_factory, replay_to, hub_client_bin, stubs, tmp_path):
    hub_pb2, hub_pb2_grpc, _ = stubs
    db = tmp_path / "hub.db"
    old = hub_factory("--db", str(db))
    replay_to(old, "old-node", 5)
    old.proc.terminate()
    assert old.proc.wait(timeout=10) == 0
    # Take the database back to schema version 3: the columns versions 4 and 5 added go,
    # and so do version 5's tables.
    conn = sqlite3.connect(db)
    newer = [r[1] for r in conn.execute("PRAGMA table_info(events)")][14:]
    assert newer[:2] == ["source", "cgroup_path"] and "pod_namespace" in newer, newer
    for column in newer:
        conn.execute(f"ALTER TABLE events DROP COLUMN {column}")
    conn.execute("DROP TABLE stacks")
    conn.execute("DROP TABLE warnings")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()

    hub = hub_factory("--db", str(db))
    log = hub.log.read_text()
    assert "database schema migrated" in log and "from=3" in log and "to=5" in log, log
    feed(hub_client_bin, hub, "new-node", fleet()[:2], tmp_path)
    with grpc.insecure_channel(hub.addr) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        got = subscribe(stub, hub_pb2)
        assert [(e.node, e.seq) for e in got] == [("old-node", s) for s in range(1, 6)] + [
            ("new-node", 1), ("new-node", 2)]
        assert not any(e.HasField("pod") for e in got[:5])
        assert [e.seq for e in subscribe(stub, hub_pb2, namespace=["shop"])] == [1, 2]
        stats = stub.GetStats(hub_pb2.GetStatsRequest(group_by=[hub_pb2.GROUP_BY_POD]))
        assert [(r.namespace, r.pod, r.count) for r in stats.rows] == [
            ("", "", 5), ("shop", "web-1", 2)]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    conn.close()
