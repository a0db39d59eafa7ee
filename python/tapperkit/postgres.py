"""A real PostgreSQL 15 server for the hub replica tests: initdb and pg_ctl in a temporary
directory owned by the `postgres` user (initdb refuses root), listening on a free port on
127.0.0.1, started and stopped by pid."""

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .net import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
USER = "postgres"


class Postgres:
    """One server; `url(db)` names a database on it, `psql` runs SQL as the superuser."""

    def __init__(self):
        if not (BIN / "initdb").is_file():
            raise RuntimeError(f"{BIN}/initdb is missing: apt-get install postgresql "
                               "(scripts/setup.sh --test does)")
        self.user = pwd.getpwnam(USER)
        self.dir = Path(tempfile.mkdtemp(prefix="hub-pg-"))
        os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        self.password = secrets.token_hex(8)
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        os.chown(pwfile, self.user.pw_uid, self.user.pw_gid)
        self._run([str(BIN / "initdb"), "-D", str(self.data), "-U", "hub", "--no-locale",
                   "-E", "UTF8", "--auth=scram-sha-256", f"--pwfile={pwfile}"])
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.dir}'\nmax_connections = 200\n")
        self.start()

    def _run(self, cmd, **kw):
        out = subprocess.run(["setpriv", "--reuid", str(self.user.pw_uid), "--regid",
                              str(self.user.pw_gid), "--clear-groups", *cmd],
                             capture_output=True, text=True, timeout=120, **kw)
        if out.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {out.stdout}{out.stderr}")
        return out

    def pid(self):
        """The postmaster's pid, from its pid file."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def start(self):
        self._run([str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                   "-t", "60", "start"])

    def stop(self):
        """Stops the server by its pid (SIGINT: fast shutdown) and waits for it to go."""
        pid = self.pid()
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 60
        while (self.data / "postmaster.pid").exists():
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise RuntimeError("PostgreSQL did not stop within 60s")
            time.sleep(0.05)

    def enable_tls(self, cert, key):
        """Serves TLS with this certificate and key from now on (reloaded, no restart)."""
        for src, name in ((cert, "server.crt"), (key, "server.key")):
            dst = self.data / name
            shutil.copy(src, dst)
            os.chown(dst, self.user.pw_uid, self.user.pw_gid)
            os.chmod(dst, 0o600)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("ssl = on\n")
        self._run([str(BIN / "pg_ctl"), "-D", str(self.data), "reload"])
        time.sleep(1)

    def url(self, db="postgres", password=None):
        return (f"postgres://hub:{password or self.password}@127.0.0.1:{self.port}/{db}")

    def psql(self, sql, db="postgres"):
        out = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                              "-d", self.url(db), "-c", sql],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {out.stderr}")
        return out.stdout.strip()

    def new_database(self):
        name = "hub_" + secrets.token_hex(4)
        self.psql(f"CREATE DATABASE {name}")
        return name

    def close(self):
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
