"""An independent Python grpcio client (stubs generated at test time) against the hub."""

import grpc
import pytest


def test_subscribe_counts_and_fields(hub, replay, stubs):
    hub_pb2, hub_pb2_grpc, _ = stubs
    a = replay("py-a", 40)
    replay("py-b", 9)
    replay("py-c", 1, "--kernel-drops", "4")
    with grpc.insecure_channel(hub.addr) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        req = hub_pb2.SubscribeRequest(since_hub_seq=0, follow=False, errno=["EMFILE", "22"])
        items = list(stub.Subscribe(req, timeout=30))
        events = [i.event for i in items if i.WhichOneof("item") == "event"]
        losses = [i.loss for i in items if i.WhichOneof("item") == "loss"]
        by_node = {}
        for e in events:
            by_node.setdefault(e.node, []).append(e)
        # EMFILE and EINVAL are 2 of the 4 errnos the generator cycles through.
        assert {n: len(v) for n, v in by_node.items()} == {"py-a": 20, "py-b": 5, "py-c": 1}
        assert {e.errno_name for e in events} == {"EMFILE", "EINVAL"}
        e = by_node["py-a"][0]
        assert (e.seq, e.errno, e.errno_name, e.message) == (1, 24, "EMFILE", "Too many open files")
        assert e.instance_id == a["instance_id"]
        assert e.HasField("family") and e.family == 2 and e.family_name == "AF_INET"
        assert e.type == 1 and e.type_name == "SOCK_STREAM"
        assert e.comm == "synthetic" and e.probe == "tracepoint" and e.cgroup_id == 4242
        assert e.ts.seconds > 0 and e.hub_seq > 0
        hub_seqs = [i.event.hub_seq if i.WhichOneof("item") == "event" else i.loss.hub_seq
                    for i in items]
        assert hub_seqs == sorted(hub_seqs) and len(set(hub_seqs)) == len(hub_seqs)
        assert [(l.node, l.loss.count, l.loss.reason) for l in losses] == [
            ("py-c", 4, "kernel ring buffer full")]

        stats = stub.GetStats(hub_pb2.GetStatsRequest(group_by=[hub_pb2.GROUP_BY_NODE]))
        assert dict(stats.per_node) == {"py-a": 40, "py-b": 9, "py-c": 1}
        assert stats.total_events == 50 and stats.total_lost == 4
        assert sorted((r.node, r.count) for r in stats.rows) == [("py-a", 40), ("py-b", 9), ("py-c", 1)]

        tappers = stub.ListTappers(hub_pb2.ListTappersRequest()).tappers
        assert sorted(t.node for t in tappers) == ["py-a", "py-b", "py-c"]
        assert {t.node: t.events_received for t in tappers} == {"py-a": 40, "py-b": 9, "py-c": 1}


def test_invalid_arguments_name_the_field(hub, stubs):
    hub_pb2, hub_pb2_grpc, _ = stubs
    with grpc.insecure_channel(hub.addr) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        cases = [
            (lambda: list(stub.Subscribe(hub_pb2.SubscribeRequest(errno=["EWHAT"]), timeout=10)), "errno[0]"),
            (lambda: list(stub.Subscribe(hub_pb2.SubscribeRequest(comm="[a-"), timeout=10)), "comm"),
            (lambda: stub.GetStats(hub_pb2.GetStatsRequest(last_seconds=-1)), "last_seconds"),
        ]
        for call, field in cases:
            with pytest.raises(grpc.RpcError) as err:
                call()
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details().startswith(field + ":"), err.value.details()

        # Malformed protobuf bytes on the wire.
        raw = ch.unary_unary("/tapper.v1.Hub/GetStats",
                             request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as err:
            raw(b"\xff\xff\xff\xff", timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "GetStatsRequest: malformed" in err.value.details()

        with pytest.raises(grpc.RpcError) as err:
            stub.GetStats(hub_pb2.GetStatsRequest(node=["nobody"]))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

        # Still serving.
        assert stub.GetStats(hub_pb2.GetStatsRequest()).total_events == 0


def test_reflection_v1_is_served_too(hub):
    from grpc_reflection.v1alpha import reflection_pb2
    # v1 and v1alpha share their messages; only the service name differs.
    with grpc.insecure_channel(hub.addr) as ch:
        for svc in ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"):
            call = ch.stream_stream(f"/{svc}/ServerReflectionInfo",
                                    request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                    response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
            resp = list(call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
            names = {s.name for s in resp[0].list_services_response.service}
            assert "tapper.v1.Hub" in names, (svc, names)
