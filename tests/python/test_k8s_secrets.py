"""deploy/kubernetes/make-secrets.sh: the Secrets it writes pass the API schemas and are the
ones the manifests mount; the hub certificate has the in-cluster names and chains to the CA
(checked with openssl); and a real hub serving those files is accepted by clients that
verify against the CA and an in-cluster name (grpcio, openssl s_client), and by hub-client
with the read token, as the port-forward recipe of docs/operations.md runs it."""

import base64
import subprocess

import grpc
import pytest
import yaml

from tapperkit.binaries import ROOT
from test_deploy import manifests, validate

SCRIPT = ROOT / "deploy" / "kubernetes" / "make-secrets.sh"
IN_CLUSTER = ["tapper-hub", "tapper-hub.tapper-system.svc",
              "tapper-hub.tapper-system.svc.cluster.local"]


def make_secrets(out, *args):
    return subprocess.run(["bash", str(SCRIPT), "--out", str(out), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def secrets(tmp_path):
    """The Secrets make-secrets.sh writes, by name, their data decoded, with the files
    written out under tmp_path/mounted/NAME/KEY as the pods would see them."""
    out = tmp_path / "secrets"
    run = make_secrets(out)
    assert run.returncode == 0, run.stderr
    paths = run.stdout.split()
    assert len(paths) == 4 and all(p.endswith(".yaml") for p in paths), run.stdout
    found = {}
    for path in paths:
        doc = yaml.safe_load(open(path))
        assert doc["kind"] == "Secret" and doc["metadata"]["namespace"] == "tapper-system"
        name = doc["metadata"]["name"]
        found[name] = {"path": path, "type": doc["type"], "files": {}}
        for key, value in doc["data"].items():
            file = tmp_path / "mounted" / name / key
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(base64.b64decode(value))
            found[name]["files"][key] = file
    found["read-token"] = out / "read.token"
    return found


def openssl(*args):
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)


def test_secrets_pass_the_schemas_and_are_the_ones_the_manifests_mount(secrets):
    names = {n for n in secrets if n != "read-token"}
    out = validate(*(secrets[n]["path"] for n in sorted(names)))
    assert out.returncode == 0 and out.stdout.count("passed") == 4, out.stdout + out.stderr
    mounted = {}
    for (kind, _), doc in manifests().items():
        if kind in ("DaemonSet", "StatefulSet"):
            pod = doc["spec"]["template"]["spec"]
            (c,) = pod["containers"]
            volumes = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"]
                       if "secret" in v}
            for m in c["volumeMounts"]:
                if m["name"] in volumes:
                    mounted[volumes[m["name"]]] = m["mountPath"]
    assert set(mounted) == names
    assert secrets["tapper-hub-tls"]["type"] == "kubernetes.io/tls"
    assert set(secrets["tapper-hub-tls"]["files"]) == {"tls.crt", "tls.key"}
    # The tokens file holds the tapper's token as `report` and the read token as `read`.
    lines = secrets["tapper-hub-tokens"]["files"]["tokens"].read_text().split("\n")
    report = secrets["tapper-report"]["files"]["token"].read_text().strip()
    read = secrets["read-token"].read_text().strip()
    assert lines == [f"report {report}", f"read {read}", ""]
    assert len(report) >= 32 and len(read) >= 32 and report != read


def test_hub_certificate_names_the_service_and_chains_to_the_ca(secrets):
    ca = secrets["tapper-hub-ca"]["files"]["ca.crt"]
    crt = secrets["tapper-hub-tls"]["files"]["tls.crt"]
    out = openssl("verify", "-CAfile", str(ca), str(crt))
    assert out.returncode == 0 and out.stdout.strip().endswith(": OK"), out.stdout + out.stderr
    out = openssl("x509", "-in", str(crt), "-noout", "-ext", "subjectAltName")
    sans = {s.strip() for s in out.stdout.splitlines()[1].split(",")}
    assert {f"DNS:{n}" for n in IN_CLUSTER} <= sans, out.stdout
    for name in IN_CLUSTER:
        out = openssl("x509", "-in", str(crt), "-noout", "-checkhost", name)
        assert "does match" in out.stdout, out.stdout
    # The key is the certificate's, and another CA does not verify it.
    pub = [openssl(*a).stdout for a in (["x509", "-in", str(crt), "-noout", "-pubkey"],
           ["pkey", "-in", str(secrets["tapper-hub-tls"]["files"]["tls.key"]), "-pubout"])]
    assert pub[0] == pub[1] and pub[0].startswith("-----BEGIN PUBLIC KEY-----")
    assert openssl("verify", "-CAfile", str(crt), str(crt)).returncode != 0


def list_tappers(addr, ca, name, token):
    creds = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
    with grpc.secure_channel(addr, creds,
                             options=[("grpc.ssl_target_name_override", name)]) as ch:
        call = ch.unary_unary("/tapper.v1.Hub/ListTappers", request_serializer=bytes,
                              response_deserializer=bytes)
        return call(b"", timeout=10, metadata=[("authorization", f"Bearer {token}")])


def test_a_hub_serving_the_secrets_is_trusted_under_its_in_cluster_names(
        secrets, hub_factory, hub_client_bin):
    tls, tokens = secrets["tapper-hub-tls"]["files"], secrets["tapper-hub-tokens"]["files"]
    hub = hub_factory("--tls-cert", str(tls["tls.crt"]), "--tls-key", str(tls["tls.key"]),
                      "--tokens", str(tokens["tokens"]))
    ca = secrets["tapper-hub-ca"]["files"]["ca.crt"]
    read = secrets["read-token"].read_text().strip()
    report = secrets["tapper-report"]["files"]["token"].read_text().strip()
    for name in IN_CLUSTER:
        assert list_tappers(hub.addr, ca, name, read) == b""
    with pytest.raises(grpc.RpcError) as err:
        list_tappers(hub.addr, ca, IN_CLUSTER[1], report)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # A name the certificate does not carry fails the handshake.
    with pytest.raises(grpc.RpcError) as err:
        list_tappers(hub.addr, ca, "tapper-hub.other.svc", read)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    host = IN_CLUSTER[2]
    s_client = subprocess.run(
        ["openssl", "s_client", "-connect", hub.addr, "-servername", host, "-CAfile", str(ca),
         "-verify_hostname", host, "-verify_return_error", "-alpn", "h2"],
        input="", capture_output=True, text=True, timeout=30)
    assert s_client.returncode == 0 and "Verify return code: 0 (ok)" in s_client.stdout, \
        s_client.stdout + s_client.stderr
    # The recipe: port-forward to localhost, then hub-client with the CA and the read token.
    port = hub.addr.rsplit(":", 1)[1]
    out = subprocess.run(
        [str(hub_client_bin), "--hub", f"https://localhost:{port}", "--tls-ca", str(ca),
         "--token-file", str(secrets["read-token"]), "tappers"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


def test_it_never_overwrites_a_ca_and_names_a_wrong_argument(tmp_path):
    out = tmp_path / "s"
    assert make_secrets(out).returncode == 0
    key = (out / "ca.key").read_bytes()
    again = make_secrets(out)
    assert again.returncode != 0 and "already holds a CA" in again.stderr, again.stderr
    assert (out / "ca.key").read_bytes() == key
    assert len(again.stderr.strip().splitlines()) == 1
    wrong = subprocess.run(["bash", str(SCRIPT), "--outdir", "x"], capture_output=True,
                           text=True, timeout=30, cwd=tmp_path)
    assert wrong.returncode != 0 and "'--outdir'" in wrong.stderr and "--out DIR" in wrong.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "tapper-secrets").exists()
