"""One rule per kind of flag value across the tapper, the hub and hub-client, checked on
the real binaries: durations take units, times take RFC 3339 or an age, listen addresses
take host names, command names are the same glob, and a count of 0 is refused."""

import json
import subprocess
import sys

from tapperkit.hub import start_hub
from tapperkit.tapper import start_tapper


def run(*cmd, timeout=60):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)


def test_the_hub_takes_a_duration_with_units_and_a_listen_host_name(hub_bin, tmp_path):
    hub = start_hub(hub_bin, tmp_path / "hub.log", "--shutdown-grace", "1500ms",
                    listen="localhost:0")
    try:
        assert hub.addr.startswith("127.0.0.1:") or hub.addr.startswith("[::1]:"), hub.addr
    finally:
        hub.stop()
    out = run(hub_bin, "--shutdown-grace", "5x", "--db", ":memory:")
    assert out.returncode == 2
    assert "--shutdown-grace" in out.stderr and "not a duration" in out.stderr, out.stderr


def test_watch_and_stats_take_an_age_or_rfc3339(hub, replay, hub_client_bin):
    replay("ages", 6)
    out = run(hub_client_bin, "--hub", hub.url, "watch", "--since", "1h", "--no-follow",
              "--json")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines() if '"errno"' in line]
    assert len(events) == 6
    out = run(hub_client_bin, "--hub", hub.url, "watch", "--since", "1970-01-01T00:00:00Z",
              "--no-follow", "--json")
    assert out.returncode == 0, out.stderr
    assert len([line for line in out.stdout.splitlines() if '"errno"' in line]) == 6
    out = run(hub_client_bin, "--hub", hub.url, "stats", "--since", "1h", "--until", "0s",
              "--json")
    assert out.returncode == 2 and "--until" in out.stderr, out.stderr
    out = run(hub_client_bin, "--hub", hub.url, "stats", "--since", "1h", "--json")
    assert out.returncode == 0, out.stderr
    assert int(json.loads(out.stdout)["total_events"]) == 6
    out = run(hub_client_bin, "--hub", hub.url, "watch", "--since", "yesterday")
    assert out.returncode == 2
    assert "--since" in out.stderr and "neither an RFC 3339 time" in out.stderr, out.stderr


def test_a_count_of_zero_is_refused(hub, hub_client_bin):
    out = run(hub_client_bin, "--hub", hub.url, "watch", "--count", "0", timeout=10)
    assert out.returncode == 2
    assert "--count" in out.stderr and "0" in out.stderr, out.stderr


def test_the_tapper_takes_bare_seconds_and_host_names(tapper_bin):
    # Flag values are checked before anything is loaded.
    out = run(tapper_bin, "--stats-interval", "5x")
    assert out.returncode == 2 and "--stats-interval" in out.stderr, out.stderr
    out = run(tapper_bin, "--metrics-listen", "no-such-host.invalid:9464")
    assert out.returncode == 2 and "--metrics-listen" in out.stderr, out.stderr


FAIL_AS = r"""
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME: the comm the tapper sees
assert libc.socket(4321, socket.SOCK_STREAM, 0) < 0
print(os.getpid(), flush=True)
"""


def test_the_tapper_s_comm_filter_is_the_hub_client_s_glob(tapper_bin, tmp_path):
    tapper = start_tapper(tapper_bin, tmp_path, "--comm", "glob-[ab]*")
    try:
        pids = {}
        for name in ["glob-a-worker", "glob-c-worker", "glob-b"]:
            out = subprocess.run([sys.executable, "-c", FAIL_AS, name], capture_output=True,
                                 text=True, check=True)
            pids[name] = int(out.stdout)
        tapper.wait_event(pids["glob-b"])
        shown = {e["comm"] for e in tapper.events() if "warning" not in e}
        assert shown == {"glob-a-worker", "glob-b"}, shown
    finally:
        tapper.stop()


def test_a_missing_tls_file_stops_the_tapper_before_it_attaches_and_names_the_flag(
        tapper_bin, hub_client_bin):
    out = run(tapper_bin, "--probe", "tracepoint", "--hub", "https://127.0.0.1:1",
              "--tls-ca", "/nonexistent/ca.pem")
    assert out.returncode != 0
    assert "attached" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "--tls-ca /nonexistent/ca.pem" in errors[0], out.stderr
    out = run(hub_client_bin, "--hub", "https://127.0.0.1:1", "--tls-ca", "/nonexistent/ca.pem",
              "tappers")
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--tls-ca /nonexistent/ca.pem" in lines[0], out.stderr
