"""The hub's HTTP/JSON API on its gRPC port, with real clients (urllib, http.client, curl,
grpcurl) against a real hub fed by `hub-client replay`: exact counts and paging, each filter,
Server-Sent Events live and across a restart, errors (400, 401, 403, 429), the login cookie,
the base path, --no-web, and gRPC on the same port."""

import gzip
import http.client
import json
import re
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tapperkit import pki
from tapperkit.net import free_port
from test_grpcurl import grpcurl_run
from test_tls import ADMIN, READ, REPORT, certs, tokens_file  # noqa: F401  (fixtures)

def event_line(n, comm="worker", pid=100, errno=24, errno_name="EMFILE", pod=None,
               container=None):
    """An event in the tapper's `--output json` schema."""
    return json.dumps({
        "ts": "2026-11-25T12:00:00.000000001Z", "pid": pid, "tid": pid, "ppid": None,
        "uid": 0, "gid": 0, "comm": comm, "exe": None, "cmdline": f"{comm} --n {n}",
        "cgroup_id": 1, "family": 2, "family_name": "AF_INET", "type": 1,
        "type_name": "SOCK_STREAM", "protocol": 0, "protocol_name": "IPPROTO_IP",
        "errno": errno, "errno_name": errno_name, "message": "m", "duration_ns": 1,
        "probe": "tracepoint", "source": "syscall", "cgroup_path": None,
        "container": container, "pod": pod, "quota": None, "suppressed": 0,
    })


def replay_file(hub_client_bin, hub, node, lines, tmp_path):
    path = tmp_path / f"{node}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = subprocess.run([str(hub_client_bin), "replay", "--hub", hub.url, "--node", node,
                          "--file", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["acked_seq"] == len(lines)


def call(hub, path, method="GET", headers=None, body=None, base=""):
    """(status, headers, body as JSON or text) of one HTTP/1.1 call."""
    req = urllib.request.Request(f"http://{hub.addr}{base}{path}", method=method,
                                 headers=headers or {},
                                 data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=10) as reply:
            status, hdrs, text = reply.status, reply.headers, reply.read().decode()
    except urllib.error.HTTPError as err:
        status, hdrs, text = err.code, err.headers, err.read().decode()
    if hdrs.get("content-type", "").startswith("application/json"):
        return status, hdrs, json.loads(text)
    return status, hdrs, text


def get(hub, path, **kw):
    status, _, body = call(hub, path, **kw)
    assert status == 200, (path, status, body)
    return body


def all_items(hub, query, limit):
    """Every stored item for `query`, page by page with since_hub_seq; the page count."""
    items, since, pages = [], 0, 0
    while True:
        page = get(hub, f"/api/v1/events?{query}&limit={limit}&since_hub_seq={since}")
        items += page["items"]
        pages += 1
        since = page["next_hub_seq"]
        if not page["more"]:
            return items, pages


class Sse:
    """A `follow=true` stream read message by message with http.client."""

    def __init__(self, addr, path, headers=None, rcvbuf=None):
        host, port = addr.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        if rcvbuf:
            self.conn.connect()
            self.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.conn.request("GET", path, headers=headers or {})
        self.reply = self.conn.getresponse()

    def next(self):
        """The next message as a dict (event, data, id), keep-alive comments skipped."""
        msg = {}
        while True:
            line = self.reply.readline().decode()
            assert line, f"stream ended; got so far {msg}"
            line = line.rstrip("\n")
            if not line:
                if msg:
                    return msg
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            msg[key] = value.removeprefix(" ")

    def close(self):
        self.conn.close()


def test_events_counts_exactly_and_pages_without_gap_or_duplicate(hub, replay):
    replay("n1", 30)
    replay("n2", 7)
    page = get(hub, "/api/v1/events")
    assert len(page["items"]) == 37 and not page["more"]
    assert sorted({i["node"] for i in page["items"]}) == ["n1", "n2"]
    assert [i["hub_seq"] for i in page["items"]] == list(range(1, 38))
    items, pages = all_items(hub, "node=n1", limit=7)
    assert pages == 5
    assert [i["seq"] for i in items] == list(range(1, 31))
    again = get(hub, f"/api/v1/events?since_hub_seq={page['next_hub_seq']}")
    assert again == {"items": [], "next_hub_seq": page["next_hub_seq"], "more": False}


