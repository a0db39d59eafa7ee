"""The error-storm part of the benchmarks: several processes fail socket() in a tight loop
(about a million failures per second in all) for ten seconds while a tapper ships to a
hub with a file database; the tapper's peak RSS and the database's growth (rows and bytes),
with the in-kernel rate limit on (the default) and off, side by side. Prints a Markdown
section.

Run by scripts/bench.sh (as root: the tapper loads eBPF)."""

import argparse
import json
import os
import signal
import sqlite3
import statistics
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
    hub, listen = hub_child.proc, hub_child.ready["listen"]
    try:
        bytes_before = db_bytes(db)
        log = workdir / "tapper.log"
        tapper = start([str(bins / "tapper"), "--output", "none", "--counters", "json",
                        "--hub", f"http://{listen}", "--node-name", NODE, *extra], log).proc
        # Each process makes its share of STORM_RATE x secs calls; on a machine that cannot
        # keep up it takes longer, so the rate is measured, not assumed.
        storm = [subprocess.Popen([str(bins / "tapper-bench"), "generate", "--rate",
                                   str(STORM_RATE // procs), "--duration", str(secs)],
                                  stdout=subprocess.PIPE, text=True) for _ in range(procs)]
        generated, elapsed = 0, 0.0
        for p in storm:
            out, _ = p.communicate(timeout=secs * 20)
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
        hub.send_signal(signal.SIGINT)
        try:
            hub.wait(timeout=30)
        except subprocess.TimeoutExpired:
            hub.kill()


def med(samples, key, fmt="{:.1f}"):
    values = [s[key] for s in samples]
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))} – " \
           f"{fmt.format(max(values))})"


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
    md = [
        "## 11. Error storm",
        "",
        f"Method: {a.procs} processes call `socket(AF_INET, 12345, i)` (EINVAL), "
        f"{STORM_RATE:,} calls/s in all, for {a.secs:g} s (`tapper-bench generate`; where the "
        "machine cannot keep up they run longer, and *failures/s* is what they achieved), "
        "while a tapper "
        "(`--output none --hub URL`, default probe) ships to a fresh hub with a file "
        "database (SQLite, WAL). After the storm the tapper idles 2 s (the rate limit's "
        "sweep emits what was pending), then stops (SIGINT: it drains and waits for acks). "
        "*Peak RSS* is the tapper's `VmHWM`; *database growth* is the events table's rows "
        "of the node and the database files' growth (db + WAL). With the limit on, the rows "
        f"allowed are {a.procs} keys × (burst {BURST:,} + {RATE:,}/s × the storm's length) "
        "plus a sweep record per key. *Not stored at stop* = kernel failures − failures in "
        "rows − losses: events the tapper still held unacknowledged when its bounded flush "
        "at stop (5 s) ended. "
        f"{a.runs} run(s) per variant, interleaved; median (min – max). Load average "
        f"before/after: {' / '.join(f'{x:.2f}' for x in load_start)} → "
        f"{' / '.join(f'{x:.2f}' for x in load_end)}.",
        "",
        "| variant | failures/s generated | storm s | tapper peak RSS MiB | rows stored | rows "
        "allowed | database growth MiB | failures in rows (Σ 1 + suppressed) | kernel failures "
        "(node) | suppressed | lost (loss records) | not stored at stop |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, _ in VARIANTS:
        s = results[name]
        total = lambda k: sum(x[k] for x in s)  # noqa: E731
        md.append(
            f"| {name} | {med(s, 'per_sec', '{:,.0f}')} | {med(s, 'elapsed')} | "
            f"{med(s, 'hwm_mib')} | {med(s, 'rows', '{:,.0f}')} | "
            f"{med(s, 'allowed_rows', '{:,.0f}')} | {med(s, 'db_mib')} | "
            f"{total('stored_failures'):,} | {total('kernel_failures'):,} | "
            f"{total('suppressed'):,} | {total('lost'):,} | "
            f"{total('kernel_failures') - total('stored_failures') - total('lost'):,} |")
    on = results[VARIANTS[0][0]]
    worst_rss = max(x["hwm_mib"] for x in on)
    over = max(x["rows"] - x["allowed_rows"] for x in on)
    closes = all(x["stored_failures"] + x["lost"] == x["kernel_failures"] for x in on)
    md += [
        "",
        f"Targets with the limit on: tapper RSS under 64 MiB — "
        f"**{'met' if worst_rss < 64 else 'not met'}** (max {worst_rss:.1f} MiB); database "
        "growth at most the rate limit's worth — "
        f"**{'met' if over <= 0 else 'not met'}** (rows stored − rows allowed, worst run: "
        f"{over:,.0f}; other processes' failures on the node count as rows too); stored failures + losses = kernel failures in every run: "
        f"**{'yes' if closes else 'no'}**.",
        "",
    ]
    a.out.write_text("\n".join(md))


if __name__ == "__main__":
    main()
