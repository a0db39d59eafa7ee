"""Values of the sections that measure the tapper and the hub under load: end-to-end
throughput and latency, hub fan-in, the cost of TLS, the tapper's cost, kernel wake-ups and
PostgreSQL replicas."""

from collections import Counter

from common import (col, fill, groups, load, machine, ratio, rows, show, spread, summary, total,
                    verdict)
import parts

TRANSPORTS = {"plaintext": "plaintext", "tls": "TLS"}
KEPT_UP = 0.9  # share of the offered rate a replica setup must deliver live to count


def _transports(samples):
    return [t for t in TRANSPORTS if any(s["transport"] == t for s in samples)]


def _part(o, part):
    return [s for s in o["samples"] if s["part"] == part]


def _loss_free(s):
    return s["delivered"] == s["generated"]


def thresholds(throughput, t):
    """Per run, over transport `t`: the highest achieved rate that was loss-free, and the
    lowest swept rate that was not."""
    best, first_loss = [], []
    for run in sorted({s["run"] for s in throughput}):
        mine = [s for s in throughput if s["run"] == run and s["transport"] == t]
        free = [s["achieved_rate"] for s in mine if _loss_free(s)]
        lost = [s["rate"] for s in mine if not _loss_free(s)]
        best += [max(free)] if free else []
        first_loss += [float(min(lost))] if lost else []
    return best, first_loss


def _e2e_method(o):
    return fill("e2e-method", subscriber_queue=o["subscriber_queue"], probe=o["probe"],
                **machine(o)).strip()


def throughput(r):
    o = load(r / "e2e.json")
    if o is None:
        return None
    tp = _part(o, "throughput")
    rates = sorted({s["rate"] for s in tp})
    runs = len({s["run"] for s in tp})
    transports = _transports(tp)
    bounds = []
    for t in transports:
        best, first = thresholds(tp, t)
        lost = (f"{show(first, 0)} ({len(first)} of {runs} runs lost events)" if first
                else "no loss at any swept rate")
        bounds.append(fill("throughput-bounds", transport=TRANSPORTS[t], best=show(best, 0),
                           lost=lost).strip())
    plain = summary(thresholds(tp, "plaintext")[0])
    target = "" if plain is None else fill(
        "throughput-target", verdict=verdict(plain[0] >= 300_000)).strip() + "\n\n"
    table = []
    for (rate, t), s in groups(tp, "rate", "transport"):
        reasons = Counter()
        for x in s:
            reasons.update(x["lost_by_reason"])
        lost = "0" if not reasons else f"{sum(reasons.values())} (" + ", ".join(
            f"{k}: {v}" for k, v in sorted(reasons.items())) + ")"
        table.append((
            rate, TRANSPORTS[t], show(col(s, "achieved_rate"), 0),
            f"{sum(map(_loss_free, s))}/{len(s)}",
            f"{total(s, 'delivered')} of {total(s, 'generated')}", total(s, "tapper_failures"),
            total(s, "delivered_all"), lost, total(s, "lagged"), total(s, "node_unaccounted"),
            total(s, "unaccounted"), total(s, "duplicates"),
            f"{show(col(s, 'p50_us', 1 / 1000), 1)} / {show(col(s, 'p99_us', 1 / 1000), 1)}"))
    bad = [f"run {s['run'] + 1} at {s['rate']}/s: {s['node_unaccounted']}"
           for s in tp if s["node_unaccounted"] != 0]
    accounting = (fill("throughput-closed").strip() if not bad else
                  f"**Loss accounting does not close** at node level in: {'; '.join(bad)}.")
    foreign = sum(max(s["tapper_failures"] - s["generated"], 0) for s in tp)
    if foreign:
        accounting += " " + fill("throughput-foreign", foreign=foreign).strip()
    return {"method": _e2e_method(o), "secs": f"{o['duration_secs']:g}", "runs": runs,
            "rates": ", ".join(map(str, rates)), "bounds": "\n".join(bounds),
            "target": target, "rows": rows(table), "accounting": accounting}


def latency(r):
    o = load(r / "e2e.json")
    if o is None:
        return None
    lat = _part(o, "latency")
    if not lat:
        return None
    table = [(TRANSPORTS[t], show(col(s, "p50_us", 1 / 1000), 2),
              show(col(s, "p99_us", 1 / 1000), 2), show(col(s, "max_us", 1 / 1000), 2),
              f"{total(s, 'delivered')} / {total(s, 'generated')}", total(s, "unaccounted"))
             for t, s in groups(lat, "transport")]
    plain = summary([x["p99_us"] / 1000 for x in lat if x["transport"] == "plaintext"])
    target = "" if plain is None else (
        f"Target (p99 under 5 ms at 1,000 failures/s, plaintext): {verdict(plain[0] < 5)} — "
        f"median p99 {plain[0]:.2f} ms.")
    return {"rate": lat[0]["rate"], "secs": f"{o['latency_duration_secs']:g}",
            "runs": max(x["run"] for x in lat) + 1, "rows": rows(table), "target": target}


