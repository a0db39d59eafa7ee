"""The report step: fills every marked section of a report (`<!-- part ID begin -->` …
`<!-- part ID end -->`) whose results are in the results directory, from the part's JSON
through bench/templates/KEY.md (Python's string.Template). Sections without results keep
their text; a section missing from the report is appended at its end.

Usage: report.py --results DIR --out BENCHMARKS.md"""

import argparse
import string
import sys
from pathlib import Path

import facts
import parts
from common import TEMPLATES, fill


def splice(report, part_id, text):
    """`report` with the marked section `part_id` holding `text` (appended when absent)."""
    begin, end = f"<!-- part {part_id} begin -->\n", f"<!-- part {part_id} end -->"
    start = report.find(begin)
    stop = report.find(end, start)
    if start < 0 or stop < 0:
        return f"{report.rstrip(chr(10))}\n\n{begin}{text}{end}\n"
    return report[:start + len(begin)] + text + report[stop:]


def render(part, results):
    """The section's text, or None when the results directory has nothing for it."""
    skipped = results / f"skipped-{part.driver}.txt"
    if skipped.exists():
        heading = (TEMPLATES / f"{part.key}.md").read_text().splitlines()[0]
        reason = skipped.read_text().strip()
        return string.Template(f"{heading}\n\nNot measured: {reason}\n").substitute(
            parts.numbers())
    values = facts.of(part.key, results)
    if values is None:
        return None
    try:
        return fill(part.key, **values).rstrip("\n") + "\n"
    except (KeyError, ValueError) as e:
        sys.exit(f"report: bench/templates/{part.key}.md: no value for {e}; "
                 "add it to bench/python/facts*.py or fix the template")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True, help="the parts' JSON results")
    ap.add_argument("--out", type=Path, required=True, help="the report to update in place")
    a = ap.parse_args()
    if not a.results.is_dir():
        sys.exit(f"report: --results {a.results} is not a directory; pass the directory the "
                 "drivers wrote their JSON into (e.g. target/bench/full)")
    report = a.out.read_text() if a.out.exists() else "# Benchmarks\n"
    for part in parts.load():
        text = render(part, a.results)
        if text is not None:
            report = splice(report, part.id, text)
            print(f"[report] part {part.id} ({part.title})", file=sys.stderr)
    a.out.write_text(report)


if __name__ == "__main__":
    main()
