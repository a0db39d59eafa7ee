"""Values of the sections that attack or flood the hub and the tapper: under attack, the
second attack round, the error storm, and metrics and alerts."""

import statistics

from common import (codes, col, fill, groups, load, loads, machine, nearest, rows, show, spread,
                    total, verdict)
import facts_round2

MIB = 1024


def attack(r):
    o = load(r / "attack.json")
    if o is None:
        return None
    blocks = []
    s = o["churn"]
    if s:
        blocks.append(fill(
            "attack-churn", calls=s[0]["calls"], limit=f"{s[0]['limit_secs']:g}",
            rows=rows([(f"{total(s, 'completed')} of {total(s, 'calls')}",
                        codes(col(s, "refused")), show(col(s, "churn_secs"), 1),
                        show(col(s, "rss_before_kib", 1 / MIB), 1),
                        show(col(s, "rss_after_kib", 1 / MIB), 1),
                        show(col(s, "ingest_before"), 0), show(col(s, "ingest_after"), 0))])))
    if o["acks"]:
        table = []
        for c, s in groups(o["acks"], "getstats_clients"):
            answers = [x["answer_p50_ms"] for x in s if x["answer_p50_ms"] is not None]
            table.append((c, total(s, "batches"), show(col(s, "p50_ms"), 1),
                          show(col(s, "p99_ms"), 1), show(col(s, "max_ms"), 1),
                          total(s, "answers"), "—" if c == 0 else show(answers, 0),
                          "—" if c == 0 else codes(col(s, "errors")),
                          show(col(s, "hub_rss_kib", 1 / MIB), 1)))
        blocks.append(fill("attack-acks", stored=o["acks"][0]["stored"],
                           nodes=o["seed_nodes"], groups=o["groups_per_node"],
                           secs=f"{o['ack_window_secs']:g}", rows=rows(table)))
    if o["stuck"]:
        table = []
        for n, s in groups(o["stuck"], "subscribers"):
            refused = codes(col(s, "refused"))
            table.append((n, f"{total(s, 'opened')} of {total(s, 'subscribers')}"
                          + ("" if refused == "0" else f" (refused: {refused})"),
                          show(col(s, "ingest_per_sec"), 0),
                          show(col(s, "rss_before_kib", 1 / MIB), 1),
                          show(col(s, "rss_after_kib", 1 / MIB), 1), total(s, "evicted"),
                          total(s, "still_open"), total(s, "other_end")))
        queue = o["subscriber_queue"]
        blocks.append(fill(
            "attack-stuck", stall=f"{o['stall_timeout_secs']:g}", rows=rows(table),
            queue="its default queue" if queue is None else f"`--subscriber-queue {queue}`"))
    s = o["conns"]
    if s:
        held = [x["list_ms_held"] for x in s if x["list_ms_held"] is not None]
        timeout = s[0]["handshake_timeout_secs"]
        blocks.append(fill(
            "attack-conns", silent=s[0]["silent"], timeout=f"{timeout:g}",
            after=f"{timeout + 1.5:g}", rows=rows([(
                f"{total(s, 'opened')} of {total(s, 'silent')}", show(col(s, "open_secs"), 1),
                total(s, "still_open"), show(col(s, "fds_before"), 0),
                show(col(s, "fds_peak"), 0), show(col(s, "fds_after"), 0),
                show([x for x in col(s, "list_ms_before") if x is not None], 1),
                show(held, 1), f"{len(held)} of {len(s)}")])))
    return {"events": o["events"], "batch": o["batch"], "window": o["window"],
            "runs": o["runs"], "tables": "\n".join(blocks), **machine(o)}


def round2(r):
    results = load(r / "attack-round2.json")
    return None if results is None else facts_round2.facts(results)


def storm(r):
    s = load(r / "storm.json")
    if s is None:
        return None
    table = []
    for name, runs in s["variants"].items():
        med = lambda k, fmt="{:.1f}": spread(col(runs, k), fmt)  # noqa: E731
        tot = lambda k: total(runs, k)  # noqa: E731
        table.append((
            name, med("per_sec", "{:,.0f}"), med("elapsed"), med("hwm_mib"),
            med("rows", "{:,.0f}"), med("allowed_rows", "{:,.0f}"), med("db_mib"),
            f"{tot('stored_failures'):,}", f"{tot('kernel_failures'):,}",
            f"{tot('suppressed'):,}", f"{tot('lost'):,}",
            f"{tot('kernel_failures') - tot('stored_failures') - tot('lost'):,}"))
    on = next(iter(s["variants"].values()))
    worst_rss = max(x["hwm_mib"] for x in on)
    over = max(x["rows"] - x["allowed_rows"] for x in on)
    closes = all(x["stored_failures"] + x["lost"] == x["kernel_failures"] for x in on)
    return {
        "procs": s["procs"], "storm_rate": f"{s['storm_rate']:,}", "secs": f"{s['secs']:g}",
        "burst": f"{s['burst']:,}", "rate": f"{s['rate']:,}", "runs": s["runs"],
        "load_before": loads(s["load_start"]), "load_after": loads(s["load_end"]),
        "rows": rows(table), "rss_verdict": verdict(worst_rss < 64, "**met**"),
        "worst_rss": f"{worst_rss:.1f}", "growth_verdict": verdict(over <= 0, "**met**"),
        "over": f"{over:,.0f}", "closes": verdict(closes, "**yes**", "**no**"),
    }


def metrics(r):
    m = load(r / "metrics.json")
    if m is None:
        return None
    alerts, scrapes = m["alerts"], m["scrapes"]
    alert_rows = [(label, spread([nearest(x["received_ms"], q) for x in alerts], "{:.2f}"),
                   spread([nearest(x["seen_ms"], q) for x in alerts], "{:.2f}"))
                  for label, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))]
    scrape_rows = []
    for count, shape in m["shape"].items():
        runs = [x[count] for x in scrapes]
        scrape_rows.append((
            f"{count} node{'s' if int(count) > 1 else ''}", shape["series"], shape["bytes"],
            spread([statistics.median(x) for x in runs], "{:.2f}"),
            spread([nearest(x, 0.99) for x in runs], "{:.2f}")))
    return {"bursts": m["bursts"], "runs": m["runs"], "nodes": m["nodes"],
            "scrapes": m["scrapes_per_run"], "alert_rows": rows(alert_rows),
            "scrape_rows": rows(scrape_rows)}
