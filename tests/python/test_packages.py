"""The .deb packages of scripts/package-deb.sh (debug build), installed with `dpkg --root`
into a fresh Debian root made by debootstrap: each installed binary runs, the hub's system
user owns its private state directory, the default configs are conffiles the binaries
accept, the completions and man pages are in place, and `systemd-analyze verify` passes the
installed units."""

import gzip
import os
import pwd
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from tapperkit.binaries import ROOT

BINARIES = {"tapper": "tapper", "tapper-hub": "hub", "tapper-hub-client": "hub-client"}
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")


def run(*args, timeout=120, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")).resolve()


def debian_base():
    """A minimal root of this host's Debian release (debootstrap --variant=minbase), made
    once from the Debian mirror and kept as a tarball under the target directory."""
    codename = next(line.split("=", 1)[1].strip('"') for line in
                    Path("/etc/os-release").read_text().splitlines()
                    if line.startswith("VERSION_CODENAME="))
    cache = target_dir() / "debian-root" / f"{codename}-minbase.tar"
    if cache.exists():
        return cache
    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is missing: apt-get install debootstrap (scripts/setup.sh --test)",
                    pytrace=False)
    cache.parent.mkdir(parents=True, exist_ok=True)
    work = cache.parent / f"{codename}-minbase.work"
    shutil.rmtree(work, ignore_errors=True)
    out = run("debootstrap", "--variant=minbase", codename, work, MIRROR, timeout=1200)
    assert out.returncode == 0, f"debootstrap from {MIRROR} failed:\n{out.stdout[-3000:]}" \
                                f"{out.stderr[-3000:]}"
    partial = cache.with_suffix(".partial")
    out = run("tar", "-C", work, "-cf", partial, ".", timeout=600)
    assert out.returncode == 0, out.stderr
    partial.rename(cache)
    shutil.rmtree(work)
    return cache


@pytest.fixture(scope="module")
def debs():
    out = run("bash", ROOT / "scripts" / "package-deb.sh", "--profile", "dev", timeout=1800)
    assert out.returncode == 0, out.stderr[-5000:]
    paths = [Path(line) for line in out.stdout.splitlines()]
    assert [p.name.split("_")[0] for p in paths] == list(BINARIES), out.stdout
    assert all(p.is_file() for p in paths), paths
    return paths


