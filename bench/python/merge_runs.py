"""Merges the JSON results of single-run `tapper-bench e2e` or `cost` invocations (run
interleaved with another variant by scripts/bench.sh) into one result with every run's
samples, numbered by run."""

import argparse
import json
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("runs", type=Path, nargs="+", help="one result per run, in run order")
    a = ap.parse_args()
    merged = None
    for run, path in enumerate(sorted(a.runs, key=lambda p: int(p.stem.rsplit("-", 1)[1]))):
        outcome = json.loads(path.read_text())
        for sample in outcome["samples"]:
            sample["run"] = run
        if merged is None:
            merged = outcome
        else:
            merged["samples"] += outcome["samples"]
    a.out.write_text(json.dumps(merged))


if __name__ == "__main__":
    main()
