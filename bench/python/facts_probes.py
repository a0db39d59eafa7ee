"""Values of the sections measured by `tapper-bench overhead` (syscall overhead, stacks,
early warnings) and of the machine section: ns per socket() call per condition, each run
against the no-probe baseline of the same run."""

import os
import platform

from common import fill, load, machine, rows, show, summary, verdict

LABELS = {
    "none": "no probes",
    "tapper-exit-only": "tapper, exit-only",
    "tapper-exit-only-stacks": "tapper, exit-only --stacks",
    "tapper-exit-only-warnings-off": "tapper, exit-only, warnings off",
    "tapper-exit-only-warn-floor0": "tapper, exit-only, warn floor 0",
    "tapper-tracepoint": "tapper, tracepoint",
    "tapper-kprobe": "tapper, kprobe",
    "tapper-fexit": "tapper, fexit",
    "bpftrace": "bpftrace one-liner (counts)",
    "bpftrace-printf": "bpftrace, printf per failure",
    "bpftrace-correlated": "bpftrace, entry+exit correlated",
    "baseline-exit-only": "baseline tapper, exit-only",
    "baseline-tracepoint": "baseline tapper, tracepoint",
}
# Each mode's baseline condition (the BENCH_BASELINE_DIR build) and this build's.
BASELINES = {"exit-only": ("baseline-exit-only", "tapper-exit-only"),
             "tracepoint": ("baseline-tracepoint", "tapper-tracepoint")}
CALLS = {"fail": "failing", "ok": "successful"}
STACKS_TARGET_NS = 2000


def absolute(o, cond, kind):
    return [s["ns_per_call"] for s in o["samples"] if s["condition"] == cond
            and s["kind"] == kind]


def added(o, cond, kind, base="none"):
    """Per run: (cond − base of the same run, cond ÷ base)."""
    def find(run, c):
        return next((s["ns_per_call"] for s in o["samples"]
                     if s["run"] == run and s["condition"] == c and s["kind"] == kind), None)
    pairs = [(find(run, base), find(run, cond)) for run in range(o["runs"])]
    pairs = [(b, x) for b, x in pairs if b is not None and x is not None]
    return [x - b for b, x in pairs], [x / b for b, x in pairs]


def median_added(o, cond, kind):
    s = summary(added(o, cond, kind)[0])
    return None if s is None else s[0]


def drops(o):
    return sum(d[2] for d in o["tapper_drops"])


def conditions_table(o, last_column="ratio vs no probes", last=None, note=""):
    """The run's machine line, the ns per call of every condition, and the tapper's drops."""
    conds = [c for c in LABELS if any(s["condition"] == c for s in o["samples"])]
    table = []
    for kind in CALLS:
        for c in conds:
            add, rat = added(o, c, kind)
            table.append((LABELS[c], CALLS[kind], show(absolute(o, c, kind), 1),
                          "—" if c == "none" else show(add, 1),
                          last(c, kind) if last else "1" if c == "none" else show(rat, 3)))
    # A note is a paragraph of its own above the table.
    note = f"{note.rstrip()}\n\n" if note else ""
    return fill("conditions", iters=o["iters"], runs=o["runs"], note=note,
                last_column=last_column, rows=rows(table), drops=drops(o), **machine(o))


def overhead_targets(o):
    ok, peer_ok = median_added(o, "tapper-exit-only", "ok"), median_added(o, "bpftrace", "ok")
    if ok is None or peer_ok is None:
        return ""
    lines = [f"Target (exit-only's added cost on a successful call ≤ the bpftrace one-liner's): "
             f"{verdict(ok <= peer_ok)} — median added {ok:.1f} ns vs {peer_ok:.1f} ns."]
    fail = median_added(o, "tapper-exit-only", "fail")
    peer_fail = median_added(o, "bpftrace", "fail")
    if fail is not None and peer_fail is not None:
        lines.append(f"Target (exit-only's added cost on a failing call ≤ 1.5 × the one-liner's): "
                     f"{verdict(fail <= 1.5 * peer_fail)} — median added {fail:.1f} ns vs "
                     f"1.5 × {peer_fail:.1f} = {1.5 * peer_fail:.1f} ns.")
        printf = median_added(o, "bpftrace-printf", "fail")
        if printf is not None:
            lines.append(f"bpftrace printing one line per failure adds {printf:.1f} ns on a "
                         f"failing call ({printf / fail:.2f} × exit-only's).")
    return "\n".join(lines) + "\n"