def test_each_filter_selects_and_hides(hub, hub_client_bin, tmp_path):
    shop = {"namespace": "shop", "name": "cart-1", "uid": None, "labels": {}}
    lines = [
        event_line(1, comm="nginx", pid=11, pod=shop,
                   container={"id": "abcdef123456", "name": "web", "runtime": None,
                              "image": None}),
        event_line(2, comm="curl", pid=12, errno=97, errno_name="EAFNOSUPPORT"),
        event_line(3, comm="curl", pid=13, errno=22, errno_name="EINVAL"),
    ]
    replay_file(hub_client_bin, hub, "a", lines, tmp_path)
    replay_file(hub_client_bin, hub, "b", [event_line(4, comm="redis", pid=14)], tmp_path)

    def cmdlines(query):
        return sorted(i["cmdline"] for i in get(hub, f"/api/v1/events?{query}")["items"])

    assert cmdlines("node=a") == ["curl --n 2", "curl --n 3", "nginx --n 1"]
    assert cmdlines("node=b") == ["redis --n 4"]
    assert cmdlines("namespace=shop") == ["nginx --n 1"]
    assert cmdlines("namespace=other") == []
    assert cmdlines("pod=cart-*") == ["nginx --n 1"]
    assert cmdlines("container=web") == ["nginx --n 1"]
    assert cmdlines("comm=cu*") == ["curl --n 2", "curl --n 3"]
    assert cmdlines("pid=12,14") == ["curl --n 2", "redis --n 4"]
    assert cmdlines("pid=12&pid=13") == ["curl --n 2", "curl --n 3"]
    # Names, numbers and aliases, as gRPC takes them.
    assert cmdlines("errno=EINVAL,97") == ["curl --n 2", "curl --n 3"]
    assert cmdlines("errno=24&node=a") == ["nginx --n 1"]
    assert len(cmdlines("kind=event")) == 4
    assert cmdlines("kind=warning") == []
    assert get(hub, "/api/v1/warnings")["items"] == []


def test_bad_input_is_400_with_a_json_message(hub):
    for query, needle in [
        ("x=1", 'unknown query parameter "x"; use one of node, namespace'),
        ("errno=ENOPE", "ENOPE"),
        ("pid=abc", "pid"),
        ("kind=nope", "kind"),
        ("since_hub_seq=1&since=15m", "not both"),
        ("since=yesterday", "since"),
        ("comm=a,b", "one glob"),
        ("limit=0", "limit"),
    ]:
        status, headers, body = call(hub, f"/api/v1/events?{query}")
        assert status == 400, (query, body)
        assert headers["content-type"] == "application/json"
        assert needle in body["error"], (query, body)
    status, _, body = call(hub, "/api/v1/warnings?kind=event")
    assert status == 400 and "not a warning kind" in body["error"]
    status, _, body = call(hub, "/api/v1/stats?group_by=colour")
    assert status == 400 and "use node, errno" in body["error"]
    status, _, body = call(hub, "/api/v1/nothing")
    assert status == 404 and "error" in body


def test_stats_and_tappers_answer_what_the_rpcs_answer(hub, replay):
    replay("n1", 8)
    replay("n2", 4)
    stats = get(hub, "/api/v1/stats?group_by=node&window=15m")
    assert stats["total_events"] == 12
    assert {r["node"]: r["count"] for r in stats["rows"]} == {"n1": 8, "n2": 4}
    assert get(hub, "/api/v1/stats?node=n2")["per_node"] == {"n2": 4}
    tappers = get(hub, "/api/v1/tappers")["tappers"]
    assert sorted(t["node"] for t in tappers) == ["n1", "n2"]
    assert get(hub, "/api/v1/tappers?connected=true")["tappers"] == []
    # Time buckets for a chart: AUTO cuts 15 minutes into 30 s buckets, which add up.
    chart = get(hub, "/api/v1/stats?group_by=errno&window=15m&bucket=AUTO")
    assert chart["bucket_seconds"] == 30
    assert 30 <= len(chart["buckets"]) <= 31
    assert sum(b["total_events"] for b in chart["buckets"]) == 12
    assert sum(r["count"] for b in chart["buckets"] for r in b["rows"]) == 12
    chart = get(hub, "/api/v1/stats?window=1h&bucket=10m")
    assert chart["bucket_seconds"] == 600
    assert sum(b["total_events"] for b in chart["buckets"]) == 12
    assert call(hub, "/api/v1/stats?window=1h&bucket=1s")[0] == 400


