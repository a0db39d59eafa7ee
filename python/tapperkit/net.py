"""Loopback plumbing: a port free right now, HTTP GETs, and a Prometheus /metrics scrape."""

import json
import socket
import urllib.request


def free_port():
    """A port free right now on 127.0.0.1 (for a server that must keep its port across a
    restart, or that cannot report the port it bound)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        return reply.read().decode()


def get_json(url):
    return json.loads(http_get(url))


def scrape(addr):
    """The samples of http://ADDR/metrics as {(name, frozenset(labels)): value}."""
    samples = {}
    for line in http_get(f"http://{addr}/metrics").splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, labels = head.partition("{")
        pairs = frozenset(
            tuple(p.split("=", 1)) for p in labels.rstrip("}").replace('"', "").split(",") if p
        )
        samples[(name, pairs)] = float(value)
    return samples
