"""The hub's store and its RPCs under hostile input: oversized filters, bad loss records,
hijacked instances, unreadable rows, expensive queries (real hub, grpcio, hub-client;
loopback only, every loop bounded)."""

import grpc
import pytest


def test_huge_node_filters_get_a_short_invalid_argument(hub_factory, replay_to, stubs):
    hub_pb2, hub_pb2_grpc, _ = stubs
    hub = hub_factory()
    replay_to(hub, "a", 3)
    nodes = [f"node-{i}" for i in range(40_000)]
    with grpc.insecure_channel(hub.addr) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        for call, req in [(stub.GetStats, hub_pb2.GetStatsRequest(node=nodes)),
                          (stub.ListTappers, hub_pb2.ListTappersRequest(node=nodes))]:
            with pytest.raises(grpc.RpcError) as err:
                call(req, timeout=30)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
            details = err.value.details()
            assert details.startswith("node: 40000 values exceed the limit"), details
            assert len(details) <= 512 and "SELECT" not in details
        # The hub still answers.
        assert stub.GetStats(hub_pb2.GetStatsRequest(), timeout=30).total_events == 3


def report_stream(stub, hub_pb2, event_pb2, node, instance, messages):
    """Sends a Hello then `messages` on one Report stream; returns (acks, error or None)."""
    from google.protobuf.timestamp_pb2 import Timestamp

    def requests():
        yield hub_pb2.ReportRequest(hello=hub_pb2.Hello(node=node, instance_id=instance))
        for m in messages:
            if isinstance(m, range):
                events = [event_pb2.Event(seq=s, errno=24, errno_name="EMFILE", comm="t",
                                          ts=Timestamp(seconds=1)) for s in m]
                yield hub_pb2.ReportRequest(events=hub_pb2.EventBatch(events=events))
            else:
                yield hub_pb2.ReportRequest(loss=m)

    acks = []
    try:
        for resp in stub.Report(requests(), timeout=30):
            acks.append(resp.ack.acked_seq)
    except grpc.RpcError as err:
        return acks, err
    return acks, None


def test_loss_records_cannot_corrupt_accounting(hub_factory, stubs):
    hub_pb2, hub_pb2_grpc, event_pb2 = stubs
    hub = hub_factory()
    with grpc.insecure_channel(hub.addr) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        # Events 1-3, then a loss 2-4 over them: refused, and nothing of it is stored.
        acks, err = report_stream(stub, hub_pb2, event_pb2, "a", "i1", [
            range(1, 4), hub_pb2.Loss(count=3, reason="r", first_seq=2, last_seq=4)])
        assert acks == [0, 3] and err.code() == grpc.StatusCode.INVALID_ARGUMENT, (acks, err)
        assert "overlaps" in err.details()
        stats = stub.GetStats(hub_pb2.GetStatsRequest(), timeout=30)
        assert (stats.total_events, stats.total_lost) == (3, 0)
        # A range whose count is not its length, and a count beyond 2^63-1, are refused.
        for bad in [hub_pb2.Loss(count=9, reason="r", first_seq=4, last_seq=5),
                    hub_pb2.Loss(count=2**64 - 1, reason="r", first_seq=4, last_seq=4)]:
            _, err = report_stream(stub, hub_pb2, event_pb2, "a", "i1", [bad])
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
            assert err.details().startswith("loss.count"), err.details()
        # Two (or three) huge kernel losses: totals saturate, GetStats keeps working.
        huge = [hub_pb2.Loss(count=2**63 - 1, reason="kernel", first_seq=s, last_seq=s)
                for s in (4, 5, 6)]
        acks, err = report_stream(stub, hub_pb2, event_pb2, "a", "i1", huge)
        assert err is None and acks == [3, 4, 5, 6], (acks, err)
        stats = stub.GetStats(hub_pb2.GetStatsRequest(group_by=[hub_pb2.GROUP_BY_NODE]),
                              timeout=30)
        assert (stats.total_events, stats.total_lost) == (3, 2**64 - 1)
        [t] = stub.ListTappers(hub_pb2.ListTappersRequest(), timeout=30).tappers
        assert (t.acked_seq, t.loss_records, t.losses_reported) == (6, 3, 2**63 - 1)


