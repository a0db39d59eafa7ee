"""The values each section's template needs, from the parts' JSON results: computed here
for the parts measured by Python drivers, asked of `tapper-bench report` for the others.
`of(key, ...)` returns None when the results directory has nothing for that section."""

import json
import statistics
import subprocess

import round2_render


def load(path):
    return json.loads(path.read_text()) if path.exists() else None


def spread(values, fmt="{:.1f}"):
    """median (min – max), the form of every figure in the report."""
    if not values:
        return "n/a"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))} – " \
           f"{fmt.format(max(values))})"


def loads(values):
    return " / ".join(f"{x:.2f}" for x in values)


def rows(cells):
    return "\n".join("| " + " | ".join(str(c) for c in row) + " |" for row in cells)


def verdict(met, yes="met", no="not met"):
    return f"**{yes if met else no}**"


def ratio(before, after):
    if not before or not after or statistics.median(before) == 0:
        return ""
    return f"{statistics.median(after) / statistics.median(before):.2f}"


# ---- wake-ups: parts 2, 3 and 5 with a kernel wake-up per event, against the default ----

def _wakeup_e2e_rows(before, after):
    out = []

    def pick(o, part, rate):
        return [s for s in (o or {}).get("samples", []) if s["part"] == part
                and s["rate"] == rate and s.get("transport", "plaintext") == "plaintext"]

    latency_rate = next((s["rate"] for s in (after or {}).get("samples", [])
                         if s["part"] == "latency"), None)
    if latency_rate:
        b, a = pick(before, "latency", latency_rate), pick(after, "latency", latency_rate)
        for name, key in [("p50", "p50_us"), ("p99", "p99_us")]:
            bv, av = [s[key] / 1000 for s in b], [s[key] / 1000 for s in a]
            out.append((f"part 3: {name} latency at {latency_rate:,}/s, ms",
                        spread(bv, "{:.2f}"), spread(av, "{:.2f}"), ratio(bv, av)))
    for rate in sorted({s["rate"] for s in (after or {}).get("samples", [])
                        if s["part"] == "throughput"}):
        b, a = pick(before, "throughput", rate), pick(after, "throughput", rate)
        achieved = lambda ss: [s["achieved_rate"] for s in ss]  # noqa: E731
        pct = lambda ss: [100 * s["delivered"] / s["generated"] for s in ss if s["generated"]]  # noqa: E731
        free = lambda ss: f"{sum(s['delivered'] == s['generated'] and s['lost'] == 0 for s in ss)}/{len(ss)}"  # noqa: E731
        closed = lambda ss: sum(s["node_unaccounted"] for s in ss)  # noqa: E731
        out += [
            (f"part 2: failures/s the generating thread achieved at {rate:,}/s",
             spread(achieved(b), "{:,.0f}"), spread(achieved(a), "{:,.0f}"),
             ratio(achieved(b), achieved(a))),
            (f"part 2: own events delivered of generated at {rate:,}/s, %",
             spread(pct(b)), spread(pct(a)), ratio(pct(b), pct(a))),
            (f"part 2: loss-free runs at {rate:,}/s (node unaccounted, sum)",
             f"{free(b)} ({closed(b)})", f"{free(a)} ({closed(a)})", ""),
        ]
    return out


def _wakeup_cost_rows(before, after):
    out = []
    for rate in sorted({s["rate"] for s in (after or {}).get("samples", [])}):
        pick = lambda o: [s for s in (o or {}).get("samples", []) if s["rate"] == rate]  # noqa: E731
        for name, key, scale, fmt in [("CPU %", "cpu_percent", 1, "{:.2f}"),
                                      ("peak RSS MiB", "hwm_kib", 1 / 1024, "{:.1f}"),
                                      ("node failures seen (other processes' too)",
                                       "failures", 1, "{:,.0f}")]:
            bv = [s[key] * scale for s in pick(before)]
            av = [s[key] * scale for s in pick(after)]
            out.append((f"part 5: tapper {name} shipping at {rate:,}/s", spread(bv, fmt),
                        spread(av, fmt), ratio(bv, av)))
    return out


