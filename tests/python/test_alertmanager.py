"""Alerts from the hub's rules, evaluated on ingest, in the real Alertmanager: an EMFILE
burst from the real tapper fires the issue's example rule with the right labels (and the
time from the failing call to the alert in Alertmanager is measured), the alert resolves
after a quiet window, and an Alertmanager that is down and comes back loses no alert."""

import json
import os
import subprocess
import time
from datetime import datetime

import pytest

from tapperkit.process import ready_fields
from tapperkit.monitoring import Alertmanager, wait_for
from tapperkit.net import free_port, scrape
from test_tapper_hardening import start_tapper, stop_tapper

# The example of the issue and docs/hub.md, as written.
EXAMPLE_RULE = """
[[rule]]
name = "SocketEmfileBurst"
errno = ["EMFILE", "ENFILE"]
threshold = 5          # failures ...
window = "10s"         # ... within this sliding window
group_by = ["node"]    # one alert per node
severity = "critical"
"""
BURST = ["--threads", "1", "--fail", "EMFILE=5"]


def unix_time(rfc3339):
    """Seconds since the epoch of an RFC 3339 time with up to nanoseconds."""
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(head + "+00:00").timestamp()
    return whole + (float("0." + frac.split("+")[0]) if frac else 0.0)


@pytest.fixture
def alertmanager(tmp_path):
    am = Alertmanager(tmp_path, free_port())
    yield am
    am.stop()


def start_alerting_hub(hub_factory, tmp_path, am, rules=EXAMPLE_RULE):
    path = tmp_path / "rules.toml"
    path.write_text(rules)
    return hub_factory("--alert-rules", str(path), "--alertmanager", am.url,
                       "--alert-resend-interval", "2s", "--metrics-listen", "127.0.0.1:0")


def burst(workload_bin):
    out = subprocess.run([str(workload_bin), *BURST], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    manifest = json.loads(out.stdout)
    failures = [(k.upper(), n) for t in manifest["threads"] for k, n in t["failures"].items()]
    assert failures == [("EMFILE", 5)], manifest
    return manifest


def emfile_events(out, pid):
    events = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return [e for e in events if e["pid"] == pid and e["errno_name"] == "EMFILE"]


def test_an_emfile_burst_fires_in_alertmanager_and_resolves_after_the_window(
        hub_factory, alertmanager, tapper_bin, workload_bin, tmp_path):
    alertmanager.start()
    node = f"alert-node-{os.getpid()}"
    hub = start_alerting_hub(hub_factory, tmp_path, alertmanager)
    tapper, out, log = start_tapper(tapper_bin, hub, tmp_path, "--output", "json",
                                    "--comm", "socket-workload", "--node-name", node)
    try:
        manifest = burst(workload_bin)
        mine = lambda: [a for a in alertmanager.alerts("SocketEmfileBurst")  # noqa: E731
                        if a["labels"].get("node") == node]
        alert = wait_for(mine, "the alert in Alertmanager", timeout=20, every=0.01)[0]
        assert alert["labels"] == {"alertname": "SocketEmfileBurst", "severity": "critical",
                                   "node": node, "errno": "EMFILE|ENFILE"}, alert
        assert alert["status"]["state"] == "active", alert
        summary, process = alert["annotations"]["summary"], alert["annotations"]["process"]
        assert summary == f"5 or more failed socket() calls (EMFILE|ENFILE) within 10s, node={node}"
        assert process.startswith(f"last failure: pid {manifest['pid']} (socket-workload)")
        assert ": EMFILE at " in process, process

        # The failing call (its kernel time) to Alertmanager's receipt of the alert.
        events = wait_for(lambda: len(emfile_events(out, manifest["pid"])) == 5 and
                          emfile_events(out, manifest["pid"]), "the five EMFILE events")
        fifth = max(unix_time(e["ts"]) for e in events)
        latency_ms = (unix_time(alert["updatedAt"]) - fifth) * 1000
        print(f"failure to alert in Alertmanager: {latency_ms:.1f} ms")
        assert latency_ms > 0, (alert, events)

        # Still firing (re-sent every 2s) well inside the window, resolved after it.
        time.sleep(5)
        assert mine(), "the alert went away inside its window"
        wait_for(lambda: not mine(), "the alert to resolve", timeout=20, every=0.1)
        quiet = time.time() - fifth
        assert quiet >= 10, f"resolved {quiet:.1f}s after the last failure, inside the window"
        text = hub.log.read_text()
        assert "alert firing" in text and "alert resolved" in text, text
    finally:
        stop_tapper(tapper, log)


def test_alertmanager_down_and_back_up_loses_no_alert(
        hub_factory, alertmanager, tapper_bin, workload_bin, tmp_path):
    rules = EXAMPLE_RULE.replace('"10s"', '"60s"').replace("SocketEmfileBurst", "EmfileWhileDown")
    node = f"down-node-{os.getpid()}"
    hub = start_alerting_hub(hub_factory, tmp_path, alertmanager, rules)
    metrics = ready_fields(hub.log)["metrics"]
    tapper, _, log = start_tapper(tapper_bin, hub, tmp_path, "--output", "none",
                                  "--comm", "socket-workload", "--node-name", node)
    try:
        burst(workload_bin)
        labels = frozenset({("alertmanager", alertmanager.url)})
        wait_for(lambda: scrape(metrics).get(("hub_alertmanager_post_failures_total", labels),
                                             0) >= 2, "failed deliveries in the hub's metrics")
        assert scrape(metrics)[("hub_alertmanager_pending_alerts", labels)] == 1
        assert "cannot deliver alerts to Alertmanager; keeping them and retrying" in \
            hub.log.read_text()

        alertmanager.start()
        alert = wait_for(lambda: [a for a in alertmanager.alerts("EmfileWhileDown")
                                  if a["labels"].get("node") == node],
                         "the alert once Alertmanager is back", timeout=30)[0]
        assert alert["labels"]["errno"] == "EMFILE|ENFILE" and alert["status"]["state"] == "active"
        wait_for(lambda: scrape(metrics)[("hub_alertmanager_pending_alerts", labels)] == 0,
                 "nothing pending")
        assert "Alertmanager reachable again" in hub.log.read_text()
        assert scrape(metrics)[("hub_alertmanager_posts_total", labels)] >= 1
        assert scrape(metrics)[("hub_alerts_firing", frozenset())] >= 1
    finally:
        stop_tapper(tapper, log)


def test_a_bad_rules_file_stops_the_hub_naming_the_rule_and_field(hub_bin, tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(EXAMPLE_RULE.replace("threshold = 5", 'threshold = "five"'))
    out = subprocess.run([str(hub_bin), "--listen", "127.0.0.1:0", "--db", ":memory:",
                          "--alert-rules", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert (f'--alert-rules {path}: rule 1 ("SocketEmfileBurst"): threshold: must be a whole '
            f'number of failures from 1 to 100000, got "five"') in out.stderr, out.stderr
    assert '{"ready"' not in out.stderr
    out = subprocess.run([str(hub_bin), "--listen", "127.0.0.1:0", "--db", ":memory:",
                          "--alertmanager", "http://127.0.0.1:9"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0 and "--alert-rules" in out.stderr, out.stderr
