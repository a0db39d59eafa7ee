"""Where the workspace's binaries are: `$NAME_BIN` if set, else the Cargo build directory
(`$CARGO_TARGET_DIR`, default target/) of the debug profile."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class MissingBinary(FileNotFoundError):
    """A binary that was not built; the message says how to build it or point at it."""


def binary(env_var, name):
    """The binary `name`: the path in `env_var` if set, else target/debug/NAME."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    path = Path(os.environ.get(env_var, target / "debug" / name))
    if not path.is_file():
        raise MissingBinary(f"{name} binary not found at {path}: build it with `cargo build` "
                            f"or point {env_var} at it")
    return path
