"""The tapper's in-kernel rate limit through the real hub: an error storm from a real
process is shipped as few events, and the hub's GetStats totals (which count each event as
1 + suppressed) equal the tapper's kernel counts exactly."""

import json
import signal
import subprocess
import time

import pytest

from test_grpcurl import grpcurl_run

NODE = "storm-node"


def get_stats(grpcurl, hub, **query):
    out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/GetStats", data={"node": [NODE], **query})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def final_counters(log):
    for line in reversed(log.read_text().splitlines()):
        if line.startswith('{"counters":"final"'):
            return json.loads(line)["stats"]
    pytest.fail(f"no final counters in the tapper's log:\n{log.read_text()}", pytrace=False)


def test_a_storm_is_few_events_at_the_hub_and_its_totals_equal_the_kernel_counts(
        tapper_bin, workload_bin, hub, grpcurl, tmp_path):  # noqa: F811
    from tapperkit.process import ready_fields
    log = tmp_path / "tapper.log"
    with open(log, "wb") as f:
        tapper = subprocess.Popen(
            [str(tapper_bin), "--output", "none", "--counters", "json",
             "--rate-limit", "100", "--rate-limit-burst", "50",
             "--hub", hub.url, "--node-name", NODE],
            stdout=subprocess.DEVNULL, stderr=f)
    try:
        deadline = time.monotonic() + 60
        while not ready_fields(log):
            assert tapper.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        out = subprocess.run(
            [str(workload_bin), "--threads", "2", "--storm", "3", "--fail", "EAFNOSUPPORT=1"],
            capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        manifest = json.loads(out.stdout)
        calls = sum(n for t in manifest["threads"] for n in t["failures"].values())
        assert calls > 10_000, manifest

        # While the tapper runs, the sweep delivers what the storm's key had pending once it
        # has been quiet for a second: the hub's count reaches every failure of the storm.
        def eafnosupport():
            rows = get_stats(grpcurl, hub, group_by=["GROUP_BY_ERRNO"]).get("rows", [])
            return sum(int(r["count"]) for r in rows if r.get("errnoName") == "EAFNOSUPPORT")
        deadline = time.monotonic() + 30
        while eafnosupport() < calls:
            assert time.monotonic() < deadline, f"the hub counts {eafnosupport()} of {calls}"
            time.sleep(0.2)
    finally:
        tapper.send_signal(signal.SIGINT)
        assert tapper.wait(timeout=30) == 0, log.read_text()
    assert "the hub acknowledged every event" in log.read_text(), log.read_text()

    kernel = final_counters(log)
    stats = get_stats(grpcurl, hub, group_by=["GROUP_BY_ERRNO"])
    total, lost = int(stats.get("totalEvents", 0)), int(stats.get("totalLost", 0))
    assert total + lost == kernel["failures"], (stats, kernel)
    if lost == 0:
        by_errno = {r["errnoName"]: int(r["count"]) for r in stats["rows"]}
        assert by_errno == kernel["errnos"], (stats, kernel)
    # Every failure is an event, a drop, or suppressed; a sweep record stands for one of
    # the suppressed failures itself. (Whether the storm's last pending count comes in a
    # sweep record or in the workload's own later failure of that key depends on timing;
    # the sweep record itself is unit-tested in the tapper.)
    shipped = kernel["events_shown"]
    assert kernel["suppressed"] > 0, kernel
    assert shipped == kernel["failures"] - kernel["drops"] - kernel["suppressed"] \
        + kernel["sweep_records"], kernel
    # Few rows: the storm's key had at most the burst and the rate over its seconds.
    assert shipped < calls / 10, kernel
