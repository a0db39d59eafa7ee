"""A hub replica SIGKILLed mid-stream on a real PostgreSQL (postgres.py): its reporters and
a real tapper (real eBPF, provoked failures) fail over to another replica, and every
failure is delivered once or covered by a loss record, at the database and at a grpcurl
subscriber of a third replica."""

import json
import os
import signal
import subprocess
import time

from tapperkit.process import ready_fields
from test_failover import wait_for
from test_postgres_replicas import Subscriber, events_of


def covered(server, db, node):
    """Each seq of `node`'s instances, as many times as events and loss records cover it."""
    rows = server.psql(
        f"SELECT instance_id, seq, seq FROM events WHERE node = '{node}' UNION ALL "
        f"SELECT instance_id, first_seq, last_seq FROM losses WHERE node = '{node}'", db=db)
    seqs = {}
    for line in rows.splitlines():
        instance, first, last = line.split("|")
        seqs.setdefault(instance, []).extend(range(int(first), int(last) + 1))
    return seqs


def test_a_replica_killed_mid_stream_costs_no_failure(
        grpcurl, hub_factory, hub_client_bin, tapper_bin, workload_bin, pg_database,
        tmp_path):
    server, url = pg_database
    db = url.rsplit("/", 1)[1]
    a, b, c = (hub_factory("--db", url) for _ in range(3))
    sub = Subscriber(grpcurl, c, tmp_path / "sub.json")

    # Reporters spread over the replicas: two start on A (the one that dies), one on B.
    reporters = {}
    for node, hubs, n in (("pg-k1", f"{a.url},{b.url}", 3000), ("pg-k2", f"{a.url},{c.url}", 2000),
                          ("pg-k3", f"{b.url},{a.url}", 1500)):
        log = open(tmp_path / f"{node}.log", "wb")
        reporters[node] = (n, subprocess.Popen(
            [str(hub_client_bin), "replay", "--hub", hubs, "--node", node,
             "--synthetic", str(n), "--interval-ms", "2", "--flush-timeout", "120"],
            stdout=subprocess.PIPE, stderr=log, text=True))
    tlog = tmp_path / "tapper.log"
    with open(tlog, "wb") as f:
        tapper = subprocess.Popen(
            [str(tapper_bin), "--probe", "tracepoint", "--output", "none",
             "--comm", "socket-workload", "--hub", a.url, "--hub", b.url,
             "--node-name", "pg-tapper"],
            stdout=subprocess.DEVNULL, stderr=f, env={**os.environ, "RUST_LOG": "info"})

    def provoke():
        out = subprocess.run([str(workload_bin), "--threads", "1", "--fail", "EINVAL=7",
                              "--fail", "EPERM=4"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["pid"]

    def stored_of(pids):
        return int(server.psql("SELECT COUNT(*) FROM events WHERE node = 'pg-tapper' AND "
                               f"pid IN ({','.join(map(str, pids))})", db=db))

    try:
        wait_for(lambda: ready_fields(tlog) or tapper.poll() is not None, "the tapper to attach")
        assert tapper.poll() is None, tlog.read_text()
        before = provoke()
        wait_for(lambda: stored_of([before]) == 11, "the tapper's first failures stored")
        # Mid-stream: A has stored part of the first reporter's events.
        wait_for(lambda: int(server.psql(
            "SELECT COUNT(*) FROM events WHERE node = 'pg-k1'", db=db)) >= 600,
            "replica A to store a fifth of pg-k1")
        a.kill()
        after = provoke()
        wait_for(lambda: stored_of([after]) == 11, "the tapper's later failures stored")
        summaries = {}
        for node, (n, proc) in reporters.items():
            out, _ = proc.communicate(timeout=180)
            assert proc.returncode == 0, (tmp_path / f"{node}.log").read_text()
            summaries[node] = json.loads(out.strip().splitlines()[-1])
            assert summaries[node]["flushed"] and summaries[node]["sent"] == n
        tapper.send_signal(signal.SIGINT)
        assert tapper.wait(timeout=30) == 0, tlog.read_text()
        total = sum(n for n, _ in reporters.values()) + 22
        msgs = sub.wait_for(total, lambda m: len(events_of(m)))
    finally:
        for _, proc in reporters.values():
            if proc.poll() is None:
                proc.kill()
        if tapper.poll() is None:
            tapper.kill()
        sub.stop()

    # At the database: every seq of every instance once, as an event or in a loss record.
    for node, summary in summaries.items():
        seqs = covered(server, db, node)
        assert len(seqs) == 1, seqs.keys()
        assert sorted(next(iter(seqs.values()))) == list(range(1, summary["last_seq"] + 1))
        assert summary["connects"] >= (2 if "k3" not in node else 1), summary
    for instance, seqs in covered(server, db, "pg-tapper").items():
        assert sorted(seqs) == list(range(1, max(seqs) + 1)), instance
    assert stored_of([before, after]) == 22
    assert "the hub acknowledged every event" in tlog.read_text(errors="replace")

    # At a subscriber of a third replica: each stored event once, in one order.
    events = events_of(msgs)
    keys = [(e["node"], e["instanceId"], int(e["seq"])) for e in events]
    assert len(keys) == len(set(keys)), "an event reached the subscriber twice"
    stored = int(server.psql("SELECT COUNT(*) FROM events", db=db))
    assert len(keys) == stored, (len(keys), stored)
    hub_seqs = [int(e["hubSeq"]) for e in events]
    assert hub_seqs == sorted(hub_seqs)
