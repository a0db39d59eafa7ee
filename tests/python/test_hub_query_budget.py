"""Reader queries are budgeted and never hold up ingest: GetStats over its row budget or
past its deadline is a short RESOURCE_EXHAUSTED naming the flag, and a reporter keeps being
acked while clients loop the most expensive GetStats (real hub, grpcio, hub-client
replay; loopback only, every loop bounded)."""

import json
import subprocess
import threading

import grpc
import pytest

ALL_KEYS = [1, 2, 3, 4, 5]  # node, errno, family, comm, cgroup


def stats(stub, hub_pb2, **request):
    return stub.GetStats(hub_pb2.GetStatsRequest(**request), timeout=60)


def assert_over_budget(err, flag):
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
    assert flag in err.details(), err.details()
    assert "SELECT" not in err.details() and len(err.details()) < 300, err.details()


def test_getstats_over_the_row_budget_is_resource_exhausted(hub_factory, replay_to, stubs):
    hub_pb2, hub_pb2_grpc, _ = stubs
    hub = hub_factory("--query-max-rows", "50")
    replay_to(hub, "n", 100)
    with grpc.insecure_channel(hub.addr) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        with pytest.raises(grpc.RpcError) as over:
            stats(stub, hub_pb2, group_by=[hub_pb2.GROUP_BY_COMM])
        assert_over_budget(over.value, "--query-max-rows")
        assert "narrow the window" in over.value.details()
        # Node and errno come from the rollups: no scan, no budget.
        r = stats(stub, hub_pb2, group_by=[hub_pb2.GROUP_BY_NODE, hub_pb2.GROUP_BY_ERRNO])
        assert r.total_events == 100 and sum(row.count for row in r.rows) == 100


def test_getstats_past_its_deadline_is_resource_exhausted(hub_factory, replay_to, stubs):
    hub_pb2, hub_pb2_grpc, _ = stubs
    hub = hub_factory("--query-timeout", "1ns")
    replay_to(hub, "n", 2000)
    with grpc.insecure_channel(hub.addr) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        with pytest.raises(grpc.RpcError) as over:
            stats(stub, hub_pb2, group_by=ALL_KEYS)
        assert_over_budget(over.value, "--query-timeout")


def test_getstats_load_does_not_stall_a_reporter(hub_factory, replay_to, stubs,
                                                  hub_client_bin, tmp_path):
    hub_pb2, hub_pb2_grpc, _ = stubs
    hub = hub_factory("--db", str(tmp_path / "hub.db"))
    # About 200k stored events (a buffer big enough that the reporter drops none).
    stored = replay_to(hub, "bulk", 200_000, "--buffer", "200000")
    assert stored["dropped"] == 0, stored

    n = 20_000
    started = threading.Barrier(5)
    done = threading.Event()
    outcomes = []  # per call: "ok" or the over-budget flag
    errors = []

    def client():
        try:
            with grpc.insecure_channel(hub.addr) as ch:
                stub = hub_pb2_grpc.HubStub(ch)
                for i in range(500):  # bounded; stops once the reporter is done
                    try:
                        r = stats(stub, hub_pb2, group_by=ALL_KEYS)
                        assert r.total_events >= 200_000, r.total_events
                        outcomes.append("ok")
                    except grpc.RpcError as err:
                        flag = ("--query-timeout" if "--query-timeout" in err.details()
                                else "--query-max-rows")
                        assert_over_budget(err, flag)
                        outcomes.append(flag)
                    if i == 0:
                        started.wait(timeout=120)
                    if done.is_set():
                        break
        except BaseException as err:  # reported by the test thread
            errors.append(err)
            started.abort()

    clients = [threading.Thread(target=client) for _ in range(4)]
    for t in clients:
        t.start()
    try:
        # The reporter starts once every client has finished a first GetStats.
        started.wait(timeout=120)
        out = subprocess.run(
            [str(hub_client_bin), "replay", "--hub", hub.url, "--node", "reporter",
             "--synthetic", str(n), "--flush-timeout", "240"],
            capture_output=True, text=True, timeout=300,
        )
    finally:
        done.set()
        for t in clients:
            t.join(timeout=300)
    assert not any(t.is_alive() for t in clients), "a GetStats client never finished"
    assert not errors, errors
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["flushed"] and summary["sent"] == n, summary
    assert (summary["acked_seq"], summary["dropped"]) == (n, 0), summary
    assert len(outcomes) >= 8, outcomes

    with grpc.insecure_channel(hub.addr) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        r = stats(stub, hub_pb2, node=["reporter"])
        assert (r.total_events, r.total_lost) == (n, 0)
        r = stats(stub, hub_pb2, group_by=[hub_pb2.GROUP_BY_NODE])
        assert dict(r.per_node) == {"bulk": 200_000, "reporter": n}
