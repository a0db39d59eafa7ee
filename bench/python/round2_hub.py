"""Round-two attacks on the hub (issue items 4, 7 and 9), each against a fresh hub on
loopback: events with a 1 MiB `cgroup_path` beside one slow subscriber, HTTP/2 connections
without a token that only answer pings, and one alert group per `comm`. The reporter is the
attacker's own client (grpcio), not the project's."""

import http.server
import itertools
import threading
import time
import uuid

import grpc

from tapperkit.net import scrape
from tapperkit.process import start
from common import nearest
from round2_tapper import IdleConns, kill
from storm import status_kib

MIB = 1 << 20
# The longest the alert-group events may take to send.
INGEST_LIMIT_S = 300


def report(stubs, addr, node, batches, halt, metadata=(), window=4000):
    """Sends `batches` (lists of Event) on Report streams with at most `window` events
    un-acked, reopening a stream the hub ends (the refused batch is not sent again), until
    they run out or `halt` is set. Returns the events acked and the refusals by code."""
    hub_pb2, hub_pb2_grpc, _ = stubs
    acked_total, refused = 0, {}
    batches = iter(batches)
    batch = next(batches, None)
    while batch is not None and not halt.is_set():
        seqs = {"sent": 0, "acked": 0}
        cond = threading.Condition()

        def requests():
            nonlocal batch
            yield hub_pb2.ReportRequest(hello=hub_pb2.Hello(node=node,
                                                            instance_id=uuid.uuid4().hex))
            while batch is not None and not halt.is_set():
                with cond:
                    if not cond.wait_for(lambda: seqs["sent"] - seqs["acked"] < window,
                                         timeout=0.2):
                        continue
                for e in batch:
                    seqs["sent"] += 1
                    e.seq = seqs["sent"]
                yield hub_pb2.ReportRequest(events=hub_pb2.EventBatch(events=batch))
                batch = next(batches, None)
            with cond:
                cond.wait_for(lambda: seqs["acked"] >= seqs["sent"] or halt.is_set(), 30)

        with grpc.insecure_channel(addr) as channel:
            try:
                for reply in hub_pb2_grpc.HubStub(channel).Report(requests(),
                                                                  metadata=metadata):
                    with cond:
                        acked_total += reply.ack.acked_seq - seqs["acked"]
                        seqs["acked"] = reply.ack.acked_seq
                        cond.notify_all()
                    if batch is None and seqs["acked"] >= seqs["sent"]:
                        break
            except grpc.RpcError as err:
                refused[err.code().name] = refused.get(err.code().name, 0) + 1
                time.sleep(0.2)
    return acked_total, refused


def event(event_pb2, **fields):
    e = event_pb2.Event(pid=4242, tid=4242, errno=24, errno_name="EMFILE", **fields)
    e.ts.GetCurrentTime()
    return e


def in_thread(target, *args):
    result = {}
    thread = threading.Thread(target=lambda: result.update(value=target(*args)), daemon=True)
    thread.start()
    return thread, result


def big_identity(bins, stubs, workdir, sizes):
    """Item 4: a reporter sends events with a 1 MiB `cgroup_path` (3 per batch) while one
    subscriber reads an item a second; the hub (file database, retention keeping 64 rows)
    is sampled for RSS until the time is up or it passes the cap."""
    hub_pb2, hub_pb2_grpc, event_pb2 = stubs
    secs, cap = sizes["big_secs"], sizes["big_rss_cap_mib"] * 1024
    hub_child = start([str(bins / "hub"), "--listen", "127.0.0.1:0", "--db",
                       str(workdir / "hub.db"), "--retention-rows", "64",
                       "--retention-interval", "1s"], workdir / "hub.log")
    hub, addr = hub_child.proc, hub_child.ready["listen"]
    halt = threading.Event()
    channel = grpc.insecure_channel(addr)
    stream = hub_pb2_grpc.HubStub(channel).Subscribe(hub_pb2.SubscribeRequest(follow=True))

    def slow_reader():
        try:
            for _ in stream:
                if halt.wait(1):
                    return
        except grpc.RpcError:
            pass

    path = "/" + "x" * (MIB - 1)
    batches = ([event(event_pb2, comm="big", cgroup_path=path) for _ in range(3)]
               for _ in itertools.count())
    try:
        threading.Thread(target=slow_reader, daemon=True).start()
        sender, sent = in_thread(report, stubs, addr, "big-identity", batches, halt, (), 6)
        rss_start = status_kib(hub.pid, "VmRSS")
        peak, over_at, t0 = rss_start, None, time.monotonic()
        while time.monotonic() - t0 < secs and hub.poll() is None:
            time.sleep(0.25)
            rss = status_kib(hub.pid, "VmRSS")
            peak = max(peak, rss)
            if rss > cap:
                over_at = time.monotonic() - t0
                break
        rss_end = status_kib(hub.pid, "VmRSS") if hub.poll() is None else None
        halt.set()
        stream.cancel()
        sender.join(timeout=60)
        acked, refused = sent.get("value", (None, {}))
        return {
            "secs": secs, "cap_mib": sizes["big_rss_cap_mib"], "rss_start_mib": rss_start / 1024,
            "rss_peak_mib": peak / 1024, "rss_end_mib": rss_end and rss_end / 1024,
            "over_cap_at_s": over_at, "elapsed_s": time.monotonic() - t0,
            "events_acked": acked, "refused": refused, "hub_exit": hub.poll(),
        }
    finally:
        halt.set()
        channel.close()
        hub_child.stop(check=False)


