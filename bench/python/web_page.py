"""The dashboard part of the benchmarks: real failing socket() calls (paced_failures.py),
caught by a real tapper, shipped to a real hub, shown by its page in headless Chromium.
Measures the time from a failure to its row on the open page, the page's main-thread busy
share and heap at a high rate (with a CPU profile's top entries), and the hub's CPU per
streamed event with open pages (SSE) beside the same number of gRPC Subscribe streams.
Writes its results as JSON (bench/python/report.py renders them).

Run by scripts/bench.sh (as root: the tapper loads eBPF)."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from common import nearest
from paced_failures import BASE, COMM
from tapperkit.browser import chromium
from tapperkit.hub import start_hub
from tapperkit.process import start

GENERATOR = Path(__file__).resolve().parent / "paced_failures.py"
NODE = "web-bench"
# Pages per browser: Chromium opens at most six HTTP/1.1 connections per host, and each
# page's event stream holds one for good.
PAGES_PER_BROWSER = 5

# Every visible row's protocol cell (the call's index) with the time it was first seen in
# the DOM (ms since the epoch), recorded right after each render.
WATCH_ROWS_JS = """
window.benchRows = new Map();
const viewport = document.getElementById('viewport');
new MutationObserver(() => {
  const now = performance.timeOrigin + performance.now();
  for (const cell of viewport.querySelectorAll('.item:not([hidden]) .args')) {
    const index = cell.textContent.split(' / ').pop();
    if (!window.benchRows.has(index)) window.benchRows.set(index, now);
  }
}).observe(viewport, {subtree: true, childList: true, characterData: true});
"""
ROWS_SEEN_JS = "return [...window.benchRows.entries()]"
# Animation frames drawn and long tasks (over 50 ms) since the call.
WATCH_FRAMES_JS = """
window.benchFrames = 0;
window.benchLongTasks = 0;
const tick = () => { window.benchFrames += 1; requestAnimationFrame(tick); };
requestAnimationFrame(tick);
new PerformanceObserver((list) => { window.benchLongTasks += list.getEntries().length; })
  .observe({type: 'longtask'});
"""
COUNTS_JS = """
const [shown, received] = document.getElementById('shown').textContent.match(/\\d+/g).map(Number);
const lagged = Number(document.getElementById('lagged').textContent.match(/\\d+/)[0]);
return {shown, received, lagged, frames: window.benchFrames || 0,
        long_tasks: window.benchLongTasks || 0};
"""


def log(msg):
    print(f"[web] {msg}", file=sys.stderr, flush=True)


def wait_for(check, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"web bench: timed out waiting for {what}")
        time.sleep(0.1)
    return result


class Generator:
    """paced_failures.py started and waiting: `pid`, then `go()` and `result()`."""

    def __init__(self, rate, secs, times=False):
        self.proc = subprocess.Popen(
            [sys.executable, str(GENERATOR), "--rate", str(rate), "--secs", str(secs),
             *(["--times"] if times else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = int(self.proc.stdout.readline())

    def go(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def result(self):
        out = self.proc.stdout.readline()
        if self.proc.wait(timeout=60) != 0 or not out:
            raise SystemExit("web bench: the failure generator failed")
        return json.loads(out)


class Pages:
    """`n` tabs showing the hub's page, spread over browsers of PAGES_PER_BROWSER tabs."""

    def __init__(self, stack, n):
        self.tabs = []
        for _ in range(0, n, PAGES_PER_BROWSER):
            driver = chromium()
            stack.callback(driver.quit)
            for i in range(min(PAGES_PER_BROWSER, n - len(self.tabs))):
                if i:
                    driver.switch_to.new_window("window")
                self.tabs.append((driver, driver.current_window_handle))

    def each(self, script):
        """`script`'s result in every tab."""
        out = []
        for driver, handle in self.tabs:
            driver.switch_to.window(handle)
            out.append(driver.execute_script(script))
        return out

    def open(self, hub, pid):
        for driver, handle in self.tabs:
            driver.switch_to.window(handle)
            driver.get(f"{hub.url}/?pid={pid}")
        wait_for(lambda: all(s == "live" for s in self.each(
            "return document.body.dataset.stream || ''")), "the pages' live streams")

    def counts(self):
        return self.each(COUNTS_JS)


def cpu_secs(pid, tid=None):
    """utime + stime of a process (or of its thread `tid`), in seconds."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def renderers(driver):
    """The pids of the Chromium renderer processes under this session's chromedriver."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
    mine = {driver.service.process.pid}
    found = True
    while found:
        found = False
        for pid, ppid in parent.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                found = True
    out = []
    for pid in mine:
        try:
            if b"--type=renderer" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(pid)
        except OSError:
            continue
    return out


def main_thread_cpu(pids):
    """CPU seconds of the renderers' main threads (a renderer's main thread has its pid)."""
    total = 0.0
    for pid in pids:
        try:
            total += cpu_secs(pid, pid)
        except OSError:
            continue
    return total