def before_after(o, r):
    """The baseline build against this one, per mode and call, from the same runs; "" when
    the run measured no baseline."""
    table = []
    for mode, (before, after) in BASELINES.items():
        if not any(s["condition"] == before for s in o["samples"]):
            continue
        for kind in CALLS:
            table.append((mode, CALLS[kind], show(added(o, before, kind)[0], 1),
                          show(added(o, after, kind)[0], 1),
                          show(added(o, after, kind, base=before)[0], 1)))
    if not table:
        return ""
    what = r / "baseline.txt"
    drops_of = ", ".join(f"{LABELS[c]} {sum(d[2] for d in o['tapper_drops'] if d[1] == c)}"
                         for pair in BASELINES.values() for c in pair)
    return fill("overhead-baseline", rows=rows(table), runs=o["runs"], drops=drops_of,
                baseline=what.read_text().strip() if what.exists() else "another build",
                **machine(o))


def overhead(r):
    host, vm = load(r / "overhead-host.json"), load(r / "overhead-vm.json")
    oldest, arm64 = load(r / "overhead-vm-oldest.json"), load(r / "overhead-vm-arm64.json")
    if host is None and vm is None and oldest is None and arm64 is None:
        return None

    def block(o, skipped, note=""):
        if o is None:
            reason = (r / f"skipped-{skipped}.txt")
            why = reason.read_text().strip() if reason.exists() else "not measured in this run"
            return f"Not measured: {why}\n"
        return conditions_table(o, note=note) + overhead_targets(o) + before_after(o, r)

    measured = next(o for o in (host, vm, oldest, arm64) if o is not None)
    programs = measured.get("bpftrace_programs", {})
    return {"host": block(host, "overhead-host"),
            "vm": block(vm, "overhead-vm", fill("overhead-vm-note")),
            "vm_oldest": block(oldest, "overhead-vm-oldest", fill("overhead-vm-oldest-note")),
            "vm_arm64": block(arm64, "overhead-vm-arm64", fill("overhead-vm-arm64-note")),
            **{f"bpftrace_{k}": v for k, v in programs.items()}}


def stacks(r):
    o = load(r / "stacks.json")
    if o is None:
        return None

    def by_stacks(kind):
        return added(o, "tapper-exit-only-stacks", kind, base="tapper-exit-only")[0]

    def last(c, kind):
        return show(by_stacks(kind), 1) if c == "tapper-exit-only-stacks" else "—"

    s = summary(by_stacks("fail"))
    if s is None:
        target = ""
    else:
        # A dropped record skips the copy to user space, so drops make a failing call
        # cheaper and the comparison says nothing about the target.
        judged = fill("stacks-unjudged").strip() if drops(o) else verdict(s[0] <= STACKS_TARGET_NS)
        target = (f"Target (`--stacks` adds at most {STACKS_TARGET_NS} ns per failing call): "
                  f"{judged} — median added {s[0]:.1f} ns against exit-only without stacks "
                  "in the same run.\n")
    return {"table": conditions_table(o, "added ns by --stacks", last), "target": target}


def warnings(r):
    o = load(r / "warnings.json")
    if o is None:
        return None
    on, off, floor0 = (absolute(o, c, "ok") for c in (
        "tapper-exit-only", "tapper-exit-only-warnings-off", "tapper-exit-only-warn-floor0"))
    on_off = [x - y for x, y in zip(on, off)]
    floor_off = [x - y for x, y in zip(floor0, off)]
    s = summary(on_off)
    target = ""
    if s is not None:
        met = s[1] <= 0
        target = (f"Target (a successful call with warnings on costs the same as with them off, "
                  f"within noise): {verdict(met)} — per run, on minus off: {show(on_off, 1)} ns "
                  f"(median {s[0]:.1f} ns; the runs "
                  f"{'disagree on the sign, or on is cheaper' if met else 'all put on above off'}).\n")
        if floor_off:
            target += ("With the floor at 0 (the limit read on every call), per run minus off: "
                       f"{show(floor_off, 1)} ns.\n")
    return {"table": conditions_table(o), "target": target}


def machine_section(r):
    meta = load(r / "meta.json")
    if meta is None:
        return None
    host = load(r / "overhead-host.json")
    if host is not None:
        m = host["machine"]
    else:
        model = next((line.split(":", 1)[1].strip() for line in
                      open("/proc/cpuinfo") if line.startswith("model name")), "")
        m = {"cpu_model": model, "cores": os.cpu_count(), "kernel": platform.release()}
    return {"cpu_model": m["cpu_model"], "cores": m["cores"], "kernel": m["kernel"], **meta}