def h2_squatters(bins, stubs, workdir, sizes):
    """Item 7: a hub requiring tokens; nobody opens HTTP/2 connections from 127.0.0.2 that
    answer pings and never make a call. A client with a valid read token (from 127.0.0.1)
    calls ListTappers once a second meanwhile (5 s deadline each)."""
    hub_pb2, hub_pb2_grpc, _ = stubs
    conns, hold = sizes["h2_conns"], sizes["h2_hold"]
    tokens = workdir / "tokens"
    tokens.write_text("read bench-read-token\nreport bench-report-token\n")
    hub_child = start([str(bins / "hub"), "--listen", "127.0.0.1:0", "--db", ":memory:",
                       "--tokens", str(tokens)], workdir / "hub.log")
    hub, addr = hub_child.proc, hub_child.ready["listen"]
    auth = (("authorization", "Bearer bench-read-token"),)

    def served():
        t = time.monotonic()
        with grpc.insecure_channel(addr) as channel:
            try:
                hub_pb2_grpc.HubStub(channel).ListTappers(hub_pb2.ListTappersRequest(),
                                                          metadata=auth, timeout=5)
                return time.monotonic() - t
            except grpc.RpcError:
                return None

    attacker = None
    try:
        before = served()
        attacker = IdleConns(addr, conns, hold, "127.0.0.2", h2=True)
        calls, end = [], time.monotonic() + hold
        while time.monotonic() < end:
            t = time.monotonic()
            calls.append(served())
            time.sleep(max(0.0, 1 - (time.monotonic() - t)))
        open_at_end = attacker.open_at_end()
        ok = [c for c in calls if c is not None]
        return {
            "connections": conns, "hold_s": hold, "opened": attacker.opened,
            "open_at_end": open_at_end, "served_before_s": before,
            "calls": len(calls), "served": len(ok),
            "first_served_call": next((i for i, c in enumerate(calls) if c is not None), None),
            "served_p50_s": nearest(ok, 0.5),
        }
    finally:
        kill(attacker and attacker.proc)
        hub_child.stop(check=False)


class PostSizes(http.server.BaseHTTPRequestHandler):
    """A stand-in Alertmanager: accepts every POST and records its body's size."""
    sizes = []

    def do_POST(self):  # noqa: N802 (the http.server name)
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).sizes.append(len(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def alert_groups(bins, stubs, workdir, sizes):
    """Item 9: a rule grouped by `comm` (threshold 1); a report-token holder's client sends
    one event per distinct comm. Figures: firing alerts (`hub_alerts_firing`), hub RSS,
    and the POSTs a local receiver got (count, largest body)."""
    _, _, event_pb2 = stubs
    groups = sizes["alert_groups"]
    rules = workdir / "rules.toml"
    rules.write_text('[[rule]]\nname = "PerComm"\nthreshold = 1\nwindow = "10m"\n'
                     'group_by = ["comm"]\n')
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type(
        "Receiver", (PostSizes,), {"sizes": []}))
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hub_child = start([str(bins / "hub"), "--listen", "127.0.0.1:0", "--db", ":memory:",
                       "--metrics-listen", "127.0.0.1:0", "--alert-rules", str(rules),
                       "--alertmanager", f"http://127.0.0.1:{receiver.server_port}"],
                      workdir / "hub.log")
    hub, addr, metrics = hub_child.proc, hub_child.ready["listen"], hub_child.ready["metrics"]

    def firing():
        return sum(v for (name, _), v in scrape(metrics).items()
                   if name == "hub_alerts_firing")

    try:
        rss_start = status_kib(hub.pid, "VmRSS")
        batches = ([event(event_pb2, comm=f"c{i:07d}") for i in range(b, min(b + 1000, groups))]
                   for b in range(0, groups, 1000))
        t0 = time.monotonic()
        # Bounded: a hub that refuses every stream ends the attack after INGEST_LIMIT_S.
        halt = threading.Event()
        timer = threading.Timer(INGEST_LIMIT_S, halt.set)
        timer.start()
        acked, refused = report(stubs, addr, "alert-groups", batches, halt)
        timer.cancel()
        ingest_s = time.monotonic() - t0
        # Until the firing count and the POSTs have stood still for 2 s (at most settle s).
        last, still, end = None, 0.0, time.monotonic() + sizes["alert_settle"]
        while time.monotonic() < end and still < 2:
            now = (firing(), len(receiver.RequestHandlerClass.sizes))
            still = still + 0.25 if now == last else 0.0
            last = now
            time.sleep(0.25)
        posts = receiver.RequestHandlerClass.sizes
        log_lines = len((workdir / "hub.log").read_text(errors="replace").splitlines())
        return {
            "groups": groups, "events_acked": acked, "refused": refused,
            "ingest_s": ingest_s, "firing": last[0] if last else None,
            "rss_start_mib": rss_start / 1024, "rss_mib": status_kib(hub.pid, "VmRSS") / 1024,
            "posts": len(posts), "largest_post_bytes": max(posts, default=0),
            "posted_bytes": sum(posts), "hub_log_lines": log_lines,
        }
    finally:
        hub_child.stop(check=False)
        receiver.shutdown()