def latency(hub, rate, secs):
    """ms from each failing call's return to its row in the DOM of one open page."""
    with ExitStack() as stack:
        page = Pages(stack, 1)
        gen = Generator(rate, secs, times=True)
        page.open(hub, gen.pid)
        page.each(WATCH_ROWS_JS)
        gen.go()
        result = gen.result()
        n = result["calls"]
        wait_for(lambda: (c := page.counts()[0])["received"] + c["lagged"] >= n,
                 f"all {n} rows", timeout=30 + secs)
        time.sleep(0.5)
        lagged = page.counts()[0]["lagged"]
        seen = {int(k) - BASE: v for k, v in page.each(ROWS_SEEN_JS)[0]}
    # A row drawn but out of view at once (more arrived in one frame than fit) was drawn no
    # later than the next newer row seen.
    ms, later = [], None
    for i in reversed(range(n)):
        if i in seen:
            later = seen[i] if later is None else min(later, seen[i])
        if later is not None:
            ms.append(later - result["times_ns"][i] / 1e6)
    return {"rate": rate, "secs": secs, "calls": n, "lagged": lagged, "rows_timed": len(ms),
            "rows_seen_directly": len(seen), "p50_ms": nearest(ms, 0.5),
            "p99_ms": nearest(ms, 0.99), "max_ms": max(ms, default=None)}


def metrics(driver):
    got = driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
    return {m["name"]: m["value"] for m in got}