def test_a_second_hello_cannot_take_over_a_live_instance(hub_factory, hub_client_bin, stubs):
    import subprocess
    import time

    hub_pb2, hub_pb2_grpc, event_pb2 = stubs
    hub = hub_factory()
    reporter = subprocess.Popen(
        [str(hub_client_bin), "replay", "--hub", hub.url, "--node", "victim",
         "--instance", "inst-1", "--synthetic", "5", "--hold"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with grpc.insecure_channel(hub.addr) as ch:
            stub = hub_pb2_grpc.HubStub(ch)

            def victim():
                ts = stub.ListTappers(hub_pb2.ListTappersRequest(), timeout=30).tappers
                return next((t for t in ts if t.node == "victim"), None)

            deadline = time.monotonic() + 30
            while not (victim() and victim().connected and victim().acked_seq == 5):
                assert reporter.poll() is None and time.monotonic() < deadline, "no reporter"
                time.sleep(0.05)
            # The hijack: same node and instance, a loss over everything the victim sends next.
            acks, err = report_stream(stub, hub_pb2, event_pb2, "victim", "inst-1", [
                hub_pb2.Loss(count=2**63 - 6, reason="x", first_seq=6, last_seq=2**63 - 1)])
            assert acks == [] and err.code() == grpc.StatusCode.FAILED_PRECONDITION, (acks, err)
            assert "live Report stream" in err.details()
            t = victim()
            assert (t.connected, t.acked_seq, t.loss_records) == (True, 5, 0)
            assert reporter.poll() is None, "the real reporter lost its stream"
    finally:
        reporter.kill()
        reporter.wait()


def test_an_unreadable_row_is_skipped_with_a_loss_notice(hub_factory, replay_to, stubs,
                                                         tmp_path):
    import sqlite3

    hub_pb2, hub_pb2_grpc, _ = stubs
    db = tmp_path / "hub.db"
    hub = hub_factory("--db", str(db))
    replay_to(hub, "a", 3)
    hub.proc.terminate()
    assert hub.proc.wait(timeout=10) == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("UPDATE events SET body = x'ffffffff' WHERE hub_seq = 2").rowcount == 1
    hub = hub_factory("--db", str(db))
    with grpc.insecure_channel(hub.addr) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        for _ in range(2):
            items = list(stub.Subscribe(hub_pb2.SubscribeRequest(since_hub_seq=0), timeout=30))
            kinds = [i.WhichOneof("item") for i in items]
            assert kinds == ["event", "loss", "event"], items
            notice = items[1].loss
            assert (notice.hub_seq, notice.node, notice.loss.reason, notice.loss.count,
                    notice.loss.first_seq, notice.loss.last_seq) == (
                        2, "a", "stored record unreadable", 1, 2, 2)
            assert [items[0].event.seq, items[2].event.seq] == [1, 3]
    log = hub.log.read_text(errors="replace")
    assert log.count("stored event does not decode") == 1, log


def test_per_instance_state_is_bounded(hub_factory, hub_client_bin, stubs):
    import subprocess
    import time

    hub_pb2, hub_pb2_grpc, event_pb2 = stubs
    hub = hub_factory("--instance-expiry", "2s", "--retention-interval", "1s")
    with grpc.insecure_channel(hub.addr) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        # Counters keyed by anything but an errno are refused.
        def counters(per_errno):
            return hub_pb2.ReportRequest(counters=hub_pb2.Counters(per_errno=per_errno))

        for bad, key in [({"EMFILE": 1, "x" * 20: 1}, "counters.per_errno["),
                         ({str(i): 1 for i in range(1, 5000)}, "counters.per_errno: 4999")]:
            def requests():
                yield hub_pb2.ReportRequest(hello=hub_pb2.Hello(node="c", instance_id="c1"))
                yield counters(bad)
            with pytest.raises(grpc.RpcError) as err:
                list(stub.Report(requests(), timeout=30))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
            assert err.value.details().startswith(key), err.value.details()

        # 250 instances come back in pages, each one complete and in order.
        for i in range(250):
            acks, err = report_stream(stub, hub_pb2, event_pb2, f"n{i:03}", "i", [])
            assert err is None and acks == [0]
        live = subprocess.Popen(
            [str(hub_client_bin), "replay", "--hub", hub.url, "--node", "zz-live",
             "--synthetic", "1", "--hold"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def listing(**req):
                seen, token, pages = [], "", 0
                while True:
                    r = stub.ListTappers(hub_pb2.ListTappersRequest(page_token=token, **req),
                                         timeout=30)
                    assert len(r.tappers) <= (req.get("page_size") or 100)
                    seen += [t.node for t in r.tappers]
                    pages += 1
                    token = r.next_page_token
                    if not token:
                        return seen, pages

            deadline = time.monotonic() + 30
            while "zz-live" not in listing(connected_only=True)[0]:
                assert time.monotonic() < deadline and live.poll() is None
                time.sleep(0.05)
            nodes, pages = listing(page_size=100)
            assert pages == 3 and nodes == sorted(nodes) and len(set(nodes)) == len(nodes)
            assert {f"n{i:03}" for i in range(250)} <= set(nodes), nodes
            assert listing(connected_only=True, page_size=7) == (["zz-live"], 1)
            with pytest.raises(grpc.RpcError) as err:
                stub.ListTappers(hub_pb2.ListTappersRequest(page_size=1001), timeout=30)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            with pytest.raises(grpc.RpcError) as err:
                stub.ListTappers(hub_pb2.ListTappersRequest(page_token="nope"), timeout=30)
            assert err.value.details().startswith("page_token:")

            # Idle instances expire; the one with a live stream stays.
            deadline = time.monotonic() + 30
            while listing()[0] != ["zz-live"]:
                assert time.monotonic() < deadline, listing()[0][:5]
                time.sleep(0.2)
            assert live.poll() is None
        finally:
            live.kill()
            live.wait()
