"""Alert groups are bounded: a holder of a report token who renames its process for every
failure, under a rule grouped by `comm`, gets at most `--alert-max-groups` alerts of their
own, and the rest is counted together in one group (still alerting) and in
hub_alert_groups_capped_total; the log says so once, alert lines are rate-limited, and the
backlog reaches the real Alertmanager in bounded posts."""

import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tapperkit.process import ready_fields
from tapperkit.monitoring import wait_for
from tapperkit.net import scrape
from test_alertmanager import alertmanager  # noqa: F401 (a fixture)

RULE = """
[[rule]]
name = "CommBurst"
threshold = 1
window = "5m"
group_by = ["comm"]
"""
MAX_GROUPS = 300
RENAMES = 1000


def report_renamed(stubs, addr, n):
    """One Report stream of n failures, each from a process with a name of its own."""
    hub_pb2, hub_pb2_grpc, event_pb2 = stubs
    now = Timestamp(seconds=int(time.time()))
    msgs = [hub_pb2.ReportRequest(hello=hub_pb2.Hello(node="renamer", instance_id="i-1"))]
    for start in range(1, n + 1, 100):
        msgs.append(hub_pb2.ReportRequest(events=hub_pb2.EventBatch(events=[
            event_pb2.Event(seq=seq, ts=now, pid=7, comm=f"name-{seq:05d}", errno=24,
                            errno_name="EMFILE")
            for seq in range(start, min(start + 100, n + 1))])))
    with grpc.insecure_channel(addr) as ch:
        acks = [r.ack.acked_seq for r in hub_pb2_grpc.HubStub(ch).Report(iter(msgs), timeout=60)]
    assert acks[-1] == n, acks


def test_a_rename_storm_is_capped_counted_and_delivered_in_bounded_posts(
        hub_factory, alertmanager, stubs, tmp_path):  # noqa: F811
    rules = tmp_path / "rules.toml"
    rules.write_text(RULE)
    hub = hub_factory("--alert-rules", str(rules), "--alertmanager", alertmanager.url,
                      "--alert-max-groups", str(MAX_GROUPS), "--alert-resend-interval", "10m",
                      "--metrics-listen", "127.0.0.1:0")
    metrics = ready_fields(hub.log)["metrics"]
    report_renamed(stubs, hub.addr, RENAMES)

    firing = MAX_GROUPS + 1  # and the one group over max_groups
    capped = ("hub_alert_groups_capped_total", frozenset({("rule", "CommBurst")}))
    wait_for(lambda: scrape(metrics).get(("hub_alerts_firing", frozenset())) == firing,
             f"{firing} alerts firing")
    assert scrape(metrics)[capped] == RENAMES - MAX_GROUPS
    am = frozenset({("alertmanager", alertmanager.url)})
    # Alertmanager is down so far: everything waits, nothing was posted.
    assert scrape(metrics)[("hub_alertmanager_pending_alerts", am)] == firing
    assert scrape(metrics).get(("hub_alertmanager_posts_total", am), 0) == 0

    log = hub.log.read_text()
    assert log.count("alert rule has max_groups groups") == 1, log[-3000:]
    lines = log.count("alert firing")
    assert 0 < lines <= 40, f"{lines} lines about single alerts"  # 20 per 10 s

    alertmanager.start()
    wait_for(lambda: scrape(metrics)[("hub_alertmanager_pending_alerts", am)] == 0,
             "every alert delivered", timeout=60)
    # The backlog went out in more than one post.
    assert scrape(metrics)[("hub_alertmanager_posts_total", am)] >= 2
    delivered = alertmanager.alerts("CommBurst")
    assert len(delivered) == firing
    comms = {a["labels"]["comm"] for a in delivered}
    assert "(over max_groups)" in comms
    assert sorted(comms - {"(over max_groups)"}) == [f"name-{s:05d}" for s in range(1, MAX_GROUPS + 1)]
