"""The hub's own files, given by an operator who makes a mistake or by an attacker who can
point a flag somewhere: `--tokens`, `--alert-rules` and the TLS files take only regular
files of at most 1 MiB (a device or a FIFO is a one-line error, never a hang or an endless
read), and a tokens file caught while it is being rewritten in place is not loaded
half-written."""

import os
import subprocess
import time

import grpc

from test_tls import READ, REPORT, bearer, code_of, wait_for_log

RULE = '[[rule]]\nname = "R"\nthreshold = 1\nwindow = "1s"\n'


def start_hub(hub_bin, *flags):
    return subprocess.run([str(hub_bin), "--listen", "127.0.0.1:0", "--db", ":memory:", *flags],
                          capture_output=True, text=True, timeout=60)


def refused(out, flag, path, reason):
    assert out.returncode != 0, out.stderr
    assert f"{flag} {path}: {reason}" in out.stderr, out.stderr
    assert '{"ready"' not in out.stderr
    return out.stderr


def test_devices_fifos_and_big_files_are_refused_at_start(hub_bin, tmp_path):
    refused(start_hub(hub_bin, "--tokens", "/dev/zero"), "--tokens", "/dev/zero",
            "not a regular file (a character device); give a regular file")
    refused(start_hub(hub_bin, "--alert-rules", "/dev/urandom"), "--alert-rules",
            "/dev/urandom", "not a regular file (a character device)")
    refused(start_hub(hub_bin, "--tls-cert", "/dev/zero", "--tls-key", "/dev/zero"),
            "--tls-cert", "/dev/zero", "not a regular file (a character device)")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # nobody ever writes to it: opening it must not wait for a writer
    refused(start_hub(hub_bin, "--tokens", str(fifo)), "--tokens", fifo, "not a regular file (a FIFO)")
    refused(start_hub(hub_bin, "--alert-rules", str(fifo)), "--alert-rules", fifo,
            "not a regular file (a FIFO)")
    big_tokens = tmp_path / "tokens"
    big_tokens.write_text(f"read {READ}\n" + "# padding padding padding\n" * 50_000)
    assert big_tokens.stat().st_size > 1024 * 1024
    refused(start_hub(hub_bin, "--tokens", str(big_tokens)), "--tokens", big_tokens,
            "larger than the limit of 1048576 bytes")
    big_rules = tmp_path / "rules.toml"
    big_rules.write_text(RULE + "# padding padding padding\n" * 50_000)
    refused(start_hub(hub_bin, "--alert-rules", str(big_rules)), "--alert-rules", big_rules,
            "larger than the limit of 1048576 bytes")


def test_a_tokens_file_rewritten_in_place_is_loaded_only_once_complete(hub_factory, tmp_path,
                                                                      stubs):
    hub_pb2, hub_pb2_grpc, _ = stubs
    tokens = tmp_path / "tokens"
    tokens.write_text(f"read {READ}\nreport {REPORT}\n")
    hub = hub_factory("--tokens", str(tokens), "--reload-interval", "50ms")
    new = "new-read-token-ffffffffffffffff"
    # An editor's save: truncate, then write, here slowly. From its first line on, the file
    # is valid but lacks the report token, which comes last.
    with open(tokens, "w") as f:
        f.write(f"read {READ}\n")
        f.flush()
        for i in range(400):
            f.write(f"# line {i} of a slow rewrite\n")
            f.flush()
            time.sleep(0.005)
        log_while_writing = hub.log.read_text(errors="replace")
        f.write(f"report {REPORT}\nread {new}\n")
    assert "tokens reloaded" not in log_while_writing, log_while_writing
    assert "it changed between two reads" in log_while_writing, log_while_writing
    assert "rename it into place" in log_while_writing

    wait_for_log(hub, "tokens reloaded")
    with grpc.insecure_channel(hub.addr) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        stub.ListTappers(hub_pb2.ListTappersRequest(), metadata=bearer(new), timeout=10)
        # The report token was never revoked: the complete file has it.
        assert code_of(lambda: stub.ListTappers(hub_pb2.ListTappersRequest(),
                                                metadata=bearer(REPORT), timeout=10)) \
            == grpc.StatusCode.PERMISSION_DENIED
