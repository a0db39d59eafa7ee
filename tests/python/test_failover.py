"""Clients with several hubs: the reporter (`hub-client replay` and the real tapper) and
`hub-client watch` fail over from a SIGKILLed hub to a hub restarted on the same database at
another address; stats and tappers ask the first hub that answers; the order of the list
is honoured; a bad address in a list is a clear error."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from types import SimpleNamespace

from tapperkit.process import ready_fields
from test_tapper_to_hub import wait_for

NODE = "failover-node"
INSTANCE = "failover-instance-1"
EVENTS = 3000


def free_port():
    """A port nothing listens on (bound and released, so no other test gets it at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hub_client(hub_client_bin, hubs, *args, timeout=60):
    return subprocess.run([str(hub_client_bin), "--hub", hubs, *args],
                          capture_output=True, text=True, timeout=timeout)


def stored_items(hub_client_bin, url):
    """Every event and loss record the hub at `url` has stored, in hub_seq order."""
    out = hub_client(hub_client_bin, url, "watch", "--since-seq", "0", "--no-follow", "--json")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def seqs_of(items, instance):
    """Each reporter seq of `instance` as many times as the items cover it."""
    seqs = []
    for item in items:
        if "loss" in item:
            loss = item["loss"]
            if loss.get("instance_id") == instance:
                seqs.extend(range(int(loss["first_seq"]), int(loss["last_seq"]) + 1))
        elif item.get("instance_id") == instance:
            seqs.append(int(item["seq"]))
    return seqs


def hub_seq(item):
    return int(item["loss"]["hub_seq"] if "loss" in item else item["hub_seq"])


def log_fields(log, message):
    """The key=value fields of each line of the reporter's log carrying `message`."""
    return [dict(re.findall(r"(\w+)=(\S+)", line))
            for line in log.read_text(errors="replace").splitlines() if message in line]


def test_reporter_and_watch_fail_over_to_a_hub_restarted_on_the_same_database(
        hub_factory, hub_client_bin, tmp_path):
    db = tmp_path / "shared.db"
    hub_a = hub_factory("--db", str(db))
    port_b = free_port()
    url_b = f"http://127.0.0.1:{port_b}"
    hubs = f"{hub_a.url},{url_b}"

    watch_out = tmp_path / "watch.jsonl"
    watch_err = tmp_path / "watch.log"
    with open(watch_out, "wb") as out, open(watch_err, "wb") as err:
        watch = subprocess.Popen(
            [str(hub_client_bin), "--hub", hubs, "watch", "--since-seq", "0", "--json",
             "--node", NODE, "--count", str(EVENTS)], stdout=out, stderr=err)
    replay_log = tmp_path / "replay.log"
    with open(replay_log, "wb") as err:
        replay = subprocess.Popen(
            [str(hub_client_bin), "replay", "--hub", hubs, "--node", NODE,
             "--instance", INSTANCE, "--synthetic", str(EVENTS), "--interval-ms", "2",
             "--flush-timeout", "120"],
            stdout=subprocess.PIPE, stderr=err, text=True,
            env={**os.environ, "RUST_LOG": "hub_client=debug"})
    try:
        # Mid-stream: A has stored part of the events and the watcher printed some.
        def a_holds_some():
            out = hub_client(hub_client_bin, hub_a.url, "tappers", "--json")
            rows = [json.loads(line) for line in out.stdout.splitlines()]
            return any(int(r.get("events_received", 0)) >= EVENTS // 4 for r in rows)
        wait_for(a_holds_some, "hub A to store a quarter of the events")
        wait_for(lambda: watch_out.stat().st_size > 0, "the watcher to print")
        hub_a.kill()
        acked_by_a = max(int(f["acked"]) for f in log_fields(replay_log, "ack"))
        time.sleep(1)  # B's address refuses connections for a while: failed rounds
        hub_b = hub_factory("--db", str(db), listen=f"127.0.0.1:{port_b}")
        summary_line, _ = replay.communicate(timeout=180)
        assert replay.returncode == 0, replay_log.read_text(errors="replace")
        watch.wait(timeout=60)
        assert watch.returncode == 0, watch_err.read_text(errors="replace")
    finally:
        for proc in (replay, watch):
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    summary = json.loads(summary_line.strip().splitlines()[-1])
    assert summary["flushed"] and summary["acked_seq"] == summary["last_seq"], summary
    assert summary["connects"] >= 2, summary

    # Every seq of the instance is in B's store exactly once, as an event or a loss record.
    items = stored_items(hub_client_bin, hub_b.url)
    seqs = seqs_of(items, INSTANCE)
    assert sorted(seqs) == list(range(1, summary["last_seq"] + 1))
    assert summary["last_seq"] >= EVENTS

    # The reporter said where it went and why; B's Hello ack held everything A acked, and
    # the reporter went on from there: nothing acked was re-sent.
    connected = log_fields(replay_log, "connected to hub")
    assert [c["hub"] for c in connected][:1] == [hub_a.url], connected
    to_b = [c for c in connected if c["hub"] == hub_b.url]
    assert to_b, connected
    assert int(to_b[0]["hub_acked"]) >= acked_by_a, (to_b[0], acked_by_a)
    assert int(to_b[0]["acked"]) == int(to_b[0]["hub_acked"]), to_b[0]
    failed = log_fields(replay_log, "report stream failed")
    assert any(f["hub"] == hub_a.url and f["next"] == url_b for f in failed), failed
    assert "no hub of the list answered" in replay_log.read_text(errors="replace")
    hub_b_log = hub_b.log.read_text(errors="replace")
    assert re.search(rf"tapper connected.*instance={INSTANCE}.*acked={to_b[0]['hub_acked']}\b",
                     hub_b_log), hub_b_log

    # The watcher resumed on B from the hub_seq after its last one: what it printed is
    # exactly B's store, in order, without a repeat or a gap.
    printed = [json.loads(line) for line in watch_out.read_text().splitlines()]
    assert [hub_seq(i) for i in printed] == [hub_seq(i) for i in items][:len(printed)]
    assert sum(1 for i in printed if "loss" not in i) == EVENTS
    resumed = re.findall(r"hub (\S+) failed .*; resuming on (\S+) from hub_seq (\d+)",
                         watch_err.read_text(errors="replace"))
    assert resumed and resumed[0][0] == hub_a.url and resumed[-1][1] == url_b, resumed


def test_the_first_reachable_hub_of_the_list_wins(
        hub_factory, hub_client_bin, replay_to, tmp_path):
    first, second = hub_factory(), hub_factory()
    dead = f"http://127.0.0.1:{free_port()}"

    listed = SimpleNamespace(url=f"{dead},{first.url},{second.url}")
    summary = replay_to(listed, "ordered-node", 20)
    assert summary["connects"] == 1, summary
    on_first = [json.loads(line) for line in hub_client(
        hub_client_bin, first.url, "tappers", "--json").stdout.splitlines()]
    on_second = hub_client(hub_client_bin, second.url, "tappers", "--json").stdout
    assert [t["node"] for t in on_first] == ["ordered-node"], on_first
    assert on_second.strip() == "", "the later hub of the list got the reporter"


def test_stats_and_tappers_answer_from_the_first_live_hub(
        hub_factory, hub_client_bin, replay_to):
    live, other = hub_factory(), hub_factory()
    replay_to(live, "stats-node", 7)
    replay_to(other, "other-node", 3)
    dead = f"http://127.0.0.1:{free_port()}"

    as_list = hub_client(hub_client_bin, f"{dead},{live.url},{other.url}", "stats", "--json")
    assert as_list.returncode == 0, as_list.stderr
    stats = json.loads(as_list.stdout)
    assert stats["total_events"] == 7 and stats["per_node"] == {"stats-node": 7}, stats
    assert dead in as_list.stderr, "the dead hub is named in the log"

    repeated = subprocess.run(
        [str(hub_client_bin), "--hub", dead, "--hub", live.url, "--hub", other.url,
         "stats", "--json"], capture_output=True, text=True, timeout=60)
    assert repeated.returncode == 0, repeated.stderr
    assert json.loads(repeated.stdout) == stats, "repeated flags and a list are the same"

    tappers = hub_client(hub_client_bin, f"{dead},{live.url}", "tappers", "--json")
    assert tappers.returncode == 0, tappers.stderr
    assert [json.loads(line)["node"] for line in tappers.stdout.splitlines()] == ["stats-node"]

    nobody = hub_client(hub_client_bin, f"{dead},http://127.0.0.1:{free_port()}", "stats")
    assert nobody.returncode != 0
    assert "no hub answered" in nobody.stderr and dead in nobody.stderr, nobody.stderr


def test_a_malformed_address_in_a_list_is_a_clear_error(
        hub, hub_client_bin):
    out = hub_client(hub_client_bin, f"{hub.url},nonsense", "stats")
    assert out.returncode == 2, out.stderr
    assert '"nonsense"' in out.stderr and "not a hub address" in out.stderr, out.stderr
    assert "--hub" in out.stderr, out.stderr

    out = hub_client(hub_client_bin, f"{hub.url},", "tappers")
    assert out.returncode == 2 and "not a hub address" in out.stderr, out.stderr

    replay = subprocess.run(
        [str(hub_client_bin), "replay", "--hub", f"{hub.url},ftp://x:1", "--node", "n",
         "--synthetic", "1"], capture_output=True, text=True, timeout=60)
    assert replay.returncode != 0
    assert '"ftp://x:1"' in replay.stderr and "not a hub address" in replay.stderr, \
        replay.stderr


def scrape_hub_connected(metrics_addr):
    """(the help text, the value) of the tapper's `tapper_hub_connected`."""
    with urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    help_text = re.search(r"^# HELP tapper_hub_connected (.*)$", text, re.M).group(1)
    value = re.search(r"^tapper_hub_connected (\d+)$", text, re.M).group(1)
    return help_text, int(value)


def test_the_tapper_fails_over_with_its_hub_list(
        hub_factory, hub_client_bin, tapper_bin, workload_bin, tmp_path):
    """The real tapper (real eBPF, provoked failures) with `--hub A --hub B`: A is
    SIGKILLed, B starts on A's database, and every failure of our workloads is at B once."""
    db = tmp_path / "shared.db"
    hub_a = hub_factory("--db", str(db))
    port_b = free_port()
    url_b = f"http://127.0.0.1:{port_b}"
    node = "tapper-failover-node"
    log = tmp_path / "tapper.log"
    with open(log, "wb") as f:
        tapper = subprocess.Popen(
            [str(tapper_bin), "--probe", "tracepoint", "--output", "none",
             "--comm", "socket-workload", "--hub", hub_a.url, "--hub", url_b,
             "--node-name", node, "--metrics-listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=f, env={**os.environ, "RUST_LOG": "info"})
    try:
        wait_for(lambda: ready_fields(log) or tapper.poll() is not None, "the tapper to attach")
        assert tapper.poll() is None, log.read_text()
        metrics = ready_fields(log)["metrics"]
        wait_for(lambda: scrape_hub_connected(metrics) == (
            f"1 while a Report stream to a hub is open; the hub in use (or tried next) of the "
            f"2 configured: {hub_a.url}", 1), "the tapper to connect to hub A")

        def provoke():
            out = subprocess.run([str(workload_bin), "--threads", "1", "--fail", "EINVAL=7",
                                  "--fail", "EPERM=4"],
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            return json.loads(out.stdout)["pid"]

        def ours_at(url, pids):
            return [i for i in stored_items(hub_client_bin, url)
                    if "loss" not in i and i.get("pid") in pids]

        before = provoke()
        wait_for(lambda: len(ours_at(hub_a.url, {before})) == 11, "hub A to store 11 failures")
        hub_a.kill()
        after = provoke()  # while no hub is up: kept in the tapper's buffer
        hub_b = hub_factory("--db", str(db), listen=f"127.0.0.1:{port_b}")
        wait_for(lambda: scrape_hub_connected(metrics)[1] == 1
                 and scrape_hub_connected(metrics)[0].endswith(url_b), "the tapper to reach B")
        wait_for(lambda: len(ours_at(hub_b.url, {after})) == 11, "hub B to store 11 failures")
        tapper.send_signal(signal.SIGINT)
        assert tapper.wait(timeout=30) == 0, log.read_text()
    finally:
        if tapper.poll() is None:
            tapper.kill()
            tapper.wait()
    text = log.read_text(errors="replace")
    assert "the hub acknowledged every event" in text, text
    assert re.search(rf"report stream failed.*hub={re.escape(hub_a.url)}.*next={url_b}", text), text

    items = stored_items(hub_client_bin, hub_b.url)
    ours = [i for i in items if "loss" not in i and i.get("pid") in {before, after}]
    assert len(ours) == 22, ours
    instance = ours[0]["instance_id"]
    seqs = seqs_of(items, instance)
    assert sorted(seqs) == list(range(1, max(seqs) + 1)), "each seq once, none missing"
