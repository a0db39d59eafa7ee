"""The metrics-and-alerts part of the benchmarks: the time from a failing socket() call to
its alert in the real Alertmanager (the hub's rules evaluated on ingest), and the time of one
/metrics scrape of a hub that knows 1 node and one that knows many, side by side. Writes its
results as JSON.

Run by scripts/bench.sh (as root: the tapper loads eBPF), with python/ on PYTHONPATH for the
shared harness (tapperkit)."""

import argparse
import concurrent.futures
import ctypes
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tapperkit.monitoring import Alertmanager
from tapperkit.net import free_port, get_json, scrape
from tapperkit.process import start
from tapperkit.replay import replay_args

PR_SET_NAME = 15
RULE = """
[[rule]]
name = "BenchEmfile"
errno = ["EMFILE"]
threshold = 1
window = "2s"
group_by = ["node", "comm"]
severity = "critical"
"""


def set_comm(name):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()), 0, 0, 0)


def provoke_emfile():
    """Fills the descriptor table under a lowered limit; returns the time just before the
    socket() call that failed with EMFILE."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 4, hard))
    try:
        while True:
            before = time.time()
            try:
                held.append(socket.socket())
            except OSError as err:
                assert err.errno == 24, err
                return before
    finally:
        for s in held:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def rfc3339(text):
    from datetime import datetime
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))


def alert_latencies(bins, tmp, runs, bursts):
    """Per run, the milliseconds from each failing call to its alert: as Alertmanager
    received it (its updatedAt), and as a client polling its API every 2 ms saw it."""
    am = Alertmanager(tmp, free_port()).start()
    rules = tmp / "rules.toml"
    rules.write_text(RULE)
    hub = start([bins["hub"], "--listen", "127.0.0.1:0", "--db", ":memory:",
                 "--alert-rules", str(rules), "--alertmanager", am.url],
                tmp / "hub-alerts.log")
    listen = hub.ready["listen"]
    tapper = start([bins["tapper"], "--probe", "tracepoint", "--output", "none",
                       "--pid", str(os.getpid()), "--hub", f"http://{listen}",
                       "--node-name", "bench"], tmp / "tapper.log")
    comm = open("/proc/self/comm").read().strip()
    results = []
    try:
        for run in range(runs):
            received, seen = [], []
            for i in range(bursts):
                name = f"b{run}-{i}"
                set_comm(name)
                failed_at = provoke_emfile()
                set_comm(comm)
                query = urllib.parse.urlencode({"filter": f'comm="{name}"'})
                deadline = time.time() + 10
                while True:
                    found = get_json(f"{am.url}/api/v2/alerts?{query}")
                    if found or time.time() > deadline:
                        break
                    time.sleep(0.002)
                if not found:
                    sys.exit(f"no alert for {name} within 10 s; hub log:\n"
                             f"{(tmp / 'hub-alerts.log').read_text()[-2000:]}")
                seen.append((time.time() - failed_at) * 1000)
                received.append((rfc3339(found[0]["updatedAt"]) - failed_at) * 1000)
            results.append({"received_ms": received, "seen_ms": seen})
    finally:
        tapper.stop(check=False)
        hub.stop(check=False)
        am.stop()
    return results


def load_nodes(bins, url, nodes):
    """Each node reports 4 events (4 errnos) and 1 kernel drop, like a small tapper."""
    def one(i):
        subprocess.run(replay_args(bins["hub-client"], url, f"node-{i:04}", 4,
                                   "--kernel-drops", "1"),
                       check=True, capture_output=True, timeout=120)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(nodes)))


def scrape_times(bins, tmp, runs, nodes, scrapes):
    """Per run and hub, the milliseconds of each GET /metrics, alternating hubs."""
    hubs = {}
    for count in (1, nodes):
        proc = start([bins["hub"], "--listen", "127.0.0.1:0", "--db", ":memory:",
                      "--metrics-listen", "127.0.0.1:0"], tmp / f"hub-{count}.log")
        listen, metrics = proc.ready["listen"], proc.ready["metrics"]
        load_nodes(bins, f"http://{listen}", count)
        hubs[count] = (proc, metrics)
    try:
        shape = {}
        for count, (_, addr) in hubs.items():
            samples = scrape(addr)
            body = len(urllib.request.urlopen(f"http://{addr}/metrics").read())
            shape[count] = {"series": len(samples), "bytes": body}
        results = []
        for _ in range(runs):
            times = {count: [] for count in hubs}
            conns = {count: http.client.HTTPConnection(*addr.rsplit(":", 1))
                     for count, (_, addr) in hubs.items()}
            for _ in range(scrapes):
                for count, conn in conns.items():
                    started = time.perf_counter()
                    conn.request("GET", "/metrics")
                    conn.getresponse().read()
                    times[count].append((time.perf_counter() - started) * 1000)
            results.append(times)
        return shape, results
    finally:
        for proc, _ in hubs.values():
            proc.stop(check=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="dir with hub, tapper, hub-client")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bursts", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--out", required=True, help="the JSON results to write")
    args = parser.parse_args()
    bins = {name: str(Path(args.bin) / name) for name in ("hub", "tapper", "hub-client")}
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        tmp = Path(tmp)
        alerts = alert_latencies(bins, tmp, args.runs, args.bursts)
        shape, scrapes = scrape_times(bins, tmp, args.runs, args.nodes, args.scrapes)
    Path(args.out).write_text(json.dumps({
        "runs": args.runs, "bursts": args.bursts, "nodes": args.nodes,
        "scrapes_per_run": args.scrapes, "alerts": alerts, "shape": shape,
        "scrapes": scrapes}, indent=1) + "\n")


if __name__ == "__main__":
    main()
