"""The error-storm part of the benchmarks: several processes fail socket() in a tight loop
(about a million failures per second in all) for ten seconds while a tapper ships to a
hub with a file database; the tapper's peak RSS and the database's growth (rows and bytes),
with the in-kernel rate limit on (the default) and off, side by side. Writes its results
as JSON (bench/python/report.py renders them).

Run by scripts/bench.sh (as root: the tapper loads eBPF)."""

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tapperkit.process import start

NODE = "storm"
VARIANTS = [
    ("rate limit on (default: 1,000/s, burst 1,000)", []),
    ("rate limit off (`--rate-limit 0`)", ["--rate-limit", "0"]),
]
RATE, BURST = 1000, 1000
STORM_RATE = 1_000_000


def status_kib(pid, field):
    """A KiB figure of /proc/PID/status, e.g. VmHWM or VmRSS."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def db_bytes(db):
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def final_counters(log):
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith('{"counters":"final"'):
            return json.loads(line)["stats"]
    sys.exit(f"no final counters from the tapper:\n{log.read_text(errors='replace')}")


def one(bins, extra, procs, secs, workdir):
    """One storm: returns the figures of one measurement."""
    db = workdir / "hub.db"
    hub_child = start([str(bins / "hub"), "--listen", "127.0.0.1:0", "--db", str(db)],
                      workdir / "hub.log")
    listen = hub_child.ready["listen"]
    try:
        bytes_before = db_bytes(db)
        log = workdir / "tapper.log"
        tapper = start([str(bins / "tapper"), "--output", "none", "--counters", "json",
                        "--hub", f"http://{listen}", "--node-name", NODE, *extra], log).proc
        # Each process makes its share of STORM_RATE x secs calls; on a machine that cannot
        # keep up it takes longer (a short storm on a loaded machine, many times longer), so
        # the rate is measured, not assumed.
        storm = [subprocess.Popen([str(bins / "tapper-bench"), "generate", "--rate",
                                   str(STORM_RATE // procs), "--duration", str(secs)],
                                  stdout=subprocess.PIPE, text=True) for _ in range(procs)]
        generated, elapsed = 0, 0.0
        for p in storm:
            out, _ = p.communicate(timeout=max(secs * 20, 120))
            result = json.loads(out)
            generated += result["calls"]
            elapsed = max(elapsed, result["elapsed_secs"])
        # Past the rate limit's quiet second, so the sweep has emitted what was pending.
        time.sleep(2)
        hwm = status_kib(tapper.pid, "VmHWM")
        tapper.send_signal(signal.SIGINT)
        tapper.wait(timeout=120)
        kernel = final_counters(log)
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows, failures = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(1 + suppressed), 0) FROM events WHERE node = ?",
                (NODE,)).fetchone()
            lost = conn.execute("SELECT COALESCE(SUM(count), 0) FROM losses WHERE node = ?",
                                (NODE,)).fetchone()[0]
        return {
            "generated": generated, "per_sec": generated / elapsed, "elapsed": elapsed,
            # What the rate limit lets through: each process's key, over the storm's length,
            # and one sweep record per key.
            "allowed_rows": procs * (BURST + RATE * elapsed + 1),
            "kernel_failures": kernel["failures"], "suppressed": kernel["suppressed"],
            "drops": kernel["drops"], "hwm_mib": hwm / 1024, "rows": rows,
            "stored_failures": failures, "lost": lost,
            "db_mib": (db_bytes(db) - bytes_before) / 2**20,
        }
    finally:
        hub_child.stop(timeout=30, check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", type=Path, required=True, help="the tapper, hub, tapper-bench")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--procs", type=int, default=2, help="failing processes")
    ap.add_argument("--secs", type=float, default=10.0)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    load_start = os.getloadavg()
    results = {name: [] for name, _ in VARIANTS}
    for run in range(a.runs):
        for name, extra in VARIANTS:
            print(f"[storm] run {run + 1}/{a.runs}: {name}", file=sys.stderr)
            with tempfile.TemporaryDirectory(prefix="tapper-storm-") as tmp:
                results[name].append(one(a.bin, extra, a.procs, a.secs, Path(tmp)))
    load_end = os.getloadavg()
    a.out.write_text(json.dumps({
        "procs": a.procs, "secs": a.secs, "runs": a.runs, "storm_rate": STORM_RATE,
        "burst": BURST, "rate": RATE, "load_start": load_start, "load_end": load_end,
        "variants": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
