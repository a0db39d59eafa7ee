"""Credentials the hub refuses (an unknown token, a read-role token) never fix themselves:
the real tapper says so once as an ERROR, backs off long, keeps printing locally, and shows
it in its metrics, its status line and its exit message; `hub-client` exits at once."""

import re
import subprocess
import time

import pytest

from tapperkit.net import scrape
from tapperkit.tapper import start_tapper

REPORT = "report-token-aaaaaaaaaaaaaaaa"
READ = "read-token-bbbbbbbbbbbbbbbbbbbb"
REFUSED_ERROR = "will not fix itself"


@pytest.fixture
def token_hub(hub_factory, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"report {REPORT}\nread {READ}\n")
    return hub_factory("--tokens", str(tokens))


def token_file(tmp_path, token):
    path = tmp_path / f"{token[:4]}.token"
    path.write_text(token + "\n")
    return path


def wait_for(predicate, what, log, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}; log:\n{log()}"
        time.sleep(0.05)


@pytest.mark.parametrize("token, hub_says", [
    (READ, "a read token may not call /tapper.v1.Hub/Report"),
    ("wrong-token-dddddddddddddddddd", "unknown token"),
])
def test_hub_client_replay_exits_at_once_when_refused(token_hub, hub_client_bin, tmp_path,
                                                      token, hub_says):
    # A flush timeout far beyond the subprocess's own: only a refusal seen as final
    # returns in time.
    out = subprocess.run(
        [str(hub_client_bin), "replay", "--hub", token_hub.url, "--node", "n1",
         "--synthetic", "3", "--flush-timeout", "600",
         "--token-file", str(token_file(tmp_path, token))],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("hub-client: error: the hub refused this reporter: "), out.stderr
    assert hub_says in last and REFUSED_ERROR in last, last
    # The reporter's own ERROR was logged once, and no retry loop of WARNs.
    assert out.stderr.count(REFUSED_ERROR) == 2, out.stderr
    assert "report stream failed" not in out.stderr, out.stderr


def test_tapper_refused_by_the_hub_says_so_once_and_keeps_local_output(
        tapper_bin, workload_bin, token_hub, tmp_path):
    tapper = start_tapper(
        tapper_bin, tmp_path, "--comm", "socket-workload", "--hub", token_hub.url,
        "--token-file", str(token_file(tmp_path, READ)), "--metrics-listen", "127.0.0.1:0",
        "--stats-interval", "300ms")
    metrics = tapper.ready["metrics"]
    wait_for(lambda: REFUSED_ERROR in tapper.log_text(), "the refusal's ERROR", tapper.log_text)
    samples = scrape(metrics)
    assert samples[("tapper_hub_refused", frozenset())] == 1, samples
    assert samples[("tapper_hub_connected", frozenset())] == 0, samples
    wait_for(lambda: '"hub":"refused"' in tapper.log_text(), "the status line", tapper.log_text)

    out = subprocess.run([str(workload_bin), "--threads", "1", "--fail", "EINVAL=2"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert len(tapper.wait_event(None, count=2)) == 2, "the local output goes on"
    time.sleep(1)  # a retry loop would have tried again (and logged it) by now
    tapper.stop()
    log = tapper.log_text()
    errors = [line for line in log.splitlines() if REFUSED_ERROR in line]
    assert len(errors) == 1 and "ERROR" in errors[0], log
    assert "a read token may not call /tapper.v1.Hub/Report" in errors[0], errors
    assert "--token-file" in errors[0] and "retry_in=120" in errors[0], errors
    assert "report stream failed" not in log, log
    assert "cutting it" not in log, "shutdown ends the long wait at once"
    assert "acknowledged every event" not in log, log
    assert re.search(r"stopping with 2 events not delivered \(seq 1 to 2\): the hub refused "
                     r"this tapper: .*a read token may not call", log), log
