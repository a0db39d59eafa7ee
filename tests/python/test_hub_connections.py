"""Clients without a token cannot hold the hub's connection slots: one peer address gets at
most `--max-connections-per-peer` connections, and a connection that makes no authorized
call within `--auth-timeout` of its handshake is closed, even one that speaks HTTP/2 and
answers every ping. Meanwhile a reporter with a valid token (from another loopback address)
is served. The attacker is raw sockets bound to 127.0.0.x; the reporter is the tapper's own
(`hub-client replay`), the reader grpcio."""

import socket
import threading

import grpc
import pytest

from test_hub_hardening import wait_until
from test_tls import READ, REPORT, bearer

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, SETTINGS_ACK = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]), bytes([0, 0, 0, 4, 1, 0, 0, 0, 0])
PING = 6


class IdleHttp2:
    """A raw HTTP/2 connection from `source` that never calls: the preface and SETTINGS,
    then it only acknowledges the hub's SETTINGS, answers its PINGs and sends PINGs of its
    own (traffic that must not keep it open), until the hub closes it (`closed` is set)."""

    PING_EVERY = 0.2

    def __init__(self, addr, source):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10,
                                             source_address=(source, 0))
        self.sock.settimeout(None)
        self.closed = threading.Event()
        try:
            self.sock.sendall(PREFACE + SETTINGS)
        except OSError:
            self.closed.set()
            return
        threading.Thread(target=self._answer, daemon=True).start()
        threading.Thread(target=self._ping, daemon=True).start()

    def _ping(self):
        while not self.closed.wait(self.PING_EVERY):
            try:
                self.sock.sendall(bytes([0, 0, 8, PING, 0, 0, 0, 0, 0]) + b"attacker")
            except OSError:
                return

    def _answer(self):
        buf = b""
        try:
            while chunk := self.sock.recv(65536):
                buf += chunk
                while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                    length, kind, flags = int.from_bytes(buf[:3], "big"), buf[3], buf[4]
                    payload, buf = buf[9:9 + length], buf[9 + length:]
                    if kind == 4 and not flags & 1:
                        self.sock.sendall(SETTINGS_ACK)
                    elif kind == PING and not flags & 1:
                        self.sock.sendall(bytes([0, 0, 8, PING, 1, 0, 0, 0, 0]) + payload)
        except OSError:
            pass
        self.closed.set()

    def close(self):
        self.sock.close()


@pytest.fixture
def attackers():
    opened = []

    def open_many(addr, source, n):
        conns = [IdleHttp2(addr, source) for _ in range(n)]
        opened.extend(conns)
        return conns

    yield open_many
    for c in opened:
        c.close()


@pytest.fixture
def token_files(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"report {REPORT}\nread {READ}\n")
    report = tmp_path / "report.token"
    report.write_text(REPORT + "\n")
    return tokens, report


def established_from(hub_addr, client_ip):
    """The client ports of the hub's established connections from `client_ip` (the hub's
    side of them, from /proc/net/tcp)."""
    port = int(hub_addr.rsplit(":", 1)[1])
    ip_hex = socket.inet_aton(client_ip)[::-1].hex().upper()
    ports = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        remote_ip, remote_port = remote.split(":")
        if state == "01" and int(local.split(":")[1], 16) == port and remote_ip == ip_hex:
            ports.add(int(remote_port, 16))
    return ports


def test_one_peer_address_gets_a_bounded_share_and_a_tapper_is_served(
        hub_factory, attackers, token_files, replay_to):
    tokens, report = token_files
    hub = hub_factory("--tokens", str(tokens), "--max-connections", "40",
                      "--max-connections-per-peer", "8", "--auth-timeout", "60s")
    flood = attackers(hub.addr, "127.0.0.2", 100)
    # The hub closes all but 8 at once; those 8 wait for their (long) auth timeout.
    wait_until("the surplus connections to be closed",
               lambda: sum(c.closed.is_set() for c in flood) >= 92)
    assert sum(not c.closed.is_set() for c in flood) == 8
    assert "connection limit of one peer address reached" in hub.log.read_text()
    # The tapper's reporter with a valid token, from 127.0.0.1: served as usual.
    summary = replay_to(hub, "node-ok", 50, "--token-file", str(report))
    assert summary["acked_seq"] == 50, summary
    assert sum(not c.closed.is_set() for c in flood) == 8


@pytest.mark.parametrize("with_tokens", [True, False], ids=["tokens", "no-tokens"])
def test_connections_without_an_authorized_call_are_closed(
        hub_factory, attackers, token_files, replay_to, stubs, with_tokens):
    hub_pb2, hub_pb2_grpc, _ = stubs
    tokens, report = token_files
    flags = ["--max-connections", "30", "--max-connections-per-peer", "10",
             "--auth-timeout", "2s"]
    hub = hub_factory(*flags, *(["--tokens", str(tokens)] if with_tokens else []))
    metadata = bearer(READ) if with_tokens else None
    with grpc.insecure_channel(hub.addr) as reader:
        # A reader that made an authorized call (with no tokens, every call is) keeps its
        # connection past the timeout.
        stub = hub_pb2_grpc.HubStub(reader)
        stub.ListTappers(hub_pb2.ListTappersRequest(), metadata=metadata, timeout=10)
        before = established_from(hub.addr, "127.0.0.1")
        assert len(before) == 1, before
        # Idle HTTP/2 connections from three addresses fill every slot that is left ...
        flood = [c for source in ("127.0.0.3", "127.0.0.4", "127.0.0.5")
                 for c in attackers(hub.addr, source, 10)]
        # ... and are all closed once their auth timeout passed, pings answered or not.
        wait_until("every idle connection to be closed",
                   lambda: all(c.closed.is_set() for c in flood), timeout=30)
        assert established_from(hub.addr, "127.0.0.1") == before
        stub.ListTappers(hub_pb2.ListTappersRequest(), metadata=metadata, timeout=10)
        assert established_from(hub.addr, "127.0.0.1") == before
    # The slots are free again: the tapper's reporter is served.
    extra = ["--token-file", str(report)] if with_tokens else []
    summary = replay_to(hub, "node-ok", 50, *extra)
    assert summary["acked_seq"] == 50, summary