def top_functions(profile, n=8):
    """The profile's functions by self time: [(name, share of the sampled busy time)]."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    self_us = Counter()
    for node_id, delta in zip(profile["samples"], profile["timeDeltas"]):
        frame = nodes[node_id]["callFrame"]
        name = frame["functionName"] or "(anonymous)"
        if frame["url"]:
            name += f" {frame['url'].rsplit('/', 1)[-1]}:{frame['lineNumber'] + 1}"
        self_us[name] += max(delta, 0)
    self_us.pop("(idle)", None)
    busy = sum(self_us.values()) or 1
    return [[name, us / busy] for name, us in self_us.most_common(n)]


def busy(hub, rate, secs, profile_secs):
    """The page's main thread and heap while `rate` failures/s arrive for `secs` seconds,
    then a CPU profile of `profile_secs` at the same rate."""
    with ExitStack() as stack:
        page = Pages(stack, 1)
        driver = page.tabs[0][0]
        gen = Generator(rate, secs + profile_secs)
        page.open(hub, gen.pid)
        page.each(WATCH_FRAMES_JS)
        driver.execute_cdp_cmd("Performance.enable", {"timeDomain": "timeTicks"})
        gen.go()
        time.sleep(min(2.0, secs / 4))  # past the stream's start
        pids = renderers(driver)
        before, counts_before, t0 = metrics(driver), page.counts()[0], time.monotonic()
        cpu_before = main_thread_cpu(pids)
        heap_peak = 0
        while time.monotonic() - t0 < secs - min(2.0, secs / 4):
            time.sleep(min(1.0, secs / 4))
            heap_peak = max(heap_peak, metrics(driver)["JSHeapUsedSize"])
        after, counts_after, wall = metrics(driver), page.counts()[0], time.monotonic() - t0
        cpu = main_thread_cpu(pids) - cpu_before
        driver.execute_cdp_cmd("Profiler.enable", {})
        driver.execute_cdp_cmd("Profiler.setSamplingInterval", {"interval": 200})
        driver.execute_cdp_cmd("Profiler.start", {})
        time.sleep(profile_secs)
        profile = driver.execute_cdp_cmd("Profiler.stop", {})["profile"]
        result = gen.result()
        final = wait_for(lambda: (c := page.counts()[0])["received"] + c["lagged"]
                         >= result["calls"] and c, "the last items", timeout=30)

    def share(name):
        return (after[name] - before[name]) / wall

    arrived = counts_after["received"] - counts_before["received"]
    return {
        "rate": rate, "secs": secs, "achieved_rate": result["calls"] / result["elapsed_secs"],
        "window_secs": wall, "arrived_per_sec": arrived / wall,
        "busy_share": share("TaskDuration"), "main_thread_cpu_share": cpu / wall,
        "script_share": share("ScriptDuration"),
        "layout_share": share("LayoutDuration"), "style_share": share("RecalcStyleDuration"),
        "heap_mib": after["JSHeapUsedSize"] / 2**20, "heap_peak_mib": heap_peak / 2**20,
        "frames_per_sec": (counts_after["frames"] - counts_before["frames"]) / wall,
        "long_tasks": counts_after["long_tasks"] - counts_before["long_tasks"],
        "calls": result["calls"], "received": final["received"], "lagged": final["lagged"],
        "profile_top": top_functions(profile),
    }


def hub_cpu(hub, watch_bin, streams, kind, rate, secs):
    """Hub CPU while `rate` failures/s go to `streams` readers of `kind` (pages, grpc or
    none), and the events those readers got."""
    with ExitStack() as stack:
        gen = Generator(rate, secs)
        readers, outs = None, []
        if kind == "pages":
            readers = Pages(stack, streams)
            readers.open(hub, gen.pid)
        elif kind == "grpc":
            for _ in range(streams):
                out = Path(stack.enter_context(tempfile.NamedTemporaryFile(
                    prefix="web-bench-watch-")).name)
                with open(out, "w") as sink:
                    proc = subprocess.Popen(
                        [str(watch_bin), "watch", "--hub", hub.url, "--json",
                         "--pid", str(gen.pid)], stdout=sink, stderr=subprocess.DEVNULL)
                stack.callback(proc.wait, 10)
                stack.callback(proc.terminate)
                outs.append(out)
            time.sleep(1.0)  # the streams are open
        load_before = os.getloadavg()
        c0 = cpu_secs(hub.proc.pid)
        gen.go()
        result = gen.result()
        n = result["calls"]
        if kind == "none":
            time.sleep(1.0)
            got = []
        else:
            if kind == "pages":
                def tally():
                    return [(c["received"], c["lagged"]) for c in readers.counts()]
            else:
                def tally():
                    return [watch_tally(o) for o in outs]

            def complete():
                """Every reader got every event, or a lagged notice for it."""
                t = tally()
                return t if all(events + lagged >= n for events, lagged in t) else None

            got = wait_for(complete, "every reader's events", timeout=30 + secs)
        cpu = cpu_secs(hub.proc.pid) - c0
        return {"kind": kind, "streams": streams if kind != "none" else 0, "rate": rate,
                "calls": n, "delivered": sum(e for e, _ in got),
                "lagged": sum(lag for _, lag in got), "hub_cpu_secs": cpu,
                "load_before": load_before, "load_after": os.getloadavg()}


def watch_tally(out):
    """(events, skipped in lagged notices) that `hub-client watch --json` wrote to `out`."""
    events = lagged = 0
    for line in out.read_text().splitlines():
        if line.startswith('{"lagged"'):
            lagged += json.loads(line)["lagged"]["skipped"]
        elif line.strip():
            events += 1
    return events, lagged


def one_run(a, workdir):
    hub = start_hub(a.bin / "hub", workdir / "hub.log")
    try:
        tapper = start([str(a.bin / "tapper"), "--output", "none", "--hub", hub.url,
                        "--node-name", NODE, "--comm", COMM.decode(), "--rate-limit", "0"],
                       workdir / "tapper.log", name="tapper")
        try:
            run = {"latency": [], "cpu": []}
            for rate in a.latency_rates:
                log(f"failure -> row at {rate}/s for {a.latency_secs}s")
                run["latency"].append(latency(hub, rate, a.latency_secs))
            log(f"the page at {a.busy_rate}/s for {a.busy_secs}s")
            run["busy"] = busy(hub, a.busy_rate, a.busy_secs, a.profile_secs)
            for kind in ("none", "pages", "grpc"):
                log(f"hub CPU at {a.cpu_rate}/s for {a.cpu_secs}s, {a.streams} readers: {kind}")
                run["cpu"].append(hub_cpu(hub, a.bin / "hub-client", a.streams, kind,
                                          a.cpu_rate, a.cpu_secs))
            return run
        finally:
            tapper.stop(timeout=60, check=False)
    finally:
        hub.stop(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", type=Path, required=True, help="the tapper, hub and hub-client")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--latency-rates", type=lambda s: [int(x) for x in s.split(",")],
                    default=[100, 1000], help="failures/s of the latency runs, e.g. 100,1000")
    ap.add_argument("--latency-secs", type=float, default=10)
    ap.add_argument("--busy-rate", type=int, default=5000)
    ap.add_argument("--busy-secs", type=float, default=60)
    ap.add_argument("--profile-secs", type=float, default=5)
    ap.add_argument("--cpu-rate", type=int, default=1000)
    ap.add_argument("--cpu-secs", type=float, default=10)
    ap.add_argument("--streams", type=int, default=10, help="pages, and gRPC streams")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    load_start = os.getloadavg()
    runs = []
    for r in range(a.runs):
        log(f"run {r + 1}/{a.runs}")
        with tempfile.TemporaryDirectory(prefix="tapper-web-bench-") as tmp:
            runs.append(one_run(a, Path(tmp)))
    a.out.write_text(json.dumps({
        "runs": runs, "latency_secs": a.latency_secs, "busy_secs": a.busy_secs,
        "busy_rate": a.busy_rate, "profile_secs": a.profile_secs, "cpu_rate": a.cpu_rate,
        "cpu_secs": a.cpu_secs, "streams": a.streams, "cores": os.cpu_count(),
        "load_start": load_start, "load_end": os.getloadavg()}, indent=1) + "\n")


if __name__ == "__main__":
    main()