BUILDS = {"before": "before", "after": "this build"}
DB = {"file": "a fresh SQLite file", "memory": "an in-memory SQLite database (`:memory:`)"}


def _us_per_event(s):
    """The hub's CPU per event delivered in the window, in µs (100 % = one core-second/s)."""
    return [x["hub_cpu_percent"] * 1e4 / x["delivered_per_sec"] for x in s
            if x["delivered_per_sec"] > 0]


def fanin(r):
    o = load(r / "fanin.json")
    if o is None:
        return None
    samples = [{"build": "after", **s} for s in o["samples"]]
    table = [(f"{n} × {m}", TRANSPORTS[t], BUILDS[b], n * m,
              show(col(s, "delivered_per_sec"), 0), show(col(s, "hub_cpu_percent"), 1),
              show(_us_per_event(s), 1), show(col(s, "hub_rss_kib", 1 / 1024), 1),
              show(col(s, "hub_hwm_kib", 1 / 1024), 1), show(col(s, "drain_secs"), 1),
              f"{total(s, 'delivered_total')} / {total(s, 'sent')}", total(s, "lost"),
              total(s, "lagged"), show(col(s, "driver_cpu_percent"), 1))
             for (n, m, t, b), s in groups(samples, "reporters", "rate_each", "transport",
                                           "build")]
    return {"subscriber_queue": o["subscriber_queue"], "secs": f"{o['duration_secs']:g}",
            "db": DB[o.get("db", "memory")], "rows": rows(table), **machine(o)}


def tls(r):
    e2e, fan = load(r / "e2e.json"), load(r / "fanin.json")
    if e2e is None or fan is None:  # a comparison of both drivers' results, or none
        return None
    compared = []  # (figure, decimals, {transport: values})
    tp = _part(e2e, "throughput")
    compared.append((f"part {parts.number('throughput')}: highest loss-free rate, "
                     "failures/s", 0, {t: thresholds(tp, t)[0] for t in TRANSPORTS}))
    lat = _part(e2e, "latency")
    rate = lat[0]["rate"] if lat else 0
    for name in ("p50", "p99"):
        compared.append((
            f"part {parts.number('latency')}: {name} latency at {rate}/s, ms", 2,
            {t: [s[f"{name}_us"] / 1000 for s in lat if s["transport"] == t]
             for t in TRANSPORTS}))
    this_build = [x for x in fan["samples"] if x.get("build", "after") == "after"]
    for (n, m), s in groups(this_build, "reporters", "rate_each"):
        for name, decimals, key, scale in [
                ("hub CPU %", 1, "hub_cpu_percent", 1),
                ("delivered/s in window", 0, "delivered_per_sec", 1),
                ("hub RSS MiB", 1, "hub_rss_kib", 1 / 1024),
                ("driver CPU %", 1, "driver_cpu_percent", 1)]:
            compared.append((
                f"part {parts.number('fanin')}, {n} × {m}/s: {name}", decimals,
                {t: col([x for x in s if x["transport"] == t], key, scale)
                 for t in TRANSPORTS}))
    table = []
    for name, d, values in compared:
        plain, tls_ = summary(values["plaintext"]), summary(values["tls"])
        if plain is None or tls_ is None:
            continue
        quotient = f"{tls_[0] / plain[0]:.2f}" if plain[0] > 0 else "—"
        table.append((name, f"{plain[0]:.{d}f}", f"{tls_[0]:.{d}f}", quotient))
    return {"rows": rows(table)} if table else None


