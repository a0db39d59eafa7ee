"""Issue 11's before/after table: parts 2, 3 and 5 measured in the same benchmark run with
the kernel's bounded wake-ups (the default) and with a wake-up for every event
(`--ring-wakeup-interval 0`, the old behaviour), both with the rate limit off. Reads the
JSON results of `tapper-bench e2e` and `tapper-bench cost`; prints a Markdown table.

Run by scripts/bench.sh."""

import argparse
import json
import statistics
from pathlib import Path


def load(path):
    return json.loads(path.read_text()) if path.exists() else None


def spread(values, fmt):
    if not values:
        return "n/a"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))} – " \
           f"{fmt.format(max(values))})"


def ratio(before, after):
    if not before or not after or statistics.median(before) == 0:
        return ""
    return f"{statistics.median(after) / statistics.median(before):.2f}"


def e2e_rows(before, after):
    rows = []
    pick = lambda o, part, rate: [  # noqa: E731
        s for s in (o or {}).get("samples", [])
        if s["part"] == part and s["rate"] == rate and s.get("transport", "plaintext") == "plaintext"]
    latency_rate = next((s["rate"] for s in (after or {}).get("samples", [])
                         if s["part"] == "latency"), None)
    if latency_rate:
        b, a = pick(before, "latency", latency_rate), pick(after, "latency", latency_rate)
        for name, key in [("p50", "p50_us"), ("p99", "p99_us")]:
            bv = [s[key] / 1000 for s in b]
            av = [s[key] / 1000 for s in a]
            rows.append((f"part 3: {name} latency at {latency_rate:,}/s, ms", spread(bv, "{:.2f}"),
                         spread(av, "{:.2f}"), ratio(bv, av)))
    rates = sorted({s["rate"] for s in (after or {}).get("samples", [])
                    if s["part"] == "throughput"})
    for rate in rates:
        b, a = pick(before, "throughput", rate), pick(after, "throughput", rate)
        achieved = lambda ss: [s["achieved_rate"] for s in ss]  # noqa: E731
        rows.append((f"part 2: failures/s the generating thread achieved at {rate:,}/s",
                     spread(achieved(b), "{:,.0f}"), spread(achieved(a), "{:,.0f}"),
                     ratio(achieved(b), achieved(a))))
        pct = lambda ss: [100 * s["delivered"] / s["generated"] for s in ss if s["generated"]]  # noqa: E731
        rows.append((f"part 2: own events delivered of generated at {rate:,}/s, %",
                     spread(pct(b), "{:.1f}"), spread(pct(a), "{:.1f}"), ratio(pct(b), pct(a))))
        free = lambda ss: f"{sum(s['delivered'] == s['generated'] and s['lost'] == 0 for s in ss)}/{len(ss)}"  # noqa: E731
        closed = lambda ss: sum(s["node_unaccounted"] for s in ss)  # noqa: E731
        rows.append((f"part 2: loss-free runs at {rate:,}/s (node unaccounted, sum)",
                     f"{free(b)} ({closed(b)})", f"{free(a)} ({closed(a)})", ""))
    return rows


def cost_rows(before, after):
    rows = []
    for rate in sorted({s["rate"] for s in (after or {}).get("samples", [])}):
        pick = lambda o: [s for s in (o or {}).get("samples", []) if s["rate"] == rate]  # noqa: E731
        for name, key, scale, fmt in [("CPU %", "cpu_percent", 1, "{:.2f}"),
                                      ("peak RSS MiB", "hwm_kib", 1 / 1024, "{:.1f}"),
                                      ("node failures seen (other processes' too)",
                                       "failures", 1, "{:,.0f}")]:
            bv = [s[key] * scale for s in pick(before)]
            av = [s[key] * scale for s in pick(after)]
            rows.append((f"part 5: tapper {name} shipping at {rate:,}/s", spread(bv, fmt),
                         spread(av, fmt), ratio(bv, av)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    r = a.results
    rows = e2e_rows(load(r / "e2e-wake-every-event.json"), load(r / "e2e.json"))
    rows += cost_rows(load(r / "cost-hub-wake-every-event.json"), load(r / "cost-hub.json"))
    md = [
        "## Issue 11: kernel wake-ups, before and after, side by side",
        "",
        "The same build in the same run: *before* wakes the tapper for every event "
        "(`--ring-wakeup-interval 0`), *after* is the default (a wake-up after a quiet spell, "
        "then at most one per millisecond or when the ring is 1/8 full, and a second look "
        "at the ring 2 ms after a drain that found events). Both with `--rate-limit 0`, so "
        "every failure is an event. Plaintext only; median (min – max) over the runs; the "
        "ratio is after ÷ before.",
        "",
        "| figure | before (a wake-up per event) | after (bounded wake-ups) | after ÷ before |",
        "| --- | --- | --- | --- |",
    ]
    md += [f"| {f} | {b} | {af} | {q} |" for f, b, af, q in rows]
    md.append("")
    a.out.write_text("\n".join(md))


if __name__ == "__main__":
    main()
