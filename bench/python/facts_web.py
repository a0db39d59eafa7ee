"""The values of the dashboard section (bench/python/web_page.py's results)."""

from common import load, loads, rows, spread, verdict

# The page's main thread at the busy rate: at most this share busy counts as responsive.
RESPONSIVE_SHARE = 0.5


def latency_rows(runs):
    by_rate = {}
    for run in runs:
        for x in run["latency"]:
            by_rate.setdefault(x["rate"], []).append(x)
    return [(f"{rate:,}/s", sum(x["calls"] for x in xs), spread([x["p50_ms"] for x in xs]),
             spread([x["p99_ms"] for x in xs]), spread([x["max_ms"] for x in xs]),
             sum(x["rows_seen_directly"] for x in xs), sum(x["lagged"] for x in xs))
            for rate, xs in sorted(by_rate.items())]


def busy_rows(busy):
    def pct(key):
        return spread([x[key] * 100 for x in busy], "{:.0f} %")

    return [
        ("failures/s generated", spread([x["achieved_rate"] for x in busy], "{:,.0f}")),
        ("items/s arriving at the page", spread([x["arrived_per_sec"] for x in busy],
                                                "{:,.0f}")),
        ("main thread busy (CDP TaskDuration, wall time)", pct("busy_share")),
        ("main thread CPU (utime + stime)", pct("main_thread_cpu_share")),
        ("of it script / layout / style", " / ".join(
            spread([x[k] * 100 for x in busy], "{:.0f} %")
            for k in ("script_share", "layout_share", "style_share"))),
        ("frames drawn per second", spread([x["frames_per_sec"] for x in busy])),
        ("long tasks (over 50 ms)", spread([x["long_tasks"] for x in busy], "{:.0f}")),
        ("JS heap at the end, MiB", spread([x["heap_mib"] for x in busy])),
        ("JS heap peak (sampled each second), MiB",
         spread([x["heap_peak_mib"] for x in busy])),
        ("received / lagged (page counters, whole run)", "; ".join(
            f"{x['received']:,} / {x['lagged']:,} of {x['calls']:,}" for x in busy)),
    ]


def profile_rows(busy):
    """The last run's profile: its top functions by self time."""
    return [(name, f"{share * 100:.1f} %") for name, share in busy[-1]["profile_top"]]


def cpu_rows(runs):
    table, per_kind = [], {}
    for run in runs:
        base = next(x for x in run["cpu"] if x["kind"] == "none")
        base_us = base["hub_cpu_secs"] * 1e6 / max(base["calls"], 1)
        for x in run["cpu"]:
            per_event = x["hub_cpu_secs"] * 1e6 / max(x["calls"], 1)
            streamed = ((x["hub_cpu_secs"] - base["hub_cpu_secs"]) * 1e6 / x["delivered"]
                        if x["delivered"] else None)
            per_kind.setdefault(x["kind"], []).append((x, per_event, streamed, base_us))
    names = {"none": "no reader (ingest only)", "pages": "open pages (SSE)",
             "grpc": "gRPC Subscribe (`hub-client watch`)"}
    for kind in ("none", "pages", "grpc"):
        xs = per_kind.get(kind, [])
        if not xs:
            continue
        table.append((
            names[kind], xs[0][0]["streams"], sum(x["calls"] for x, *_ in xs),
            sum(x["delivered"] for x, *_ in xs), sum(x["lagged"] for x, *_ in xs),
            spread([x["hub_cpu_secs"] for x, *_ in xs], "{:.2f}"),
            spread([p for _, p, _, _ in xs]),
            spread([s for _, _, s, _ in xs if s is not None]) if kind != "none" else "—",
            "; ".join(f"{loads(x['load_before'])} → {loads(x['load_after'])}"
                      for x, *_ in xs)))
    return table


def web(r):
    w = load(r / "web.json")
    if w is None:
        return None
    runs = w["runs"]
    busy = [run["busy"] for run in runs]
    worst = max(x["busy_share"] for x in busy)
    kept_up = all(x["lagged"] == 0 for x in busy)
    return {
        "runs": len(runs), "latency_secs": f"{w['latency_secs']:g}",
        "busy_rate": f"{w['busy_rate']:,}", "busy_secs": f"{w['busy_secs']:g}",
        "profile_secs": f"{w['profile_secs']:g}", "cpu_rate": f"{w['cpu_rate']:,}",
        "cpu_secs": f"{w['cpu_secs']:g}", "streams": w["streams"], "cores": w["cores"],
        "load_before": loads(w["load_start"]), "load_after": loads(w["load_end"]),
        "latency_rows": rows(latency_rows(runs)), "busy_rows": rows(busy_rows(busy)),
        "profile_rows": rows(profile_rows(busy)), "cpu_rows": rows(cpu_rows(runs)),
        "responsive_share": f"{RESPONSIVE_SHARE * 100:.0f} %",
        "responsive": verdict(worst <= RESPONSIVE_SHARE and kept_up, "**met**"),
        "worst_busy": f"{worst * 100:.0f} %",
        "kept_up": verdict(kept_up, "every item arrived (no lagged notice)",
                           "the hub sent lagged notices (counted on the page, never a "
                           "silent drop)"),
    }
