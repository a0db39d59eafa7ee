"""scripts/setup.sh and scripts/test.sh on this machine: setup.sh installs nothing more on a
second run (with or without --test), refuses an unknown argument in one line, and test.sh
names the missing test tools and says to run `scripts/setup.sh --test` before it starts."""

import os
import subprocess

from tapperkit.binaries import ROOT


def run(*args, env=None, cwd=ROOT):
    return subprocess.run(["bash", *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=cwd)


def test_setup_is_idempotent_in_both_modes():
    for args in ([], ["--test"]):
        run("scripts/setup.sh", *args)  # whatever the first run has to do
        out = run("scripts/setup.sh", *args)
        assert out.returncode == 0 and out.stderr == "[setup] ok\n", (args, out.stderr)


def test_setup_refuses_an_unknown_argument_in_one_line():
    out = run("scripts/setup.sh", "--tests")
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1 and "'--tests'" in out.stderr and "--test" in out.stderr


def test_test_sh_names_missing_tools_and_the_command_that_installs_them(tmp_path):
    # A PATH of this machine's commands, but for podman and chromedriver.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for d in os.get_exec_path():
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            target = bindir / name
            if name not in ("podman", "chromedriver") and not target.exists():
                target.symlink_to(os.path.join(d, name))
    env = dict(os.environ, PATH=str(bindir))
    out = run("scripts/test.sh", env=env)
    assert out.returncode == 1 and out.stdout == "", out.stdout
    assert out.stderr.startswith("test.sh: test tools are missing (podman chromedriver)"), \
        out.stderr
    assert out.stderr.rstrip().endswith("run scripts/setup.sh --test first"), out.stderr
    # With every tool there, the same check lets test.sh through (only the check is run).
    check = run("-c", ". scripts/lib/test-tools.sh && missing_test_tools")
    assert check.returncode == 0 and check.stdout == "\n", check.stdout + check.stderr
