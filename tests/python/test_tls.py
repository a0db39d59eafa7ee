"""TLS, mTLS node identity and bearer tokens, through real clients: grpcurl (reflection),
Python grpcio (ssl_channel_credentials), and our own hub-client and reporter
(hub-client replay). Certificates are made at test time (pki.py)."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tapperkit import pki

REPORT = "report-token-aaaaaaaaaaaaaaaa"
READ = "read-token-bbbbbbbbbbbbbbbbbbbb"
ADMIN = "admin-token-cccccccccccccccccc"


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return pki.make(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tokens_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"# role token\nreport {REPORT}\nread {READ}\nadmin {ADMIN}\n")
    return path


def secure_flags(certs, tokens_file, mtls=True, server="server"):
    flags = ["--tls-cert", str(certs[server]), "--tls-key", str(pki.key_of(certs[server])),
             "--tokens", str(tokens_file), "--reload-interval", "200ms"]
    if mtls:
        flags += ["--tls-client-ca", str(certs["ca"])]
    return flags


def channel(certs, addr, client="node_a", ca="ca"):
    root = Path(certs[ca]).read_bytes()
    if client:
        creds = grpc.ssl_channel_credentials(
            root, pki.key_of(certs[client]).read_bytes(), Path(certs[client]).read_bytes())
    else:
        creds = grpc.ssl_channel_credentials(root)
    return grpc.secure_channel(addr, creds)


def bearer(token):
    return [("authorization", f"Bearer {token}")]


def report_once(stubs, ch, node, token, seq=1):
    """One Report stream: a Hello and one event; returns the acks, or raises RpcError."""
    hub_pb2, hub_pb2_grpc, event_pb2 = stubs
    stub = hub_pb2_grpc.HubStub(ch)
    msgs = [hub_pb2.ReportRequest(hello=hub_pb2.Hello(node=node, instance_id=f"i-{node}")),
            hub_pb2.ReportRequest(events=hub_pb2.EventBatch(events=[event_pb2.Event(
                seq=seq, ts=Timestamp(seconds=int(time.time())), pid=1, comm="t", errno=24,
                errno_name="EMFILE")]))]
    md = bearer(token) if token else None
    return [r.ack.acked_seq for r in stub.Report(iter(msgs), metadata=md, timeout=10)]


def code_of(call):
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code()


def tappers(stubs, ch, token=READ):
    hub_pb2, hub_pb2_grpc, _ = stubs
    resp = hub_pb2_grpc.HubStub(ch).ListTappers(hub_pb2.ListTappersRequest(), metadata=bearer(token), timeout=10)
    return {t.node: t.events_received for t in resp.tappers}


def grpcurl_tls(grpcurl, certs, hub, *args, token=READ, client="node_a", data=None):
    cmd = [str(grpcurl), "-cacert", str(certs["ca"])]
    if data is not None:
        cmd += ["-d", json.dumps(data)]
    if client:
        cmd += ["-cert", str(certs[client]), "-key", str(pki.key_of(certs[client]))]
    if token:
        cmd += ["-H", f"authorization: Bearer {token}"]
    cmd += [hub.addr, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_grpcurl_over_mtls_with_a_token(grpcurl, hub_factory, certs, tokens_file):
    hub = hub_factory(*secure_flags(certs, tokens_file))
    out = grpcurl_tls(grpcurl, certs, hub, "list", "tapper.v1.Hub")
    assert out.returncode == 0, out.stderr
    assert "tapper.v1.Hub.Subscribe" in out.stdout.split()
    out = grpcurl_tls(grpcurl, certs, hub, "tapper.v1.Hub/ListTappers")
    assert out.returncode == 0, out.stderr
    out = grpcurl_tls(grpcurl, certs, hub, "tapper.v1.Hub/Subscribe",
                      data={"since_hub_seq": 0, "follow": False})
    assert out.returncode == 0, out.stderr
    # Reflection needs a token too.
    out = grpcurl_tls(grpcurl, certs, hub, "list", token=None)
    assert out.returncode != 0 and "Unauthenticated" in out.stderr, out.stderr
    out = grpcurl_tls(grpcurl, certs, hub, "grpc.health.v1.Health/Check", data={})
    assert out.returncode == 0 and "SERVING" in out.stdout, out.stderr
    # A report token may not read.
    out = grpcurl_tls(grpcurl, certs, hub, "tapper.v1.Hub/ListTappers", token=REPORT)
    assert out.returncode != 0 and "PermissionDenied" in out.stderr, out.stderr


def test_grpcio_statuses_for_identity_and_tokens(hub_factory, certs, tokens_file, stubs):
    hub_pb2, _, _ = stubs
    hub = hub_factory(*secure_flags(certs, tokens_file))
    with channel(certs, hub.addr) as ch:
        assert report_once(stubs, ch, "node-a", REPORT) == [0, 1]
        assert code_of(lambda: report_once(stubs, ch, "node-b", REPORT)) == grpc.StatusCode.PERMISSION_DENIED
        assert code_of(lambda: report_once(stubs, ch, "node-a", None)) == grpc.StatusCode.UNAUTHENTICATED
        assert code_of(lambda: report_once(stubs, ch, "node-a", "wrong-token-dddddddddddd")) == grpc.StatusCode.UNAUTHENTICATED
        assert code_of(lambda: report_once(stubs, ch, "node-a", READ)) == grpc.StatusCode.PERMISSION_DENIED
        assert report_once(stubs, ch, "node-a", ADMIN, seq=2) == [1, 2]
        # Health stays open to probes.
        check = ch.unary_unary("/grpc.health.v1.Health/Check",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)
        assert check(b"", timeout=10) == b"\x08\x01"  # HealthCheckResponse{status: SERVING}
    # A certificate without SANs is named by its CN.
    with channel(certs, hub.addr, client="node_b_cn") as ch:
        assert report_once(stubs, ch, "node-b", REPORT) == [0, 1]
        assert code_of(lambda: report_once(stubs, ch, "node-a", REPORT)) == grpc.StatusCode.PERMISSION_DENIED
        assert tappers(stubs, ch) == {"node-a": 2, "node-b": 1}
    log = hub.log.read_text()
    assert "refusing a Report for another node" in log
    for token in (REPORT, READ, ADMIN, "wrong-token"):
        assert token not in log


def test_bad_connections_fail_and_the_hub_keeps_serving(hub_factory, certs, tokens_file, stubs):
    hub = hub_factory(*secure_flags(certs, tokens_file))
    hub_pb2, hub_pb2_grpc, _ = stubs
    unavailable = grpc.StatusCode.UNAVAILABLE

    def list_with(ch):
        return hub_pb2_grpc.HubStub(ch).ListTappers(
            hub_pb2.ListTappersRequest(), metadata=bearer(READ), timeout=5)

    with grpc.insecure_channel(hub.addr) as ch:  # plaintext to a TLS hub
        assert code_of(lambda: list_with(ch)) == unavailable
    with channel(certs, hub.addr, ca="other_ca") as ch:  # the hub's CA is not trusted
        assert code_of(lambda: list_with(ch)) == unavailable
    with channel(certs, hub.addr, client="expired") as ch:  # an expired client certificate
        assert code_of(lambda: list_with(ch)) == unavailable
    with channel(certs, hub.addr, client="untrusted") as ch:  # signed by another CA
        assert code_of(lambda: list_with(ch)) == unavailable
    with channel(certs, hub.addr, client=None) as ch:  # no client certificate at all
        assert code_of(lambda: list_with(ch)) == unavailable
    with channel(certs, hub.addr) as ch:
        assert list_with(ch).tappers == []

    # A hub whose certificate names another host.
    wrong = hub_factory(*secure_flags(certs, tokens_file, server="wrong_san"))
    with channel(certs, wrong.addr) as ch:
        assert code_of(lambda: list_with(ch)) == unavailable


def hub_client(hub_client_bin, hub, certs, *args, client="node_a", token_file=None, env_token=None):
    cmd = [str(hub_client_bin), "--hub", hub.url, "--tls-ca", str(certs["ca"])]
    if client:
        cmd += ["--tls-cert", str(certs[client]), "--tls-key", str(pki.key_of(certs[client]))]
    if token_file:
        cmd += ["--token-file", str(token_file)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    if env_token:
        env["HUB_TOKEN"] = env_token
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60, env=env)


def test_our_clients_over_mtls(hub_factory, certs, tokens_file, tmp_path, hub_client_bin,
                               replay_to):
    hub = hub_factory(*secure_flags(certs, tokens_file))
    assert hub.url.startswith("https://")
    report_token = tmp_path / "report.token"
    report_token.write_text(REPORT + "\n")
    tls = ["--tls-ca", str(certs["ca"]), "--tls-cert", str(certs["node_a"]),
           "--tls-key", str(pki.key_of(certs["node_a"]))]
    summary = replay_to(hub, "node-a", 300, *tls, "--token-file", str(report_token))
    assert summary["acked_seq"] == 300, summary

    out = hub_client(hub_client_bin, hub, certs, "tappers", "--json", env_token=READ)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["node"], r["events_received"]) for r in rows] == [("node-a", 300)]
    out = hub_client(hub_client_bin, hub, certs, "stats", "--json", env_token=READ)
    assert out.returncode == 0, out.stderr

    # The reporter as node-b with node-a's certificate: refused for good, so it exits at
    # once (long before its flush timeout) saying what to do; nothing stored.
    out = subprocess.run(
        [str(hub_client_bin), "replay", "--hub", hub.url, "--node", "node-b", "--synthetic", "5",
         "--flush-timeout", "600", *tls, "--token-file", str(report_token)],
        capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, out.stderr
    assert "the hub refused this reporter" in out.stderr, out.stderr
    assert "a client certificate naming this node (--tls-cert)" in out.stderr, out.stderr
    assert "refusing a Report for another node" in hub.log.read_text()
    # hub-client without a token, with a report token, and over plaintext to TLS.
    out = hub_client(hub_client_bin, hub, certs, "tappers")
    assert out.returncode != 0 and "Unauthenticated" in out.stderr, out.stderr
    out = hub_client(hub_client_bin, hub, certs, "tappers", token_file=report_token)
    assert out.returncode != 0 and "PermissionDenied" in out.stderr, out.stderr
    plain = subprocess.run([str(hub_client_bin), "--hub", f"http://{hub.addr}", "tappers"],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "HUB_TOKEN": READ})
    assert plain.returncode != 0, plain.stdout
    # TLS files with an http:// URL are an error, never a silent plaintext.
    plain = subprocess.run([str(hub_client_bin), "--hub", f"http://{hub.addr}", "--tls-ca",
                            str(certs["ca"]), "tappers"], capture_output=True, text=True, timeout=60)
    assert plain.returncode != 0 and "https://" in plain.stderr, plain.stderr
    out = hub_client(hub_client_bin, hub, certs, "tappers", "--json", env_token=ADMIN)
    assert [json.loads(l)["node"] for l in out.stdout.splitlines()] == ["node-a"], out.stderr


def wait_for_log(hub, text, after=0, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hub.log.read_text(errors="replace").count(text) > after:
            return
        time.sleep(0.05)
    pytest.fail(f"{text!r} not in the hub's log:\n{hub.log.read_text(errors='replace')}")


def served_certificate(addr):
    import ssl
    host, port = addr.rsplit(":", 1)
    return ssl.get_server_certificate((host, int(port)))


def pem_der(pem_text):
    import ssl
    return ssl.PEM_cert_to_DER_cert(pem_text)


def test_rotation_while_a_reporter_streams_loses_nothing(hub_factory, certs, tokens_file, tmp_path,
                                                         hub_client_bin, stubs):
    # Kubernetes-style: the flags name files under a symlink that is swapped atomically.
    for version, name in (("v1", "server"), ("v2", "server2")):
        d = tmp_path / version
        d.mkdir()
        shutil.copy(certs[name], d / "tls.crt")
        shutil.copy(pki.key_of(certs[name]), d / "tls.key")
    (tmp_path / "data").symlink_to("v1")
    flags = ["--tls-cert", str(tmp_path / "data" / "tls.crt"),
             "--tls-key", str(tmp_path / "data" / "tls.key"),
             "--tls-client-ca", str(certs["ca"]), "--tokens", str(tokens_file),
             "--reload-interval", "200ms"]
    hub = hub_factory(*flags)
    assert pem_der(served_certificate(hub.addr)) == pem_der(Path(certs["server"]).read_text())

    n = 3000
    env = {**os.environ, "HUB_TOKEN": REPORT}
    env.pop("HUB_TOKEN_FILE", None)
    replay = subprocess.Popen(
        [str(hub_client_bin), "replay", "--hub", hub.url, "--node", "node-a", "--synthetic", str(n),
         "--interval-ms", "2", "--tls-ca", str(certs["ca"]), "--tls-cert", str(certs["node_a"]),
         "--tls-key", str(pki.key_of(certs["node_a"]))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(1.5)
    (tmp_path / "data.new").symlink_to("v2")
    os.replace(tmp_path / "data.new", tmp_path / "data")
    wait_for_log(hub, "TLS certificate reloaded")
    # New connections get the new certificate, while the stream goes on.
    assert pem_der(served_certificate(hub.addr)) == pem_der(Path(certs["server2"]).read_text())
    assert replay.poll() is None, "the replay ended before the rotation"

    out, err = replay.communicate(timeout=120)
    assert replay.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["flushed"] and summary["acked_seq"] == n, summary
    assert summary["connects"] == 1, summary  # the stream was never cut
    with channel(certs, hub.addr) as ch:
        assert tappers(stubs, ch) == {"node-a": n}

    # A broken new certificate is refused; the one in force stays.
    (tmp_path / "v2" / "tls.crt").write_text("not a certificate\n")
    wait_for_log(hub, "keeping the previous one")
    assert pem_der(served_certificate(hub.addr)) == pem_der(Path(certs["server2"]).read_text())


def test_tokens_are_reloaded_without_a_restart(hub_factory, certs, tmp_path, stubs):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"read {READ}\n")
    hub = hub_factory("--tls-cert", str(certs["server"]), "--tls-key", str(pki.key_of(certs["server"])),
                      "--tokens", str(tokens), "--reload-interval", "200ms")
    new = "new-read-token-eeeeeeeeeeeeee"
    with channel(certs, hub.addr, client=None) as ch:
        assert tappers(stubs, ch, READ) == {}
        assert code_of(lambda: tappers(stubs, ch, new)) == grpc.StatusCode.UNAUTHENTICATED

        def rewrite(text):
            tmp = tmp_path / "tokens.tmp"
            tmp.write_text(text)
            os.replace(tmp, tokens)

        rewrite(f"read {new}\n")
        wait_for_log(hub, "tokens reloaded")
        assert tappers(stubs, ch, new) == {}
        assert code_of(lambda: tappers(stubs, ch, READ)) == grpc.StatusCode.UNAUTHENTICATED
        # A bad file is logged (naming the line, never the token) and the old tokens stay.
        rewrite(f"read {new}\nwriter secret-never-logged-123456\n")
        wait_for_log(hub, "line 2: unknown role")
        assert tappers(stubs, ch, new) == {}
    assert "secret-never-logged" not in hub.log.read_text()
    assert new not in hub.log.read_text()


def test_beyond_loopback_needs_tls_and_tokens_or_insecure(hub_bin, tmp_path):
    cmd = [str(hub_bin), "--listen", "0.0.0.0:0", "--db", ":memory:"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "not a loopback address" in out.stderr and "--insecure" in out.stderr, out.stderr

    log = tmp_path / "insecure.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd + ["--insecure"], stderr=f, env={**os.environ, "RUST_LOG": "info"})
    try:
        deadline = time.monotonic() + 20
        while "--insecure: serving beyond loopback" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_plaintext_http_to_the_tls_port_gets_a_readable_answer(hub_factory, certs, tokens_file):
    """curl with http:// to a TLS hub: a 400 whose text names the https:// URL."""
    tls_hub = hub_factory(*secure_flags(certs, tokens_file, mtls=False))
    out = subprocess.run(["curl", "-sS", "-i", f"http://{tls_hub.addr}/api/v1/tappers"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("HTTP/1.1 400 Bad Request"), out.stdout
    assert out.stdout.endswith(f"\n\nthis hub speaks TLS: use https://{tls_hub.addr}\n"), \
        out.stdout
    # The hub goes on serving TLS.
    out = subprocess.run(["curl", "-sS", "--cacert", str(certs["ca"]), "-o", "/dev/null",
                          "-w", "%{http_code}", f"{tls_hub.url}/"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout != "000", out.stderr


def test_hub_client_says_what_to_do_about_a_tls_mismatch(hub_factory, hub, certs, tokens_file,
                                                        hub_client_bin):
    """One line each, naming the hub and the fix: plaintext to a TLS hub, TLS to a plaintext
    hub, no client certificate for an mTLS hub, and a CA that did not sign the hub's
    certificate."""
    tls_hub = hub_factory(*secure_flags(certs, tokens_file))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HUB_")}, "HUB_TOKEN": READ}

    def error_of(*args):
        out = subprocess.run([str(hub_client_bin), *args, "tappers"], capture_output=True,
                             text=True, timeout=60, env=env)
        assert out.returncode == 1, out
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "tonic::" not in lines[0], out.stderr
        return lines[0]

    # The hub answers plaintext HTTP/2 on its TLS port with a GOAWAY that says so, once the
    # request is on its way: every try gets the same line.
    for _ in range(5):
        line = error_of("--hub", f"http://{tls_hub.addr}")
        assert line == (f"hub-client: error: hub http://{tls_hub.addr}: the hub speaks TLS: "
                        "use an https:// URL (with --tls-ca if a private CA signed its "
                        "certificate)"), line
    line = error_of("--hub", f"https://{hub.addr}", "--tls-ca", str(certs["ca"]))
    assert f"https://{hub.addr}: the hub speaks plaintext: use an http:// URL" in line, line
    line = error_of("--hub", tls_hub.url, "--tls-ca", str(certs["ca"]))
    # The refusal arrives as a TLS alert, or as a broken pipe when the client wrote first.
    assert ("the hub asks for a client certificate: give --tls-cert and --tls-key" in line
            or "if it asks for a client certificate, give --tls-cert and --tls-key" in line), line
    line = error_of("--hub", tls_hub.url)
    assert "not signed by a CA this client trusts: give --tls-ca" in line, line


def test_the_tapper_says_the_hub_speaks_tls(hub_factory, certs, tokens_file, tapper_bin,
                                            tmp_path):
    from tapperkit.tapper import start_tapper
    tls_hub = hub_factory(*secure_flags(certs, tokens_file, mtls=False))
    tapper = start_tapper(tapper_bin, tmp_path, "--hub", f"http://{tls_hub.addr}")
    deadline = time.monotonic() + 30
    while "report stream failed" not in tapper.log_text():
        assert time.monotonic() < deadline, tapper.log_text()
        time.sleep(0.05)
    tapper.stop()
    failures = [line for line in tapper.log_text().splitlines()
                if "report stream failed" in line]
    assert all("error=the hub speaks TLS: use an https:// URL" in line for line in failures), \
        failures