@pytest.fixture(scope="module")
def installed(debs, tmp_path_factory):
    """A fresh Debian root with the three packages installed by dpkg."""
    root = tmp_path_factory.mktemp("debian") / "root"
    root.mkdir()
    out = run("tar", "-C", root, "-xf", debian_base(), timeout=600)
    assert out.returncode == 0, out.stderr
    out = run("dpkg", f"--root={root}", "--install", *debs, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    yield root
    shutil.rmtree(root)


def in_root(root, *args):
    return run("chroot", root, *args)


def test_each_installed_binary_runs(installed):
    for package, binary in BINARIES.items():
        out = in_root(installed, f"/usr/bin/{binary}", "--version")
        assert out.returncode == 0, out.stderr
        assert out.stdout == f"{binary} 0.1.0\n", out.stdout
        status = run("dpkg-query", f"--admindir={installed}/var/lib/dpkg", "-W",
                     "-f=${Status}", package)
        assert status.stdout == "install ok installed", status.stdout + status.stderr


def test_the_hub_state_dir_belongs_to_its_system_user(installed):
    users = {line.split(":")[0]: line.split(":") for line in
             (installed / "etc/passwd").read_text().splitlines()}
    assert "tapper-hub" in users, "postinst made no tapper-hub user"
    _, _, uid, gid, _, home, shell = users["tapper-hub"]
    assert 0 < int(uid) < 1000, f"not a system user: uid {uid}"
    assert home == "/var/lib/tapper-hub" and shell.endswith("nologin"), users["tapper-hub"]
    st = (installed / "var/lib/tapper-hub").stat()
    assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
    assert (st.st_uid, st.st_gid) == (int(uid), int(gid))
    # The host has no such user: the ids are the fresh root's own.
    with pytest.raises(KeyError):
        pwd.getpwnam("tapper-hub")


def test_default_configs_are_conffiles_the_binaries_accept(installed):
    out = run("dpkg-query", f"--admindir={installed}/var/lib/dpkg", "-W", "-f=${Conffiles}\n",
              "tapper", "tapper-hub")
    conffiles = {line.split()[0] for line in out.stdout.splitlines() if line.strip()}
    assert conffiles == {"/etc/tapper/tapper.toml", "/etc/tapper/hub.toml"}, out.stdout
    for binary, config in [("hub", "/etc/tapper/hub.toml"), ("tapper", "/etc/tapper/tapper.toml")]:
        out = in_root(installed, f"/usr/bin/{binary}", "--config", config, "--print-config")
        assert out.returncode == 0, out.stderr
        effective = tomllib.loads(out.stdout)
        assert effective == tomllib.loads((installed / config.lstrip("/")).read_text())
    hub = tomllib.loads((installed / "etc/tapper/hub.toml").read_text())
    assert hub["db"].startswith("/var/lib/tapper-hub/"), hub


def test_completions_and_man_pages_are_installed(installed):
    for binary in BINARIES.values():
        # bash completes `BINARY --vers` to `--version` with the installed script.
        script = f"""source /usr/share/bash-completion/completions/{binary}
            fn=$(complete -p {binary} | sed 's/.* -F \\([^ ]*\\) .*/\\1/')
            COMP_WORDS=({binary} --vers); COMP_CWORD=1; COMP_LINE="{binary} --vers"
            COMP_POINT=${{#COMP_LINE}}
            "$fn" {binary} --vers {binary}; printf '%s\\n' "${{COMPREPLY[@]}}" """
        out = in_root(installed, "bash", "-c", script)
        assert out.returncode == 0 and out.stdout.split() == ["--version"], \
            out.stdout + out.stderr
        zsh = (installed / "usr/share/zsh/vendor-completions" / f"_{binary}").read_text()
        assert zsh.startswith(f"#compdef {binary}\n"), zsh[:100]
        fish = (installed / "usr/share/fish/vendor_completions.d" / f"{binary}.fish").read_text()
        assert f"complete -c {binary} " in fish, fish[:300]
        page = gzip.decompress(
            (installed / "usr/share/man/man1" / f"{binary}.1.gz").read_bytes()).decode()
        assert f'.TH {binary} 1  "{binary} 0.1.0"' in page, page[:300]
    for binary in ["tapper", "hub"]:
        page = gzip.decompress(
            (installed / "usr/share/man/man1" / f"{binary}.1.gz").read_bytes()).decode()
        assert r"\-\-config" in page and r"\-\-print\-config" in page
    bash = (installed / "usr/share/bash-completion/completions/tapper").read_text()
    assert "--config" in bash and "--errno" in bash


def test_installed_units_verify(installed):
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd (scripts/setup.sh --test)",
                    pytrace=False)
    units = installed / "usr/lib/systemd/system"
    ours = sorted(units / name for name in ["tapper.service", "tapper-hub.service"])
    assert all(u.is_file() for u in ours), list(units.iterdir())
    # The units they depend on (network.target, sys-kernel-tracing.mount, ...) come with
    # systemd, which a minimal root lacks: take the host's.
    for unit in Path("/usr/lib/systemd/system").iterdir():
        if not (units / unit.name).exists():
            if unit.is_dir() and not unit.is_symlink():
                shutil.copytree(unit, units / unit.name, symlinks=True)
            else:
                shutil.copy2(unit, units / unit.name, follow_symlinks=False)

    def verify():
        return run(exe, "verify", "--man=no", f"--root={installed}", *ours)

    out = verify()
    assert out.returncode == 0 and out.stdout + out.stderr == "", out.stdout + out.stderr
    # verify checks the installed binary: without it, the unit fails.
    hub = installed / "usr/bin/hub"
    hub.rename(hub.with_name("hub.away"))
    try:
        out = verify()
        assert out.returncode != 0 and "/usr/bin/hub" in out.stderr, out.stderr
    finally:
        hub.with_name("hub.away").rename(hub)