def test_sse_follow_gets_history_then_live_events(hub, replay):
    replay("n1", 3)
    stream = Sse(hub.addr, "/api/v1/events?follow=true&since_hub_seq=0")
    assert stream.reply.status == 200
    assert stream.reply.getheader("content-type").startswith("text/event-stream")
    try:
        replay("n1", 4)
        got = [stream.next() for _ in range(7)]
        assert [m["event"] for m in got] == ["event"] * 7
        assert [int(m["id"]) for m in got] == list(range(1, 8))
        assert [json.loads(m["data"])["hub_seq"] for m in got] == list(range(1, 8))
    finally:
        stream.close()


def test_sse_resumes_across_a_hub_restart_without_gap_or_duplicate(hub_factory, replay_to,
                                                                   tmp_path):
    db = str(tmp_path / "hub.db")
    port = free_port()
    hub = hub_factory("--db", db, listen=f"127.0.0.1:{port}")
    replay_to(hub, "n1", 5)
    stream = Sse(hub.addr, "/api/v1/events?follow=true&since_hub_seq=1")
    seen = [int(stream.next()["id"]) for _ in range(5)]
    stream.close()
    hub.stop()
    hub = hub_factory("--db", db, listen=f"127.0.0.1:{port}")
    replay_to(hub, "n1", 3)
    # A reconnecting EventSource sends the last id it got.
    stream = Sse(hub.addr, "/api/v1/events?follow=true",
                 headers={"Last-Event-ID": str(seen[-1])})
    try:
        seen += [int(stream.next()["id"]) for _ in range(3)]
        replay_to(hub, "n2", 2)
        seen += [int(stream.next()["id"]) for _ in range(2)]
    finally:
        stream.close()
    assert seen == list(range(1, 11))
    # The same resume point as a query parameter.
    items = get(hub, "/api/v1/events?since_hub_seq=6")["items"]
    assert [i["hub_seq"] for i in items] == list(range(6, 11))


def test_a_stream_over_max_subscribers_is_429_with_advice(hub_factory):
    hub = hub_factory("--max-subscribers", "1")
    first = Sse(hub.addr, "/api/v1/events?follow=true")
    try:
        assert first.reply.status == 200
        status, headers, body = call(hub, "/api/v1/events?follow=true")
        assert status == 429
        assert "--max-subscribers" in body["error"] and "try again later" in body["error"]
        assert int(headers["retry-after"]) > 0
    finally:
        first.close()


def test_a_stuck_browser_is_dropped_and_frees_its_subscriber_slot(hub_factory, replay_to):
    hub = hub_factory("--max-subscribers", "1", "--subscriber-stall-timeout", "1s")
    stuck = Sse(hub.addr, "/api/v1/events?follow=true", rcvbuf=4096)
    try:
        assert stuck.reply.status == 200
        assert call(hub, "/api/v1/events?follow=true")[0] == 429
        # The stuck client reads nothing while far more arrives than the socket buffers
        # (up to 4 MiB) and its queue hold; what follows finds its queue still full after
        # the stall timeout, and the hub drops it.
        deadline = time.monotonic() + 60
        while True:
            replay_to(hub, "n1", 10000)
            other = Sse(hub.addr, "/api/v1/events?follow=true")
            status = other.reply.status
            other.close()
            if status != 429:
                break
            assert time.monotonic() < deadline, "the stuck stream still holds its slot"
            time.sleep(0.5)
        assert status == 200
    finally:
        stuck.close()


