"""What every section's values are made of: median (min – max) figures, table rows, verdicts,
and sub-templates (bench/templates/*.md filled with Python's string.Template)."""

import json
import math
import statistics
import string
from pathlib import Path

import parts

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def fill(name, **values):
    """bench/templates/NAME.md with `values` (and every `$part_KEY`) in place of its
    `$names`."""
    return string.Template((TEMPLATES / f"{name}.md").read_text()).substitute(
        parts.numbers(), **values)


def load(path):
    """A driver's JSON result, or None when the driver did not write it."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SystemExit(f"report: {path} is not valid JSON ({e}); run its driver again")


def summary(values):
    """(median, min, max) of the finite values, or None."""
    v = [x for x in values if math.isfinite(x)]
    return (statistics.median(v), min(v), max(v)) if v else None


def spread(values, fmt="{:.1f}"):
    """median (min – max), the form of every figure in the report; "n/a" without values."""
    s = summary(values)
    if s is None:
        return "n/a"
    return f"{fmt.format(s[0])} ({fmt.format(s[1])} – {fmt.format(s[2])})"


def nearest(values, q):
    """The nearest-rank `q` quantile (0 ≤ q ≤ 1) of `values`, None without values: every
    percentile of the report and of the drivers."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def show(values, decimals):
    return spread(values, f"{{:.{decimals}f}}")


def loads(values):
    return " / ".join(f"{x:.2f}" for x in values)


def col(samples, key, scale=1):
    """The `key` of every sample, times `scale`."""
    return [x[key] if scale == 1 else x[key] * scale for x in samples]


def total(samples, key):
    return sum(x[key] for x in samples)


def groups(samples, *keys):
    """The samples grouped by the values of `keys`, in sorted order: [(values, samples)]
    (values a single value for one key, a tuple for more)."""
    by = {}
    for x in samples:
        value = tuple(x[k] for k in keys)
        by.setdefault(value if len(keys) > 1 else value[0], []).append(x)
    return sorted(by.items(), key=lambda kv: kv[0])


def rows(cells):
    return "\n".join("| " + " | ".join(str(c) for c in row) + " |" for row in cells)


def verdict(met, yes="met", no="**not met**"):
    return yes if met else no


def ratio(before, after):
    if not before or not after or statistics.median(before) == 0:
        return ""
    return f"{statistics.median(after) / statistics.median(before):.2f}"


def machine(o):
    """The values of a run's machine line."""
    m = o["machine"]
    return {"kernel": m["kernel"], "cores": m["cores"], "load_before": loads(m["load_before"]),
            "load_after": loads(m["load_after"])}


def codes(per_run):
    """"0", or the total and its split by status code, e.g. "3 (RESOURCE_EXHAUSTED: 3)"."""
    total = {}
    for m in per_run:
        for code, n in (m or {}).items():
            total[code] = total.get(code, 0) + n
    if not total:
        return "0"
    split = ", ".join(f"{c}: {n}" for c, n in sorted(total.items()))
    return f"{sum(total.values())} ({split})"
