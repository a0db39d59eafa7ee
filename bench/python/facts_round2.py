"""The second attack round's results (attack_round2.py) as the values of its template
(bench/templates/round2.md): one table, item | figure | one column per build."""

from common import fill, loads


def _secs(x, digits=1):
    return f"{x:.{digits}f} s"


def _mib(x):
    return f"{x:,.0f}"


def _ms(x):
    return "—" if x is None else f"{x:.1f}"


def _codes(refused):
    return ", ".join(f"{k}: {v}" for k, v in sorted(refused.items())) or "none"


def fifo_exe(f):
    first, stopped = f["first_delay_s"], f["sigterm_stopped_s"]
    if first is not None:
        delay = _secs(first, 2)
    elif f["probes_arrived"]:
        delay = f"never arrived (later ones did, at most {_secs(f['max_delay_s'], 2)})"
    else:
        delay = f"none within {f['timeout_s']} s (**hung**)"
    return [
        ("delay of the first other-process event after the attack", delay),
        ("other-process events delivered during the window",
         f"{f['probes_arrived']} of {f['probes']}"),
        ("SIGTERM stops the tapper",
         f"no (not within {f['stop_timeout_s']} s)" if stopped is None
         else f"yes, in {_secs(stopped)}"),
    ]


def metrics_fds(f):
    alive = "yes" if f["alive_at_end"] else f"no (exit code {f['exit_code']}" + (
        "" if f["exited_after_s"] is None else f", {_secs(f['exited_after_s'])} in") + ")"
    return [
        ("idle `/metrics` connections opened (still open at the end)",
         f"{f['opened']:,} of {f['connections']:,} ({f['open_at_end']})"),
        ("tapper descriptors once they were open", str(f["tapper_fds_after_open"])),
        ("events of another process with a `cmdline`",
         f"{f['with_cmdline']} of {f['probes']} ({f['probes_arrived']} arrived)"),
        (f"tapper still running after {f['hold_s']:g} s", alive),
    ]


def big_identity(f):
    peak = f"{_mib(f['rss_start_mib'])} → {_mib(f['rss_peak_mib'])}"
    if f["over_cap_at_s"] is not None:
        peak += f" (**> {f['cap_mib'] / 1024:g} GiB at {_secs(f['over_cap_at_s'])}**, stopped)"
    else:
        peak += f" over {_secs(f['elapsed_s'], 0)}"
    return [
        ("hub RSS at start → peak, MiB", peak),
        ("1 MiB events acked; streams refused", f"{f['events_acked']:,}; "
                                                 f"{_codes(f['refused'])}"),
    ]


def h2_squatters(f):
    return [
        ("token-less HTTP/2 connections opened (still open at the end)",
         f"{f['opened']:,} of {f['connections']:,} ({f['open_at_end']})"),
        ("valid-token calls served while they were held",
         f"{f['served']} of {f['calls']}"
         + ("" if f["served_p50_s"] is None else f" (p50 {f['served_p50_s'] * 1000:.0f} ms)")),
    ]


def alert_groups(f):
    return [
        ("firing alerts", f"{f['firing']:,.0f} (of {f['groups']:,} groups)"),
        ("hub RSS at start → after, MiB", f"{_mib(f['rss_start_mib'])} → {_mib(f['rss_mib'])}"),
        ("POSTs to Alertmanager; largest body; all bodies",
         f"{f['posts']:,}; {f['largest_post_bytes'] / 2**20:.2f} MiB; "
         f"{f['posted_bytes'] / 2**20:.1f} MiB"),
        ("hub log lines", f"{f['hub_log_lines']:,}"),
    ]


def warnings_flood(f):
    b, w = f["baseline"], f["flood"]
    missing = w["probes"] - w["arrived"]
    return [
        ("tapper CPU, % of a core (quiet → flood)",
         f"{f['baseline_cpu_percent']:.1f} → {f['cpu_percent']:.1f}"),
        ("other-process event delay p50 / p99, ms (quiet)",
         f"{_ms(b['p50_ms'])} / {_ms(b['p99_ms'])}"),
        ("other-process event delay p50 / p99, ms (flood)",
         f"{_ms(w['p50_ms'])} / {_ms(w['p99_ms'])}"
         + (f" ({missing} not within {f['grace_s']:g} s)" if missing else "")),
        ("nofile warnings written", f"{f['warnings']:,}"),
    ]


FIGURES = {"1": fifo_exe, "3": metrics_fds, "4": big_identity, "7": h2_squatters,
           "9": alert_groups, "11": warnings_flood}

TITLES = {
    "1": "1. FIFO as the executable, `--stacks`",
    "3": "3. idle `/metrics` connections, soft limit 1024",
    "4": "4. 1 MiB `cgroup_path`, one slow subscriber",
    "7": "7. token-less HTTP/2 connections",
    "9": "9. alert groups by `comm`",
    "11": "11. nofile warnings flood",
}


# The sizes written with thousands separators in the items' descriptions.
COUNTS = {"metrics_conns", "h2_conns", "alert_groups", "flood_limit"}


def facts(r):
    builds = list(r["builds"])
    sizes = {k: f"{v:,}" if k in COUNTS else f"{v}" for k, v in r["sizes"].items()}
    by = {}
    for x in r["results"]:
        by.setdefault((x["item"], x["build"]), []).append(x["figures"])
    lines = []
    for item in r["items"]:
        rows = {}
        for b in builds:
            for figures in by.get((item, b), []):
                pairs = [("error", figures["error"].strip().splitlines()[-1])] \
                    if "error" in figures else FIGURES[item](figures)
                for label, value in pairs:
                    rows.setdefault(label, {}).setdefault(b, []).append(value)
        for label, values in rows.items():
            cells = [" / ".join(values.get(b, ["—"])).replace("|", "\\|") for b in builds]
            lines.append(f"| {TITLES[item]} | {label} | " + " | ".join(cells) + " |")
    return {
        "items": " ".join(f"**{i}**: " + fill(f"round2-item-{i}", **sizes).strip()
                          for i in r["items"]),
        "rounds": r["rounds"],
        "load_start": loads(r["load_start"]), "load_end": loads(r["load_end"]),
        "date": r["date"], "mode": r["mode"], "seconds": f"{r['seconds']:.0f}",
        "builds": " | ".join(builds), "build_rules": " | ".join("---" for _ in builds),
        "rows": "\n".join(lines),
    }