def test_a_reader_that_stops_reading_is_told_what_it_missed_in_lagged_notices(hub_factory,
                                                                            replay_to):
    hub = hub_factory("--subscriber-queue", "16", "--subscriber-stall-timeout", "5m")
    slow = Sse(hub.addr, "/api/v1/events?follow=true", rcvbuf=4096)
    try:
        assert slow.reply.status == 200
        # The reader stops reading while far more arrives than the socket buffers (up to
        # 4 MiB) and its queue of 16 hold; then it reads everything.
        n = 20000
        replay_to(hub, "n1", n)
        last_id, events, lagged, pending_lag = 0, 0, 0, 0
        while events + lagged < n:
            msg = slow.next()
            if msg["event"] == "lagged":
                assert "id" not in msg, msg
                count = json.loads(msg["data"])["lagged"]
                assert count > 0, msg
                lagged += count
                pending_lag += count
                continue
            assert msg["event"] == "event", msg
            hub_seq = int(msg["id"])
            # Every gap in the stream is exactly what the notices before it announced.
            assert hub_seq - last_id - 1 == pending_lag, (last_id, hub_seq, pending_lag)
            last_id, pending_lag = hub_seq, 0
            events += 1
        assert events + lagged == n and lagged > 0 and events > 0, (events, lagged)
        assert last_id + pending_lag == n, (last_id, pending_lag)
    finally:
        slow.close()


def test_tokens_guard_the_api_and_the_login_sets_a_strict_cookie(hub_factory, tokens_file):
    hub = hub_factory("--tokens", str(tokens_file))
    assert call(hub, "/api/v1/events")[0] == 401
    assert call(hub, "/api/v1/events", headers={"Authorization": "Bearer wrong-token-xxxxxxx"}
                )[0] == 401
    assert call(hub, "/api/v1/events", headers={"Authorization": f"Bearer {READ}"})[0] == 200
    assert call(hub, "/api/v1/stats", headers={"Authorization": f"Bearer {ADMIN}"})[0] == 200
    assert call(hub, "/api/v1/tappers", headers={"Authorization": f"Bearer {REPORT}"}
                )[0] == 403
    # The page needs no token; it shows no data before the login.
    status, headers, _ = call(hub, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert get(hub, "/api/v1/session") == {"auth_required": True, "logged_in": False}

    assert call(hub, "/api/v1/session", method="POST", body={"token": REPORT})[0] == 403
    assert call(hub, "/api/v1/session", method="POST", body={"token": "x" * 20})[0] == 401
    status, headers, body = call(hub, "/api/v1/session", method="POST", body={"token": READ})
    assert status == 200 and body == {"auth_required": True, "logged_in": True}
    cookie = headers["set-cookie"]
    flags = [f.strip() for f in cookie.split(";")]
    assert flags[0].startswith("tapper_session=") and len(flags[0]) > 40
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(flags)
    assert "Secure" not in flags  # plaintext loopback; over TLS it is Secure
    session = {"Cookie": flags[0]}
    assert get(hub, "/api/v1/session", headers=session)["logged_in"] is True
    assert call(hub, "/api/v1/events", headers=session)[0] == 200
    status, headers, _ = call(hub, "/api/v1/session", method="DELETE", headers=session)
    assert status == 200 and "Max-Age=0" in headers["set-cookie"]
    assert call(hub, "/api/v1/events", headers=session)[0] == 401


def test_the_cookie_is_secure_over_tls(hub_factory, certs, tokens_file):
    hub = hub_factory("--tls-cert", str(certs["server"]),
                      "--tls-key", str(pki.key_of(certs["server"])),
                      "--tokens", str(tokens_file))
    ctx = ssl.create_default_context(cafile=str(certs["ca"]))
    req = urllib.request.Request(f"https://{hub.addr}/api/v1/session", method="POST",
                                 data=json.dumps({"token": READ}).encode())
    with urllib.request.urlopen(req, context=ctx, timeout=10) as reply:
        assert reply.status == 200
        flags = [f.strip() for f in reply.headers["set-cookie"].split(";")]
    assert "Secure" in flags


def test_a_base_path_moves_everything_under_it(hub_factory):
    hub = hub_factory("--web-base-path", "/tapper")
    assert call(hub, "/", base="/tapper")[0] == 200
    assert call(hub, "/index.html", base="/tapper")[0] == 200
    assert get(hub, "/api/v1/events", base="/tapper")["items"] == []
    assert call(hub, "/")[0] == 404
    assert call(hub, "/api/v1/events")[0] == 404
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                          f"http://{hub.addr}/tapper?errno=EMFILE"],
                         capture_output=True, text=True, timeout=10)
    assert out.stdout == f"308 http://{hub.addr}/tapper/?errno=EMFILE"


