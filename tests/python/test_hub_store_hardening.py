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
