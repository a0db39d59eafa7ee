"""The real grpcurl (1.8.6, reflection v1alpha only) against the hub: no .proto files."""

import json
import subprocess


def grpcurl_run(grpcurl, hub, *args, data=None, timeout=60):
    cmd = [str(grpcurl), "-plaintext"]
    if data is not None:
        cmd += ["-d", json.dumps(data)]
    cmd += [hub.addr, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return out


def parse_stream(text):
    """grpcurl prints one pretty JSON object per message."""
    dec = json.JSONDecoder()
    objs, i = [], 0
    text = text.strip()
    while i < len(text):
        obj, j = dec.raw_decode(text, i)
        objs.append(obj)
        i = j
        while i < len(text) and text[i].isspace():
            i += 1
    return objs


def test_reflection_lists_services(grpcurl, hub):
    out = grpcurl_run(grpcurl, hub, "list")
    assert out.returncode == 0, out.stderr
    services = out.stdout.split()
    assert "tapper.v1.Hub" in services
    assert "grpc.health.v1.Health" in services
    out = grpcurl_run(grpcurl, hub, "list", "tapper.v1.Hub")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "tapper.v1.Hub.GetStats", "tapper.v1.Hub.ListTappers",
        "tapper.v1.Hub.Report", "tapper.v1.Hub.Subscribe"]
    out = grpcurl_run(grpcurl, hub, "describe", "tapper.v1.Event")
    assert out.returncode == 0, out.stderr
    assert "errno_name" in out.stdout and "google.protobuf.Timestamp ts" in out.stdout
    out = grpcurl_run(grpcurl, hub, "grpc.health.v1.Health/Check")
    assert out.returncode == 0 and '"SERVING"' in out.stdout, out.stdout + out.stderr


def test_subscribe_stats_and_tappers_through_reflection(grpcurl, hub, replay):
    # Live subscription first (it replays from hub_seq 0, so no race with the feed).
    live = subprocess.Popen(
        [str(grpcurl), "-plaintext", "-d", json.dumps({"since_hub_seq": 0, "follow": True,
                                                       "errno": ["EMFILE"]}),
         hub.addr, "tapper.v1.Hub/Subscribe"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    replay("curl-a", 12)
    replay("curl-b", 5, "--kernel-drops", "2")

    # Replay-only (no follow) ends by itself.
    out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/Subscribe",
                      data={"since_hub_seq": "0", "follow": False, "node": ["curl-a"]})
    assert out.returncode == 0, out.stderr
    msgs = parse_stream(out.stdout)
    events = [m["event"] for m in msgs if "event" in m]
    assert len(events) == 12
    assert [int(e["seq"]) for e in events] == list(range(1, 13))
    e = events[0]
    assert e["node"] == "curl-a" and e["errnoName"] == "EMFILE" and e["errno"] == 24
    assert e["message"] == "Too many open files" and e["familyName"] == "AF_INET"
    assert e["ts"].endswith("Z")

    out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/GetStats",
                      data={"group_by": ["GROUP_BY_NODE", "GROUP_BY_ERRNO"]})
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert int(stats["totalEvents"]) == 17
    assert int(stats["totalLost"]) == 2
    assert {k: int(v) for k, v in stats["perNode"].items()} == {"curl-a": 12, "curl-b": 5}
    emfile_a = [r for r in stats["rows"] if r["node"] == "curl-a" and r["errnoName"] == "EMFILE"]
    assert int(emfile_a[0]["count"]) == 3  # 12 events cycling through 4 errnos

    out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/ListTappers")
    assert out.returncode == 0, out.stderr
    tappers = {t["node"]: t for t in json.loads(out.stdout)["tappers"]}
    assert set(tappers) == {"curl-a", "curl-b"}
    assert int(tappers["curl-b"]["eventsReceived"]) == 5
    assert int(tappers["curl-b"]["lossesReported"]) == 2

    # The live subscriber saw exactly the EMFILE events: ceil(12/4) + ceil(5/4) = 3 + 2.
    import time
    deadline = time.monotonic() + 30
    buf = ""
    import os, select
    fd = live.stdout.fileno()
    os.set_blocking(fd, False)
    while True:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            chunk = os.read(fd, 65536).decode()
            buf += chunk
        try:
            got = [m for m in parse_stream(buf) if "event" in m]
        except json.JSONDecodeError:
            got = None
        if got is not None and len(got) >= 5:
            break
        assert time.monotonic() < deadline, f"live grpcurl saw only: {buf!r}"
    live.kill()
    live.wait()
    assert len(got) == 5
    assert all(m["event"]["errnoName"] == "EMFILE" for m in got)


def test_bad_filter_is_invalid_argument(grpcurl, hub):
    out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/Subscribe", data={"errno": ["ENOPE"]})
    assert out.returncode != 0
    assert "InvalidArgument" in out.stderr and "errno[0]" in out.stderr, out.stderr
    out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/GetStats", data={"last_seconds": -5})
    assert "InvalidArgument" in out.stderr and "last_seconds" in out.stderr, out.stderr
