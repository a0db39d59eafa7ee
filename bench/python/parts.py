"""The benchmark's sections as listed in bench/parts.tsv (id, key, driver, title): the one
table of part numbers that scripts/bench.sh, the report step and the drivers read."""

from dataclasses import dataclass
from pathlib import Path

TABLE = Path(__file__).resolve().parent.parent / "parts.tsv"


@dataclass(frozen=True)
class Part:
    id: str
    key: str
    driver: str
    title: str


def load(table=TABLE):
    parts = []
    for n, line in enumerate(table.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        row = line.split("\t")
        if len(row) != 4:
            raise SystemExit(f"{table}:{n}: expected 4 tab-separated columns (id, key, driver, "
                             f"title), found {len(row)}")
        parts.append(Part(*row))
    return parts


def by_key(key):
    return next(p for p in load() if p.key == key)


def number(key):
    """The part number (id) of the section `key`."""
    return by_key(key).id


def numbers():
    """`part_KEY` → the part's id, for every section: what templates name parts by."""
    return {f"part_{p.key}": p.id for p in load()}
