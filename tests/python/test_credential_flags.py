"""Every certificate, key and token file is checked before anything is attached or bound,
and each error is one line naming its flag: the real tapper, hub-client and hub."""

import subprocess

import pytest

from tapperkit import pki


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return pki.make(tmp_path_factory.mktemp("pki"))


def not_pem(tmp_path):
    path = tmp_path / "not.pem"
    path.write_text("not a PEM file\n")
    return path


def client_cases(certs, tmp_path):
    """(flags, the start of the error after the program's prefix)."""
    bad = not_pem(tmp_path)
    cert, key = str(certs["node_a"]), str(pki.key_of(certs["node_a"]))
    other_key = str(pki.key_of(certs["server"]))
    return [
        (["--tls-ca", bad], f"--tls-ca {bad}: no PEM certificate in it"),
        (["--tls-ca", tmp_path / "missing.pem"], f"--tls-ca {tmp_path}/missing.pem: "),
        (["--tls-cert", bad, "--tls-key", key], f"--tls-cert {bad}: no PEM certificate in it"),
        (["--tls-cert", cert, "--tls-key", bad],
         f"--tls-key {bad}: no usable PEM private key in it"),
        (["--tls-cert", cert, "--tls-key", other_key],
         "--tls-cert and --tls-key: the certificate and key do not fit together"),
        (["--token-file", tmp_path / "missing.token"], f"--token-file {tmp_path}/missing.token"),
    ]


def one_line_error(out, prefix, expected):
    assert out.returncode != 0, out
    errors = [line for line in out.stderr.splitlines() if "ERROR" in line or "error:" in line]
    assert len(errors) == 1, out.stderr
    assert (prefix + expected) in errors[0], errors[0]
    assert "transport error" not in errors[0] or "KeyMismatch" in errors[0], errors[0]


def test_the_tapper_checks_its_hub_credentials_before_attaching(tapper_bin, certs, tmp_path):
    for flags, expected in client_cases(certs, tmp_path):
        out = subprocess.run([str(tapper_bin), "--output", "none", "--hub", "https://hub.invalid:1",
                              *map(str, flags)], capture_output=True, text=True, timeout=60)
        one_line_error(out, "ERROR tapper: ", expected)
        assert "attached" not in out.stderr and '"ready"' not in out.stderr, out.stderr


def test_hub_client_checks_its_credentials_before_connecting(hub_client_bin, certs, tmp_path):
    for flags, expected in client_cases(certs, tmp_path):
        out = subprocess.run([str(hub_client_bin), "--hub", "https://hub.invalid:1",
                              *map(str, flags), "tappers"],
                             capture_output=True, text=True, timeout=60)
        one_line_error(out, "hub-client: error: ", expected)


def test_the_hub_names_the_tls_flag_that_is_wrong(hub_bin, certs, tmp_path):
    bad = not_pem(tmp_path)
    cert, key = str(certs["server"]), str(pki.key_of(certs["server"]))
    cases = [
        (["--tls-cert", bad, "--tls-key", key], f"--tls-cert {bad}: no PEM certificate in it"),
        (["--tls-cert", cert, "--tls-key", bad],
         f"--tls-key {bad}: no usable PEM private key in it"),
        (["--tls-cert", cert, "--tls-key", str(pki.key_of(certs["node_a"]))],
         "--tls-cert and --tls-key: the certificate and key do not fit together"),
        (["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", bad],
         f"--tls-client-ca {bad}: no PEM certificate in it"),
    ]
    for flags, expected in cases:
        out = subprocess.run([str(hub_bin), "--listen", "127.0.0.1:0", "--db", ":memory:",
                              *map(str, flags)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 1, out
        assert out.stderr.splitlines()[-1].startswith(f"hub: error: {expected}"), out.stderr
        assert '"ready"' not in out.stderr and "store open" not in out.stderr, out.stderr
