"""Where the hub keeps its database: by default in its state dir (created private), and an
explicit --db whose directory does not exist is an error naming the flag, made nowhere."""

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from tapperkit.hub import Hub
from tapperkit.process import start
from tapperkit.tapper import NOBODY


def test_by_default_the_database_lives_in_the_state_dir(hub_bin, tmp_path):
    # Not root: the state dir is $XDG_STATE_HOME/tapper-hub, made 0700 with its parents
    # (in a home of nobody's own, outside pytest's private temp dir).
    home = Path(tempfile.mkdtemp(prefix="hub-home-"))
    try:
        os.chmod(home, 0o755)
        os.chown(home, 65534, 65534)
        state = home / "state"
        child = start([*NOBODY, "env", f"XDG_STATE_HOME={state}", str(hub_bin), "--listen",
                       "127.0.0.1:0"], tmp_path / "hub.log", name="hub",
                      env={**os.environ, "RUST_LOG": "info"})
        Hub(child, "http").stop()
        check_state_dir(state, child.log_text())
    finally:
        shutil.rmtree(home)


def check_state_dir(state, log):
    db = state / "tapper-hub" / "hub.db"
    assert db.is_file(), log
    assert stat.S_IMODE((state / "tapper-hub").stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert f"{db}" in log, "the log names the database it opened"


def test_an_explicit_db_in_a_missing_directory_is_an_error(hub_bin, tmp_path):
    missing = tmp_path / "typo" / "sub"
    out = subprocess.run([str(hub_bin), "--listen", "127.0.0.1:0", "--db",
                          str(missing / "hub.db")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    first = out.stderr.splitlines()[0]
    assert first == (f"error: --db: directory {missing} does not exist: create it "
                     f"(mkdir -m 700 {missing}) or give a path in an existing one"), out.stderr
    assert not (tmp_path / "typo").exists(), "no directory is made up"
