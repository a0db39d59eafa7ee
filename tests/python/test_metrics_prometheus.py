"""The real Prometheus scrapes the real tapper (real eBPF) and the real hub: its query
results equal the kernel's counters for a provoked workload, and the shipped alerting rules
(deploy/prometheus) pass `promtool check rules` and evaluate without errors."""

import os
import subprocess
import time
import urllib.request

import pytest

from tapperkit.binaries import ROOT
from tapperkit.process import ready_fields
from tapperkit.monitoring import Prometheus, binary, wait_for
from tapperkit.net import scrape
from test_tapper_hardening import start_tapper, stop_tapper

RULES = ROOT / "deploy" / "prometheus" / "tapper-alerts.yml"
NODE = f"prom-node-{os.getpid()}"
EXPECTED = {"EPERM": 2 * 4, "EPROTONOSUPPORT": 2 * 5, "EAFNOSUPPORT": 2 * 3}
WORKLOAD = ["--threads", "2", "--fail", "EPERM=4", "--fail", "EPROTONOSUPPORT=5",
            "--fail", "EAFNOSUPPORT=3", "--successes", "10"]


def by_label(samples, label):
    return {dict(labels)[label]: value for labels, value in samples.items()}


def test_promtool_accepts_the_shipped_rules():
    out = subprocess.run([binary("promtool"), "check", "rules", str(RULES)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 8 rules found" in out.stdout, out.stdout


def test_prometheus_query_results_equal_the_kernel_counters(
        hub_factory, tapper_bin, workload_bin, tmp_path):
    hub = hub_factory("--metrics-listen", "127.0.0.1:0")
    hub_metrics = ready_fields(hub.log)["metrics"]
    # Every failure with these errnos goes to the hub, whoever made it (other processes on a
    # shared machine may flood other errnos; they are counted, not shipped).
    tapper, _, log = start_tapper(tapper_bin, hub, tmp_path, "--output", "none",
                                  "--counters", "json", "--node-name", NODE,
                                  "--errno", ",".join(EXPECTED),
                                  "--metrics-listen", "127.0.0.1:0")
    tapper_metrics = wait_for(lambda: ready_fields(log), "the tapper's ready line")["metrics"]
    prom = Prometheus(tmp_path, {"tapper": tapper_metrics, "hub": hub_metrics},
                      rule_files=[RULES]).start()
    try:
        wait_for(lambda: prom.last_scrape("tapper") and prom.last_scrape("hub"),
                 "Prometheus to scrape the tapper and the hub")
        wait_for(lambda: list(prom.query("hub_tappers_connected").values()) == [1.0],
                 "Prometheus to see the tapper connected to the hub")
        before = by_label(prom.query("tapper_socket_failures_total"), "errno")

        out = subprocess.run([str(workload_bin), *WORKLOAD], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        done = time.time()
        prom.wait_scraped_after("tapper", done)
        after = by_label(prom.query("tapper_socket_failures_total"), "errno")
        for name, n in EXPECTED.items():
            # Other processes on this machine may fail too: at least the workload's calls.
            assert after[name] - before.get(name, 0) >= n, (name, before, after)
        scraped = by_label(prom.query("tapper_events_dropped_total"), "reason")
        assert scraped["kernel_ring_full"] == 0, scraped

        final = stop_tapper(tapper, log)
        assert final["drops"] == 0 and final["events_received"] == final["failures"], final
        for name, value in after.items():
            assert value <= final["errnos"][name], (name, after, final)
        # Every failure of these errnos the kernel counted reached the hub (no drop):
        # Prometheus's hub series equal the kernel's final per-errno counts exactly.
        stopped = time.time()
        prom.wait_scraped_after("hub", stopped)
        stored = by_label(prom.query(f'hub_socket_failures_total{{node="{NODE}"}}'), "errno")
        assert stored == {k: float(final["errnos"][k]) for k in EXPECTED}, (stored, final)
        assert prom.query(f'hub_events_lost_total{{node="{NODE}"}}') == {}
        assert list(prom.query("hub_tappers_connected").values()) == [0.0]
        # The hub's own /metrics says the same as Prometheus's last scrape.
        direct = scrape(hub_metrics)
        for name, value in stored.items():
            key = ("hub_socket_failures_total", frozenset({("node", NODE), ("errno", name)}))
            assert direct[key] == value
        assert direct[("hub_store_rows", frozenset())] == sum(stored.values())

        # The shipped alerting rules load and evaluate against these series without errors.
        rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
        assert len(rules) == 8
        wait_for(lambda: all(r.get("lastEvaluation", "").startswith("20") for r in
                             (x for g in prom.api("rules")["groups"] for x in g["rules"])),
                 "every rule to be evaluated")
        health = {r["name"]: (r["health"], r.get("lastError", ""))
                  for g in prom.api("rules")["groups"] for r in g["rules"]}
        assert all(h == "ok" for h, _ in health.values()), health
    finally:
        prom.stop()
        if tapper.poll() is None:
            tapper.kill()


def test_hub_metrics_are_off_by_default_and_a_taken_address_is_an_error(hub_factory, hub_bin,
                                                                        tmp_path):
    hub = hub_factory()
    assert "metrics" not in ready_fields(hub.log)
    assert "metrics on http" not in hub.log.read_text()
    taken = hub_factory("--metrics-listen", "127.0.0.1:0")
    addr = ready_fields(taken.log)["metrics"]
    out = subprocess.run([str(hub_bin), "--listen", "127.0.0.1:0", "--db", ":memory:",
                          "--metrics-listen", addr], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert f"--metrics-listen {addr}: cannot listen" in out.stderr, out.stderr
    # The OpenMetrics text Prometheus asks for, with no pid, comm, pod or container label.
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as reply:
        content_type, text = reply.headers["Content-Type"], reply.read().decode()
    assert content_type.startswith("application/openmetrics-text; version=1.0.0"), content_type
    assert text.rstrip().endswith("# EOF"), text
    for label in ("pid=", "comm=", "pod=", "container=", "namespace="):
        assert label not in text, text
