"""Hub replicas on a real PostgreSQL (postgres.py): several hubs on one database, reporters
spread over them, subscribers, stats and the tapper list on any replica; bad URLs and a
database from a newer hub are clear errors."""

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from test_grpcurl import grpcurl_run, parse_stream


class Subscriber:
    """A grpcurl Subscribe stream (replay from hub_seq 0, then live) into a file."""

    def __init__(self, grpcurl, hub, path):
        self.path = path
        self.out = open(path, "w")
        self.proc = subprocess.Popen(
            [str(grpcurl), "-plaintext", "-d", json.dumps({"since_hub_seq": 0, "follow": True}),
             hub.addr, "tapper.v1.Hub/Subscribe"],
            stdout=self.out, stderr=subprocess.PIPE, text=True)

    def messages(self):
        text = self.path.read_text()
        # The last object may still be half written.
        for cut in (len(text), text.rfind("\n}\n") + 2):
            try:
                return parse_stream(text[:cut])
            except ValueError:
                continue
        return []

    def wait_for(self, count, what, timeout=60):
        """Waits until `what(messages)` reaches `count`; returns the messages."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages()
            if what(msgs) >= count or time.monotonic() > deadline:
                return msgs
            assert self.proc.poll() is None, self.proc.stderr.read()
            time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.out.close()


def events_of(msgs):
    return [m["event"] for m in msgs if "event" in m]


def replicas(hub_factory, url, n, *args):
    return [hub_factory("--db", url, *args) for _ in range(n)]


def test_every_replica_sees_every_replica_s_events_once_in_one_order(
        grpcurl, hub_factory, replay_to, pg_database, tmp_path):
    _, url = pg_database
    hubs = replicas(hub_factory, url, 3)
    sub = Subscriber(grpcurl, hubs[0], tmp_path / "sub0.json")
    try:
        # Reporters on the other replicas, two of them at once.
        replay_to(hubs[1], "pg-a", 300)
        with ThreadPoolExecutor() as pool:
            list(pool.map(lambda a: replay_to(*a), [
                (hubs[2], "pg-b", 200, "--kernel-drops", "3"), (hubs[1], "pg-c", 100)]))
        msgs = sub.wait_for(600, lambda m: len(events_of(m)))
    finally:
        sub.stop()
    events = events_of(msgs)
    keys = [(e["node"], int(e["seq"])) for e in events]
    assert len(keys) == len(set(keys)) == 600, f"{len(keys)} events, {len(set(keys))} distinct"
    assert sorted(keys) == sorted(
        [("pg-a", s) for s in range(1, 301)] + [("pg-b", s) for s in range(1, 201)]
        + [("pg-c", s) for s in range(1, 101)])
    losses = [m["loss"] for m in msgs if "loss" in m]
    assert [(l["node"], l["loss"]["count"]) for l in losses] == [("pg-b", "3")]
    hub_seqs = [int(m.get("event", m.get("loss", {})).get("hubSeq", 0)) for m in msgs
                if "event" in m or "loss" in m]
    assert hub_seqs == sorted(hub_seqs) and len(set(hub_seqs)) == len(hub_seqs)

    # A replica that never saw these reporters replays the same global order.
    out = grpcurl_run(grpcurl, hubs[2], "tapper.v1.Hub/Subscribe",
                      data={"since_hub_seq": "0", "follow": False})
    assert out.returncode == 0, out.stderr
    replayed = parse_stream(out.stdout)
    assert [int(m.get("event", m.get("loss", {})).get("hubSeq", 0)) for m in replayed] \
        == hub_seqs

    # Stats and the tapper list for the whole fleet, from any replica.
    for hub in hubs:
        out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/GetStats",
                          data={"group_by": ["GROUP_BY_NODE"]})
        assert out.returncode == 0, out.stderr
        stats = json.loads(out.stdout)
        assert int(stats["totalEvents"]) == 600 and int(stats["totalLost"]) == 3, stats
        per_node = {r["node"]: int(r["count"]) for r in stats["rows"]}
        assert per_node == {"pg-a": 300, "pg-b": 200, "pg-c": 100}
        out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/ListTappers", data={})
        assert out.returncode == 0, out.stderr
        tappers = json.loads(out.stdout)["tappers"]
        assert {(t["node"], int(t["eventsReceived"]), int(t["ackedSeq"])) for t in tappers} \
            == {("pg-a", 300, 300), ("pg-b", 200, 201), ("pg-c", 100, 100)}
        assert not any(t.get("connected") for t in tappers)


def start_failing_hub(hub_bin, url):
    """Runs a hub on `url` that must refuse to start; returns its stderr."""
    out = subprocess.run([str(hub_bin), "--listen", "127.0.0.1:0", "--db", url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, out.stderr
    assert '{"ready"' not in out.stderr
    return out.stderr


def test_bad_urls_and_unusable_databases_are_clear_errors(hub_bin, pg_database, hub_factory):
    server, url = pg_database
    from tapperkit.net import free_port

    cases = [
        ("postgres://hub@127.0.0.1:notaport/x", "not a valid PostgreSQL URL"),
        (f"postgres://hub:x@127.0.0.1:{free_port()}/x", "cannot reach PostgreSQL at 127.0.0.1:"),
        (server.url("postgres", password="wrong"), 'refused the login of user "hub"'),
        (server.url("nosuchdb"), 'database "nosuchdb" does not exist: create it'),
    ]
    for bad, expected in cases:
        err = start_failing_hub(hub_bin, bad)
        assert expected in err, err
        assert "wrong" not in err and server.password not in err, "the password leaked"

    # A database a newer hub migrated: refused, and left as it was.
    hub_factory("--db", url)
    db = url.rsplit("/", 1)[1]
    server.psql("UPDATE schema_version SET version = 99", db=db)
    err = start_failing_hub(hub_bin, url)
    assert "database schema version 99 is newer than this hub knows (5)" in err, err
    assert server.psql("SELECT version FROM schema_version", db=db) == "99"


def test_postgresql_restarted_under_load_loses_nothing_acked(
        grpcurl, hub_factory, hub_client_bin, pg_database, tmp_path):
    server, url = pg_database
    db = url.rsplit("/", 1)[1]
    hubs = replicas(hub_factory, url, 2)
    sub = Subscriber(grpcurl, hubs[1], tmp_path / "sub.json")
    n = 4000
    reporter = subprocess.Popen(
        [str(hub_client_bin), "replay", "--hub", hubs[0].url, "--node", "pg-restart",
         "--synthetic", str(n), "--interval-ms", "1", "--flush-timeout", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        server.stop()
        time.sleep(2)
        server.start()
        out, err = reporter.communicate(timeout=180)
        assert reporter.returncode == 0, err
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["flushed"] and summary["sent"] == n, summary
        msgs = sub.wait_for(n, lambda m: len(events_of(m)))
    finally:
        if reporter.poll() is None:
            reporter.kill()
        sub.stop()
    # Every event is stored once, and acked; nothing needed a loss record.
    assert server.psql("SELECT COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM events",
                       db=db) == f"{n}|{n}|1|{n}"
    assert server.psql("SELECT COUNT(*) FROM losses", db=db) == "0"
    assert server.psql("SELECT acked_seq FROM tappers", db=db) == str(n)
    # The other replica's subscriber got each of them once, across the restart.
    seqs = [int(e["seq"]) for e in events_of(msgs)]
    assert sorted(seqs) == list(range(1, n + 1))
    # Both hubs took the restart in their stride (the log says what happened).
    log = hubs[0].log.read_text()
    assert "database connection restored" in log, log[-3000:]


def test_tls_to_the_database_when_the_url_asks(hub_bin, hub_factory, replay_to, pg_database,
                                                tmp_path):
    from tapperkit import pki

    server, url = pg_database
    files = pki.make(tmp_path)
    server.enable_tls(files["server"], pki.key_of(files["server"]))
    db = url.rsplit("/", 1)[1]
    hub = hub_factory("--db", f"{url}?sslmode=require&sslrootcert={files['ca']}")
    replay_to(hub, "pg-tls", 20)
    assert server.psql("SELECT COUNT(*) FROM events", db=db) == "20"
    # Every connection of the hub is encrypted.
    ssl = server.psql("SELECT string_agg(s.ssl::TEXT, ',') FROM pg_stat_ssl s JOIN "
                      "pg_stat_activity a USING (pid) WHERE a.application_name LIKE 'tapper-hub %'")
    assert ssl and set(ssl.split(",")) == {"true"}, ssl
    # A certificate from another CA is refused at start, with the reason.
    err = start_failing_hub(hub_bin, f"{url}?sslmode=require&sslrootcert={files['other_ca']}")
    assert "cannot reach PostgreSQL" in err and "certificate" in err.lower(), err


def test_stacks_are_stored_once_and_warnings_replay_on_postgresql(hub_factory, pg_database,
                                                                  stubs):
    import grpc
    from google.protobuf.timestamp_pb2 import Timestamp

    hub_pb2, hub_pb2_grpc, event_pb2 = stubs
    server, url = pg_database
    db = url.rsplit("/", 1)[1]
    a, b = replicas(hub_factory, url, 2)
    frames = [event_pb2.StackFrame(address=0x1010 + i, module="/usr/bin/w", offset=0x10 + i,
                                   symbol=f"f{i}") for i in range(3)]

    def requests():
        yield hub_pb2.ReportRequest(hello=hub_pb2.Hello(node="pg-stacks", instance_id="i1"))
        events = [event_pb2.Event(seq=s, errno=24, errno_name="EMFILE", comm="t",
                                  ts=Timestamp(seconds=1), user_stack=frames)
                  for s in range(1, 21)]
        yield hub_pb2.ReportRequest(events=hub_pb2.EventBatch(events=events))
        yield hub_pb2.ReportRequest(warning=event_pb2.Warning(
            seq=21, kind="nofile", ts=Timestamp(seconds=2), pid=7, comm="t", used=205,
            limit=256, ratio=205 / 256, eta_seconds=1.5))

    with grpc.insecure_channel(a.addr) as ch:
        acks = [r.ack.acked_seq for r in hub_pb2_grpc.HubStub(ch).Report(requests(), timeout=30)]
    assert acks[-1] == 21, acks
    # Twenty identical stacks are one row, referenced by every event.
    assert server.psql("SELECT COUNT(*) FROM stacks", db=db) == "1"
    assert server.psql("SELECT COUNT(*) FROM events WHERE stack_id IS NOT NULL", db=db) == "20"
    # Another replica replays the frames whole, and the warning in its place.
    with grpc.insecure_channel(b.addr) as ch:
        items = list(hub_pb2_grpc.HubStub(ch).Subscribe(
            hub_pb2.SubscribeRequest(since_hub_seq=0), timeout=30))
    events = [i.event for i in items if i.HasField("event")]
    warnings = [i.warning for i in items if i.HasField("warning")]
    assert [e.seq for e in events] == list(range(1, 21))
    assert all(list(e.user_stack) == frames for e in events)
    assert [(w.seq, w.kind, w.pid, w.node) for w in warnings] == [(21, "nofile", 7, "pg-stacks")]