def wakeups(r):
    e2e, cost = load(r / "e2e.json"), load(r / "cost-hub.json")
    if e2e is None and cost is None:
        return None
    table = _wakeup_e2e_rows(load(r / "e2e-wake-every-event.json"), e2e)
    table += _wakeup_cost_rows(load(r / "cost-hub-wake-every-event.json"), cost)
    return {"rows": rows(table)}


# ---- error storm ---------------------------------------------------------------------------

def storm(r):
    s = load(r / "storm.json")
    if s is None:
        return None
    table = []
    for name, runs in s["variants"].items():
        total = lambda k: sum(x[k] for x in runs)  # noqa: E731
        med = lambda k, fmt="{:.1f}": spread([x[k] for x in runs], fmt)  # noqa: E731
        table.append((
            name, med("per_sec", "{:,.0f}"), med("elapsed"), med("hwm_mib"),
            med("rows", "{:,.0f}"), med("allowed_rows", "{:,.0f}"), med("db_mib"),
            f"{total('stored_failures'):,}", f"{total('kernel_failures'):,}",
            f"{total('suppressed'):,}", f"{total('lost'):,}",
            f"{total('kernel_failures') - total('stored_failures') - total('lost'):,}"))
    on = next(iter(s["variants"].values()))
    worst_rss = max(x["hwm_mib"] for x in on)
    over = max(x["rows"] - x["allowed_rows"] for x in on)
    closes = all(x["stored_failures"] + x["lost"] == x["kernel_failures"] for x in on)
    return {
        "procs": s["procs"], "storm_rate": f"{s['storm_rate']:,}", "secs": f"{s['secs']:g}",
        "burst": f"{s['burst']:,}", "rate": f"{s['rate']:,}", "runs": s["runs"],
        "load_before": loads(s["load_start"]), "load_after": loads(s["load_end"]),
        "rows": rows(table), "rss_verdict": verdict(worst_rss < 64),
        "worst_rss": f"{worst_rss:.1f}", "growth_verdict": verdict(over <= 0),
        "over": f"{over:,.0f}", "closes": verdict(closes, "yes", "no"),
    }


# ---- metrics and alerts --------------------------------------------------------------------

def _nearest(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def metrics(r):
    m = load(r / "metrics.json")
    if m is None:
        return None
    alerts, scrapes = m["alerts"], m["scrapes"]
    alert_rows = [(label, spread([_nearest(x["received_ms"], q) for x in alerts], "{:.2f}"),
                   spread([_nearest(x["seen_ms"], q) for x in alerts], "{:.2f}"))
                  for label, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))]
    scrape_rows = []
    for count, shape in m["shape"].items():
        runs = [x[count] for x in scrapes]
        scrape_rows.append((
            f"{count} node{'s' if int(count) > 1 else ''}", shape["series"], shape["bytes"],
            spread([statistics.median(x) for x in runs], "{:.2f}"),
            spread([_nearest(x, 0.99) for x in runs], "{:.2f}")))
    return {"bursts": m["bursts"], "runs": m["runs"], "nodes": m["nodes"],
            "scrapes": m["scrapes_per_run"], "alert_rows": rows(alert_rows),
            "scrape_rows": rows(scrape_rows)}


# ---- second attack round -------------------------------------------------------------------

def round2(r):
    results = load(r / "attack-round2.json")
    return None if results is None else round2_render.facts(results)


# ---- the parts the Rust drivers measure ----------------------------------------------------

def rust(key, results, bin_dir):
    out = subprocess.run([str(bin_dir / "tapper-bench"), "report", "--results", str(results),
                          "--section", key], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


PYTHON = {"wakeups": wakeups, "storm": storm, "metrics": metrics, "round2": round2}


def of(key, results, bin_dir):
    if key in PYTHON:
        return PYTHON[key](results)
    return rust(key, results, bin_dir)