def cost(r):
    variants = [o for o in (load(r / f"{name}.json") for name in (
        "cost-local", "cost-hub", "cost-hub-baseline", "cost-hub-latency-first"))
        if o is not None]
    if not variants:
        return None
    blocks = []
    for c in variants:
        table = [(rate, show(col(s, "achieved_rate"), 0), show(col(s, "cpu_percent"), 2),
                  show(_cpu_per_event(s), 2),
                  show([x["wakeups_per_sec"] for x in s if "wakeups_per_sec" in x], 0),
                  show(col(s, "rss_kib", 1 / 1024), 1), show(col(s, "hwm_kib", 1 / 1024), 1),
                  f"{total(s, 'events_received')} / {total(s, 'failures')}", total(s, "drops"))
                 for rate, s in groups(c["samples"], "rate")]
        at_1k = summary([x["cpu_percent"] for x in c["samples"] if x["rate"] == 1000])
        target = "" if at_1k is None else (
            f"Target (under 1 % of one core at 1,000/s): {verdict(at_1k[0] < 1)} — median "
            f"{at_1k[0]:.2f} %, max {at_1k[2]:.2f} %.\n")
        blocks.append(fill(
            "cost-variant", variant=c["variant"], probe=c["probe"], output=c["output"],
            secs=f"{c['duration_secs']:g}",
            resolution=f"{c['tick_secs'] / c['duration_secs'] * 100:.1f}", rows=rows(table),
            target=target, **machine(c)))
    return {"variants": "\n".join(blocks)}


def _cpu_per_event(samples):
    """Microseconds of tapper CPU per failure made (rate 0, the idle tapper, has none)."""
    return [s["cpu_percent"] * 1e4 / s["achieved_rate"] for s in samples
            if s["achieved_rate"] > 0]


def wakeups(r):
    return _side_by_side(r, "latency-first")


def baseline(r):
    return _side_by_side(r, "baseline")


def _side_by_side(r, before):
    """This build's end-to-end and cost results against the `before` variant of the same
    run (`e2e-BEFORE.json`, `cost-hub-BEFORE.json`)."""
    e2e, cost_hub = load(r / "e2e.json"), load(r / "cost-hub.json")
    before_e2e, before_cost = load(r / f"e2e-{before}.json"), load(r / f"cost-hub-{before}.json")
    if (e2e is None or before_e2e is None) and (cost_hub is None or before_cost is None):
        return None
    table = []

    def pick(o, part, rate):
        return [s for s in (o or {}).get("samples", []) if s["part"] == part
                and s["rate"] == rate and s["transport"] == "plaintext"]

    p2, p3, p5 = (parts.number(k) for k in ("throughput", "latency", "cost"))
    lat = _part(e2e, "latency") if e2e else []
    if lat:
        rate = lat[0]["rate"]
        b, a = pick(before_e2e, "latency", rate), pick(e2e, "latency", rate)
        for name in ("p50", "p99"):
            bv, av = col(b, f"{name}_us", 1 / 1000), col(a, f"{name}_us", 1 / 1000)
            table.append((f"part {p3}: {name} latency at {rate:,}/s, ms",
                          spread(bv, "{:.2f}"), spread(av, "{:.2f}"), ratio(bv, av)))
    for rate in sorted({s["rate"] for s in (_part(e2e, "throughput") if e2e else [])}):
        b, a = pick(before_e2e, "throughput", rate), pick(e2e, "throughput", rate)
        pct = lambda ss: [100 * s["delivered"] / s["generated"] for s in ss if s["generated"]]  # noqa: E731
        free = lambda ss: f"{sum(_loss_free(s) and s['lost'] == 0 for s in ss)}/{len(ss)} " \
                          f"({sum(s['node_unaccounted'] for s in ss)})"  # noqa: E731
        table += [
            (f"part {p2}: failures/s the generating thread achieved at {rate:,}/s",
             spread(col(b, "achieved_rate"), "{:,.0f}"), spread(col(a, "achieved_rate"), "{:,.0f}"),
             ratio(col(b, "achieved_rate"), col(a, "achieved_rate"))),
            (f"part {p2}: own events delivered of generated at {rate:,}/s, %",
             spread(pct(b)), spread(pct(a)), ratio(pct(b), pct(a))),
            (f"part {p2}: loss-free runs at {rate:,}/s (node unaccounted, sum)", free(b),
             free(a), "")]
    for rate in sorted({s["rate"] for s in (cost_hub or {}).get("samples", [])}):
        pick_cost = lambda o: [s for s in (o or {}).get("samples", []) if s["rate"] == rate]  # noqa: E731
        per_event = (f"part {p5}: tapper CPU per failure at {rate:,}/s, µs",
                     spread(_cpu_per_event(pick_cost(before_cost)), "{:.2f}"),
                     spread(_cpu_per_event(pick_cost(cost_hub)), "{:.2f}"),
                     ratio(_cpu_per_event(pick_cost(before_cost)),
                           _cpu_per_event(pick_cost(cost_hub))))
        if rate > 0:
            table.append(per_event)
        for name, key, scale, fmt in [("CPU %", "cpu_percent", 1, "{:.2f}"),
                                      ("peak RSS MiB", "hwm_kib", 1 / 1024, "{:.1f}"),
                                      ("node failures seen (other processes' too)",
                                       "failures", 1, "{:,.0f}")]:
            bv, av = col(pick_cost(before_cost), key, scale), col(pick_cost(cost_hub), key, scale)
            table.append((f"part {p5}: tapper {name} shipping at {rate:,}/s",
                          spread(bv, fmt), spread(av, fmt), ratio(bv, av)))
    return {"rows": rows(table)}


