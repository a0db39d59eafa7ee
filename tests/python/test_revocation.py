"""Revocation reaches live streams: a token taken out of the tokens file ends the Subscribe
and Report streams that use it with UNAUTHENTICATED, while streams whose token stays go on;
after a client-CA rotation the old certificate's live stream ends, and a new call on its
old connection is refused. Real hub, grpcio clients, certificates from pki.py."""

import os
import queue
import shutil
import threading
import time

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tapperkit import pki
from test_tls import ADMIN, READ, REPORT, bearer, channel, report_once, wait_for_log


def event(event_pb2, seq):
    return event_pb2.Event(seq=seq, ts=Timestamp(seconds=int(time.time())), pid=1, comm="t",
                           errno=24, errno_name="EMFILE")


class LiveReport:
    """A Report stream that stays open: messages go out when `send` is called, acks are
    collected by a reader thread; `ended` holds the final RpcError, if any."""

    def __init__(self, stubs, ch, node, token):
        hub_pb2, hub_pb2_grpc, self.event_pb2 = stubs
        self.hub_pb2 = hub_pb2
        self.outbox = queue.Queue()
        self.acks = queue.Queue()
        self.ended = None
        self.done = threading.Event()
        self.outbox.put(hub_pb2.ReportRequest(hello=hub_pb2.Hello(node=node,
                                                                  instance_id=f"i-{node}")))
        md = bearer(token) if token else None
        self.call = hub_pb2_grpc.HubStub(ch).Report(iter(self.outbox.get, None), metadata=md,
                                                     timeout=60)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for reply in self.call:
                self.acks.put(reply.ack.acked_seq)
        except grpc.RpcError as err:
            self.ended = err
        self.done.set()

    def send_event(self, seq):
        self.outbox.put(self.hub_pb2.ReportRequest(
            events=self.hub_pb2.EventBatch(events=[event(self.event_pb2, seq)])))

    def wait_ack(self, seq):
        while (got := self.acks.get(timeout=20)) < seq:
            pass
        assert got == seq

    def wait_end(self):
        """The status the stream ended with (the call's 60 s deadline bounds the wait)."""
        assert self.done.wait(90), "the Report stream never ended"
        self.outbox.put(None)
        assert self.ended is not None, "the Report stream ended without an error"
        return self.ended


def rewrite(path, text):
    tmp = path.with_suffix(".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_a_revoked_token_ends_its_live_streams_and_only_those(hub_factory, tmp_path, stubs):
    hub_pb2, hub_pb2_grpc, _ = stubs
    tokens = tmp_path / "tokens"
    tokens.write_text(f"report {REPORT}\nread {READ}\nadmin {ADMIN}\n")
    hub = hub_factory("--tokens", str(tokens), "--reload-interval", "100ms")
    with grpc.insecure_channel(hub.addr) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        follow = hub_pb2.SubscribeRequest(follow=True)
        read_sub = stub.Subscribe(follow, metadata=bearer(READ), timeout=60)
        admin_sub = stub.Subscribe(follow, metadata=bearer(ADMIN), timeout=60)
        reporter = LiveReport(stubs, ch, "node-r", REPORT)
        reporter.wait_ack(0)
        reporter.send_event(1)
        reporter.wait_ack(1)
        assert next(read_sub).event.node == "node-r"
        assert next(admin_sub).event.node == "node-r"

        rewrite(tokens, f"admin {ADMIN}\n")
        wait_for_log(hub, "tokens reloaded")
        with pytest.raises(grpc.RpcError) as ended:
            next(read_sub)
        assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED, ended.value
        assert "unknown token" in ended.value.details()
        assert reporter.wait_end().code() == grpc.StatusCode.UNAUTHENTICATED

        # The admin's stream goes on, and sees what comes next.
        assert report_once(stubs, ch, "node-after", ADMIN) == [0, 1]
        assert next(admin_sub).event.node == "node-after"
        admin_sub.cancel()
        listed = stub.ListTappers(hub_pb2.ListTappersRequest(), metadata=bearer(ADMIN),
                                  timeout=10)
        assert {t.node: t.events_received for t in listed.tappers} == {"node-r": 1,
                                                                       "node-after": 1}


@pytest.fixture
def rotation_certs(tmp_path):
    """The hub's CA (server and node-a) and a second CA with its own node-a, and the client
    CA file the hub reads (first the hub's CA)."""
    (tmp_path / "pki").mkdir()
    certs = pki.make(tmp_path / "pki")
    client_ca = tmp_path / "client-ca.pem"
    shutil.copy(certs["ca"], client_ca)
    return certs, client_ca


def test_a_client_ca_rotation_ends_old_certificates_streams_and_calls(hub_factory, stubs,
                                                                     rotation_certs):
    certs, client_ca = rotation_certs
    hub = hub_factory("--tls-cert", str(certs["server"]),
                      "--tls-key", str(pki.key_of(certs["server"])),
                      "--tls-client-ca", str(client_ca), "--reload-interval", "100ms")
    with channel(certs, hub.addr, client="node_a") as old:
        reporter = LiveReport(stubs, old, "node-a", None)
        reporter.wait_ack(0)
        reporter.send_event(1)
        reporter.wait_ack(1)

        rewrite(client_ca, certs["other_ca"].read_text())
        wait_for_log(hub, "TLS certificate reloaded")
        ended = reporter.wait_end()
        assert ended.code() == grpc.StatusCode.UNAUTHENTICATED, ended
        assert "not trusted by the hub's client CA in force" in ended.details()
        # A new Report on the old connection (a new connection would fail its handshake).
        with pytest.raises(grpc.RpcError) as refused:
            report_once(stubs, old, "node-a", None, seq=2)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, refused.value
    with channel(certs, hub.addr, client="node_a") as new:
        with pytest.raises(grpc.RpcError) as handshake:
            report_once(stubs, new, "node-a", None, seq=2)
        assert handshake.value.code() == grpc.StatusCode.UNAVAILABLE, handshake.value
    # The new CA's certificate is served, and nothing of the refused calls was stored.
    with channel(certs, hub.addr, client="untrusted") as rotated:
        assert report_once(stubs, rotated, "node-a", None, seq=2) == [1, 2]
