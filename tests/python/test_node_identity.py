"""mTLS node identity (`--node-identity dns|cn|uri-prefix=PREFIX`), as an attacker with a
certificate from the client CA would try it: each SAN kind (DNS, CN only, URI, IP only,
email only) under each rule. A certificate may Report only as the node it names, and one
that names no node is refused on every call (it used to Report as any node). Certificates
are made at test time (pki.py); the client is grpcio."""

import subprocess

import grpc
import pytest

from tapperkit import pki
from test_tls import channel, code_of, report_once

SPIFFE = "spiffe://cluster/node/"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    ca = pki.Ca(tmp_path_factory.mktemp("identity-pki"), "ca")
    return {
        "ca": ca.pem,
        "server": ca.issue("server", "hub", dns=["localhost"], ips=["127.0.0.1"], server=True),
        "dns": ca.issue("dns", "cn-of-dns", dns=["node-dns"]),
        "cn": ca.issue("cn", "node-cn"),
        "uri": ca.issue("uri", None, uris=[SPIFFE + "node-uri"]),
        "uri_elsewhere": ca.issue("uri-elsewhere", None, uris=["spiffe://other/node/node-x"]),
        "ip": ca.issue("ip", None, ips=["10.0.0.7"]),
        "email": ca.issue("email", None, emails=["node@example.com"]),
    }


def mtls_hub(hub_factory, certs, *extra):
    return hub_factory("--tls-cert", str(certs["server"]),
                       "--tls-key", str(pki.key_of(certs["server"])),
                       "--tls-client-ca", str(certs["ca"]), *extra)


def outcome(stubs, hub, certs, client, node):
    """What a Report as `node` with the certificate `client` gets: "ok", or the status
    code's name and, for UNAUTHENTICATED, the details."""
    with channel(certs, hub.addr, client=client) as ch:
        try:
            assert report_once(stubs, ch, node, None) == [0, 1]
            return "ok"
        except grpc.RpcError as err:
            return err.code().name, err.details()


def assert_names_no_node(result):
    assert result[0] == "UNAUTHENTICATED", result
    assert "the client certificate names no node" in result[1], result


def listed_nodes(stubs, hub, certs, client):
    hub_pb2, hub_pb2_grpc, _ = stubs
    with channel(certs, hub.addr, client=client) as ch:
        reply = hub_pb2_grpc.HubStub(ch).ListTappers(hub_pb2.ListTappersRequest(), timeout=10)
        return sorted(t.node for t in reply.tappers)


def test_by_default_dns_sans_or_else_the_cn_name_the_node_and_nameless_are_refused(
        hub_factory, certs, stubs):
    hub = mtls_hub(hub_factory, certs)
    assert outcome(stubs, hub, certs, "dns", "node-dns") == "ok"
    assert outcome(stubs, hub, certs, "dns", "cn-of-dns")[0] == "PERMISSION_DENIED"
    assert outcome(stubs, hub, certs, "cn", "node-cn") == "ok"
    assert outcome(stubs, hub, certs, "cn", "victim")[0] == "PERMISSION_DENIED"
    # Certificates the CA signed that name no node: no Report as anybody, no other call.
    for nameless in ("uri", "ip", "email"):
        assert_names_no_node(outcome(stubs, hub, certs, nameless, "victim"))
        with channel(certs, hub.addr, client=nameless) as ch:
            hub_pb2, hub_pb2_grpc, _ = stubs
            assert code_of(lambda: hub_pb2_grpc.HubStub(ch).ListTappers(
                hub_pb2.ListTappersRequest(), timeout=10)) == grpc.StatusCode.UNAUTHENTICATED
    assert listed_nodes(stubs, hub, certs, "dns") == ["node-cn", "node-dns"]
    assert "the client certificate names no node" in hub.log.read_text()


def test_uri_prefix_maps_spiffe_ids_to_nodes(hub_factory, certs, stubs):
    hub = mtls_hub(hub_factory, certs, "--node-identity", f"uri-prefix={SPIFFE}")
    assert outcome(stubs, hub, certs, "uri", "node-uri") == "ok"
    assert outcome(stubs, hub, certs, "uri", "victim")[0] == "PERMISSION_DENIED"
    # Under this rule DNS names and CNs name nobody, nor does a URI under another prefix.
    for nameless in ("dns", "cn", "uri_elsewhere", "ip", "email"):
        result = outcome(stubs, hub, certs, nameless, "node-dns")
        assert_names_no_node(result)
        assert f"a URI SAN starting with {SPIFFE}" in result[1], result
    assert listed_nodes(stubs, hub, certs, "uri") == ["node-uri"]


def test_dns_and_cn_rules_take_only_their_own_field(hub_factory, certs, stubs):
    hub = mtls_hub(hub_factory, certs, "--node-identity", "dns")
    assert outcome(stubs, hub, certs, "dns", "node-dns") == "ok"
    for nameless in ("cn", "uri", "ip", "email"):
        assert_names_no_node(outcome(stubs, hub, certs, nameless, "node-cn"))

    hub = mtls_hub(hub_factory, certs, "--node-identity", "cn")
    assert outcome(stubs, hub, certs, "dns", "cn-of-dns") == "ok"
    assert outcome(stubs, hub, certs, "dns", "node-dns")[0] == "PERMISSION_DENIED"
    assert outcome(stubs, hub, certs, "cn", "node-cn") == "ok"
    for nameless in ("uri", "ip", "email"):
        assert_names_no_node(outcome(stubs, hub, certs, nameless, "node-cn"))


def test_bad_node_identity_flags_are_one_line_errors(hub_bin, certs):
    base = [str(hub_bin), "--listen", "127.0.0.1:0", "--db", ":memory:",
            "--tls-cert", str(certs["server"]), "--tls-key", str(pki.key_of(certs["server"]))]
    out = subprocess.run(base + ["--tls-client-ca", str(certs["ca"]), "--node-identity", "uri"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "use dns, cn or uri-prefix=PREFIX" in out.stderr, out.stderr
    out = subprocess.run(base + ["--node-identity", "cn"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode != 0 and "--tls-client-ca" in out.stderr, out.stderr