ONE_REPLICA_TARGET = 30_000  # events/s live with one PostgreSQL replica
TWO_REPLICAS_TARGET = 1.7  # times that with two


def _setup(engine, k, build="measured"):
    name = "SQLite, 1 hub" if engine == "sqlite" else \
        f"PostgreSQL, {k} replica{'' if k == 1 else 's'}"
    return name + (", build before" if build == "baseline" else "")


def replicas(r):
    o = load(r / "replicas.json")
    if o is None:
        return None
    secs = o["duration_secs"]
    for s in o["samples"]:
        s.setdefault("build", "measured")

    def carried(s):
        return (s["delivered_total"] == s["sent"] and s["lost"] == 0 and s["lagged"] == 0
                and s["delivered_per_sec"] >= KEPT_UP * s["sent"] / secs)

    def loss_free_max(engine, k, build="measured"):
        by_load = {}
        for s in o["samples"]:
            if (s["engine"], s["replicas"], s["build"]) == (engine, k, build):
                key = s["reporters"] * s["rate_each"]
                by_load[key] = by_load.get(key, True) and carried(s)
        return max((load_ for load_, ok in by_load.items() if ok), default=None)

    def best(k, build="measured"):
        return max([s["delivered_per_sec"] for s in o["samples"] if s["engine"] == "postgres"
                    and s["replicas"] == k and s["build"] == build], default=0.0)

    engines = {"sqlite": 0, "postgres": 1}
    builds = {"measured": 0, "baseline": 1}
    keys = sorted({(s["reporters"] * s["rate_each"], s["reporters"], engines[s["engine"]],
                    s["replicas"], builds[s["build"]], s["engine"], s["build"])
                   for s in o["samples"]})
    table = []
    for offered, n, _, k, _, engine, build in keys:
        s = [x for x in o["samples"] if x["reporters"] == n and x["engine"] == engine
             and x["reporters"] * x["rate_each"] == offered and x["replicas"] == k
             and x["build"] == build]
        col = lambda key: [x[key] for x in s]  # noqa: E731
        table.append((
            _setup(engine, k, build), f"{n} × {offered // max(n, 1)}",
            f"{s[0]['sent'] / secs:.0f}",
            show(col("delivered_per_sec"), 0), show(col("hubs_cpu_percent"), 1),
            show(col("drain_secs"), 1),
            f"{sum(col('delivered_total'))} / {sum(col('sent'))}", sum(col("lost")),
            sum(col("lagged")), f"{sum(map(carried, s))}/{len(s)}",
            show(col("driver_cpu_percent"), 1)))
    setups = sorted({(builds[s["build"]], engines[s["engine"]], s["replicas"], s["engine"],
                      s["build"]) for s in o["samples"]})
    maxima = []
    for _, _, k, engine, build in setups:
        top = loss_free_max(engine, k, build)
        maxima.append(f"- {_setup(engine, k, build)}: " + (
            "none of the loads measured" if top is None else f"{top} events/s") + (
            f"; best delivered/s in a window {best(k, build):.0f}" if engine == "postgres"
            else ""))
    one, two = loss_free_max("postgres", 1) or 0, loss_free_max("postgres", 2) or 0
    target = (
        f"one replica carried {one} events/s loss-free, target {ONE_REPLICA_TARGET}: "
        f"{verdict(one >= ONE_REPLICA_TARGET)}; two replicas carried {two} "
        f"({f'{two / one:.2f}×' if one else 'no load carried by'} one), "
        f"target {TWO_REPLICAS_TARGET}×: "
        f"{verdict(one > 0 and two >= TWO_REPLICAS_TARGET * one)}. Best delivered/s in a "
        f"window: {best(1):.0f} with one replica, {best(2):.0f} with two "
        f"({best(2) / max(best(1), 1.0):.2f}×).")
    return {"secs": f"{secs:g}", "kept_up": f"{KEPT_UP * 100:.0f}", "rows": rows(table),
            "maxima": "\n".join(maxima), "target": target, **machine(o)}
