"""The benchmarks' second attack round (issue 27, items 1, 3, 4, 7, 9 and 11): runs
each attack against one build (--bin-dir) or two side by side (--before and --after, the
builds interleaved item by item, their order alternating from round to round), each on
fresh servers in a temp dir on loopback, bounded in size and time. Writes the results as
JSON (with the load average at start and end), which bench/python/report.py renders.

  attack_round2.py run --before DIR --after DIR --out results.json [--smoke]

Each DIR holds the tapper and the hub. Run as root (the tapper loads eBPF; the attackers
run as nobody through setpriv)."""

import argparse
import datetime
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

import round2_hub
import round2_tapper
from tapperkit.proto_stubs import generate

ITEMS = {
    "1": round2_tapper.fifo_exe,
    "3": round2_tapper.metrics_fds,
    "4": round2_hub.big_identity,
    "7": round2_hub.h2_squatters,
    "9": round2_hub.alert_groups,
    "11": round2_tapper.warnings_flood,
}
HUB_ITEMS = {"4", "7", "9"}
SIZES = {
    "full": {
        "hang_timeout": 20, "stop_timeout": 5,
        "metrics_conns": 1100, "metrics_hold": 10,
        "big_secs": 45, "big_rss_cap_mib": 1536,
        "h2_conns": 4096, "h2_hold": 10,
        "alert_groups": 100_000, "alert_settle": 30,
        "flood_procs": 250, "flood_limit": 16384, "flood_secs": 10, "flood_grace": 20,
        "baseline_secs": 2,
    },
    "smoke": {
        "hang_timeout": 3, "stop_timeout": 3,
        "metrics_conns": 20, "metrics_hold": 1,
        "big_secs": 2, "big_rss_cap_mib": 512,
        "h2_conns": 20, "h2_hold": 2,
        "alert_groups": 200, "alert_settle": 5,
        "flood_procs": 4, "flood_limit": 1024, "flood_secs": 1, "flood_grace": 5,
        "baseline_secs": 0.5,
    },
}


def run(a):
    builds = {a.label: a.bin_dir} if a.bin_dir else {"before": a.before, "after": a.after}
    for name, d in builds.items():
        missing = [b for b in ("tapper", "hub") if not (d / b).is_file()]
        if missing:
            sys.exit(f"attack_round2: {name} ({d}) has no {', '.join(missing)}: build the "
                     "workspace first (cargo build --release)")
    items = a.items.split(",")
    unknown = [i for i in items if i not in ITEMS]
    if unknown:
        sys.exit(f"attack_round2: --items {','.join(unknown)}: items are {', '.join(ITEMS)}")
    sizes = dict(SIZES["smoke" if a.smoke else "full"])
    for kv in a.size:
        key, _, value = kv.partition("=")
        if key not in sizes:
            sys.exit(f"attack_round2: --size {key}: sizes are {', '.join(sizes)}")
        try:
            sizes[key] = float(value) if "." in value else int(value)
        except ValueError:
            sys.exit(f"attack_round2: --size {kv}: give a number, e.g. {key}={sizes[key]}")
    load_start = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    results, failed = [], 0
    with tempfile.TemporaryDirectory(prefix="attack-round2-") as tmp:
        # The attackers, running as nobody, must reach their own directories inside.
        os.chmod(tmp, 0o755)
        stubs = generate(Path(tmp) / "stubs")
        for r in range(a.rounds):
            order = list(builds.items())
            if r % 2:
                order.reverse()
            for item in items:
                for build, bins in order:
                    print(f"[attack-round2] round {r + 1}/{a.rounds}: item {item}, {build}",
                          file=sys.stderr)
                    work = Path(tempfile.mkdtemp(prefix=f"item{item}-", dir=tmp))
                    os.chmod(work, 0o755)
                    args = (bins, stubs, work, sizes) if item in HUB_ITEMS else \
                        (bins, work, sizes)
                    try:
                        figures = ITEMS[item](*args)
                    except Exception:  # noqa: BLE001 (one attack's failure is reported)
                        failed += 1
                        figures = {"error": traceback.format_exc(limit=3)}
                        print(figures["error"], file=sys.stderr)
                    results.append({"round": r, "build": build, "item": item,
                                    "figures": figures})
    out = {
        "mode": "smoke" if a.smoke else "full",
        "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds(),
        "load_start": load_start, "load_end": os.getloadavg(),
        "builds": list(builds),
        "rounds": a.rounds, "items": items, "sizes": sizes, "results": results,
    }
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"[attack-round2] results: {a.out}", file=sys.stderr)
    if failed:
        sys.exit(f"attack_round2: {failed} measurement(s) failed (see the errors above)")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="measure")
    one = r.add_mutually_exclusive_group(required=True)
    one.add_argument("--bin-dir", type=Path, help="the one build to measure")
    one.add_argument("--before", type=Path, help="the build before the fixes")
    r.add_argument("--after", type=Path, help="the build after the fixes (with --before)")
    r.add_argument("--label", default="this build",
                   help="the column name of the --bin-dir build, e.g. before")
    r.add_argument("--rounds", type=int, default=1)
    r.add_argument("--items", default=",".join(ITEMS), help="e.g. 1,3,4,7,9,11")
    r.add_argument("--smoke", action="store_true", help="tiny sizes, to check it runs")
    r.add_argument("--size", action="append", default=[], metavar="NAME=VALUE",
                   help="override one size, e.g. h2_conns=1000")
    r.add_argument("--out", type=Path, required=True, help="the JSON results")
    a = ap.parse_args()
    if a.command == "run":
        if bool(a.before) != bool(a.after):
            ap.error("--before and --after go together")
        run(a)


if __name__ == "__main__":
    main()
