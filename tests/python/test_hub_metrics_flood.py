"""The hub's /metrics endpoint against a flood of idle and partial connections (issue 27,
item 8): the real hub, under an open-files limit of 1024, while nobody (`setpriv`) holds
2,000 connections to its metrics port, half of them in the middle of a request head. A
tapper's reporter still gets its acks, the partial requests are closed in seconds, and a
scrape answers."""

import subprocess
import time
import urllib.request

from tapperkit.process import ready_fields
from tapperkit.replay import run_replay
from tapperkit.tapper import NOBODY, PYTHON

# Opens N connections to HOST:PORT, sends half of them the start of a request head, prints
# "held"; then waits until every one was closed by the server (or WITHIN seconds passed)
# and prints how many were.
FLOOD = """
import selectors, socket, sys, time
host, port, n, within = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
held = []
for i in range(n):
    s = socket.create_connection((host, port))
    if i % 2:
        s.sendall(b"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nX-Slow:")
    held.append(s)
print("held", flush=True)
sel = selectors.DefaultSelector()
for s in held:
    sel.register(s, selectors.EVENT_READ)
closed = 0
deadline = time.monotonic() + within
while closed < n and time.monotonic() < deadline:
    for key, _ in sel.select(0.2):
        try:
            data = key.fileobj.recv(4096)
        except OSError:
            data = b""
        if not data:
            sel.unregister(key.fileobj)
            closed += 1
print(closed, flush=True)
sys.stdin.readline()
"""


def test_idle_and_partial_metrics_connections_starve_neither_reports_nor_scrapes(
        hub_factory, hub_client_bin):
    hub = hub_factory("--metrics-listen", "127.0.0.1:0", "--max-connections", "512",
                      prefix=["prlimit", "--nofile=1024:1024"])
    metrics = ready_fields(hub.log)["metrics"]
    host, port = metrics.rsplit(":", 1)
    flood = subprocess.Popen(
        ["prlimit", "--nofile=4096", *NOBODY, PYTHON, "-c", FLOOD, host, port, "2000", "60"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert flood.stdout.readline().strip() == "held"
        # A tapper's reporter connects, reports and gets every ack during the flood.
        run_replay(hub_client_bin, hub, "flooded-node", 500)
        # Every connection is closed in seconds: over the cap at once, the rest by the
        # header timeout (5 s), partial requests included (they were held over 75 s).
        started = time.monotonic()
        closed = int(flood.stdout.readline())
        assert closed == 2000, f"{closed} of 2000 closed"
        assert time.monotonic() - started < 45
        with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10) as reply:
            text = reply.read().decode()
        assert 'hub_socket_failures_total{node="flooded-node"' in text, text
    finally:
        flood.kill()
        flood.wait()
    log = hub.log.read_text()
    assert "metrics: connection limit reached" in log, log
    assert "Too many open files" not in log, log