def test_a_bad_base_path_stops_the_hub_with_one_line(hub_bin):
    out = subprocess.run([str(hub_bin), "--listen", "127.0.0.1:0", "--db", ":memory:",
                          "--web-base-path", "tapper"], capture_output=True, text=True,
                         timeout=10)
    assert out.returncode != 0
    assert "web-base-path" in out.stderr and "start with /" in out.stderr


def test_curl_gets_the_page_and_grpc_works_on_the_same_port(grpcurl, hub, replay):
    out = subprocess.run(["curl", "-s", "-i", f"http://{hub.addr}/"], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("HTTP/1.1 200")
    out = grpcurl_run(grpcurl, hub, "list")
    assert "tapper.v1.Hub" in out.stdout.split()
    replay("n1", 2)
    out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/GetStats")
    assert json.loads(out.stdout)["totalEvents"] == "2"
    # An unknown gRPC method stays a gRPC answer, never a page.
    out = grpcurl_run(grpcurl, hub, "describe", "tapper.v1.Hub")
    assert out.returncode == 0


def test_the_page_and_every_file_it_loads_stay_under_300_kb_compressed(hub):
    """Follows index.html's links and every module's imports, as a browser loads them."""
    todo, sizes = ["index.html"], {}
    while todo:
        path = todo.pop()
        if path in sizes:
            continue
        status, _, body = call(hub, f"/{path}")
        assert status == 200, (path, status)
        sizes[path] = len(gzip.compress(body.encode(), 9))
        folder = path.rpartition("/")[0]
        todo += re.findall(r'(?:src|href)="(assets/[^"]+)"', body)
        todo += [f"{folder}/{name}" for name in re.findall(r'from "\./([^"]+)"', body)]
    assert {"assets/app.js", "assets/list.js", "assets/entry.js"} <= set(sizes), sizes
    assert sum(sizes.values()) < 300 * 1024, sizes


def test_no_web_serves_grpc_only(grpcurl, hub_factory):
    hub = hub_factory("--no-web")
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                          f"http://{hub.addr}/"], capture_output=True, text=True, timeout=10)
    assert out.returncode != 0 or out.stdout != "200", out
    assert "tapper.v1.Hub" in grpcurl_run(grpcurl, hub, "list").stdout.split()


def test_alerts_lists_the_alerts_firing(hub_factory, replay_to, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "Burst"\nerrno = ["EMFILE"]\nthreshold = 3\n'
                     'window = "10m"\ngroup_by = ["node"]\nseverity = "warning"\n')
    hub = hub_factory("--alert-rules", str(rules))
    assert get(hub, "/api/v1/alerts") == {"alerts": []}
    # Synthetic events cycle through four errnos: 12 events hold 3 EMFILE.
    replay_to(hub, "n1", 12)
    replay_to(hub, "n2", 4)
    alerts = get(hub, "/api/v1/alerts")["alerts"]
    assert [(a["labels"]["alertname"], a["labels"]["node"]) for a in alerts] == [("Burst", "n1")]
    plain = hub_factory()
    assert get(plain, "/api/v1/alerts") == {"alerts": []}


def test_a_reload_that_removes_the_token_ends_its_stream_and_its_session(hub_factory, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"read {READ}\nadmin {ADMIN}\n")
    hub = hub_factory("--tokens", str(tokens), "--reload-interval", "200ms")
    status, headers, _ = call(hub, "/api/v1/session", method="POST", body={"token": READ})
    session = {"Cookie": headers["set-cookie"].split(";")[0]}
    stream = Sse(hub.addr, "/api/v1/events?follow=true",
                 headers={"Authorization": f"Bearer {READ}"})
    try:
        assert stream.reply.status == 200
        new = tmp_path / "tokens.new"
        new.write_text(f"admin {ADMIN}\n")
        new.rename(tokens)
        msg = stream.next()
        assert msg["event"] == "error" and "token" in json.loads(msg["data"])["error"]
    finally:
        stream.close()
    assert call(hub, "/api/v1/events", headers=session)[0] == 401
    assert call(hub, "/api/v1/events", headers={"Authorization": f"Bearer {ADMIN}"})[0] == 200
