"""Values of the sections that attack or flood the hub and the tapper: under attack, the
second attack round, the error storm, and metrics and alerts."""

import statistics

from common import codes, fill, load, loads, machine, rows, show, spread, verdict
import facts_round2

MIB = 1024


def attack(r):
    o = load(r / "attack.json")
    if o is None:
        return None
    blocks = []
    churn = o["churn"]
    if churn:
        col = lambda k, scale=1: [x[k] if scale == 1 else x[k] * scale for x in churn]  # noqa: E731
        blocks.append(fill(
            "attack-churn", calls=churn[0]["calls"], limit=f"{churn[0]['limit_secs']:g}",
            rows=rows([(f"{sum(col('completed'))} of {sum(col('calls'))}",
                        codes(col("refused")), show(col("churn_secs"), 1),
                        show(col("rss_before_kib", 1 / MIB), 1),
                        show(col("rss_after_kib", 1 / MIB), 1), show(col("ingest_before"), 0),
                        show(col("ingest_after"), 0))])))
    if o["acks"]:
        table = []
        for c in sorted({s["getstats_clients"] for s in o["acks"]}):
            s = [x for x in o["acks"] if x["getstats_clients"] == c]
            col = lambda k, scale=1: [x[k] if scale == 1 else x[k] * scale for x in s]  # noqa: E731
            answers = [x["answer_p50_ms"] for x in s if x["answer_p50_ms"] is not None]
            table.append((c, sum(col("batches")), show(col("p50_ms"), 1),
                          show(col("p99_ms"), 1), show(col("max_ms"), 1), sum(col("answers")),
                          "—" if c == 0 else show(answers, 0),
                          "—" if c == 0 else codes(col("errors")),
                          show(col("hub_rss_kib", 1 / MIB), 1)))
        blocks.append(fill("attack-acks", stored=o["acks"][0]["stored"],
                           nodes=o["seed_nodes"], groups=o["groups_per_node"],
                           secs=f"{o['ack_window_secs']:g}", rows=rows(table)))
    if o["stuck"]:
        table = []
        for n in sorted({s["subscribers"] for s in o["stuck"]}):
            s = [x for x in o["stuck"] if x["subscribers"] == n]
            col = lambda k, scale=1: [x[k] if scale == 1 else x[k] * scale for x in s]  # noqa: E731
            refused = codes(col("refused"))
            table.append((n, f"{sum(col('opened'))} of {sum(col('subscribers'))}"
                          + ("" if refused == "0" else f" (refused: {refused})"),
                          show(col("ingest_per_sec"), 0), show(col("rss_before_kib", 1 / MIB), 1),
                          show(col("rss_after_kib", 1 / MIB), 1), sum(col("evicted")),
                          sum(col("still_open")), sum(col("other_end"))))
        queue = o["subscriber_queue"]
        blocks.append(fill(
            "attack-stuck", stall=f"{o['stall_timeout_secs']:g}", rows=rows(table),
            queue="its default queue" if queue is None else f"`--subscriber-queue {queue}`"))
    conns = o["conns"]
    if conns:
        col = lambda k: [x[k] for x in conns]  # noqa: E731
        held = [x["list_ms_held"] for x in conns if x["list_ms_held"] is not None]
        timeout = conns[0]["handshake_timeout_secs"]
        blocks.append(fill(
            "attack-conns", silent=conns[0]["silent"], timeout=f"{timeout:g}",
            after=f"{timeout + 1.5:g}", rows=rows([(
                f"{sum(col('opened'))} of {sum(col('silent'))}", show(col("open_secs"), 1),
                sum(col("still_open")), show(col("fds_before"), 0), show(col("fds_peak"), 0),
                show(col("fds_after"), 0),
                show([x for x in col("list_ms_before") if x is not None], 1),
                show(held, 1), f"{len(held)} of {len(conns)}")])))
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
        "rows": rows(table), "rss_verdict": verdict(worst_rss < 64, "**met**"),
        "worst_rss": f"{worst_rss:.1f}", "growth_verdict": verdict(over <= 0, "**met**"),
        "over": f"{over:,.0f}", "closes": verdict(closes, "**yes**", "**no**"),
    }


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
