"""A throwaway PostgreSQL for the tests: a cluster in a temporary folder, on a free port of 127.0.0.1.

``python -m tests.postgres -- COMMAND...`` runs COMMAND with
``TEST_POSTGRESQL_URL`` set (``make test`` runs pytest this way): a database
already named by that variable is used when it answers; otherwise a cluster
is made with Debian's ``postgresql`` binaries (``initdb``, ``pg_ctl``), owned
by the ``postgres`` user when we run as root (PostgreSQL refuses to run as
root), and removed afterwards. Tests give each test a schema of its own in
that database (``tests/conftest.py``), so parallel workers never meet.

``Cluster`` is also used directly by tests that must stop and restart
PostgreSQL (the chaos test): they get a cluster of their own.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = "TEST_POSTGRESQL_URL"
DATABASE = "autocall_test"


def binaries() -> Path | None:
    """The folder of ``initdb``/``pg_ctl`` (the newest Debian postgresql), or None if not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reachable(url: str, timeout: float = 3.0) -> bool:
    import psycopg
    try:
        with psycopg.connect(url, connect_timeout=max(1, int(timeout))):
            return True
    except psycopg.Error:
        return False


class Cluster:
    """One PostgreSQL cluster: ``start()``, ``url``, ``stop()``/``restart()``, ``remove()``."""

    def __init__(self) -> None:
        bindir = binaries()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (make test does it)")
        self.bin = bindir
        self.root = Path(tempfile.mkdtemp(prefix="autocall-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres"
            owner = pwd.getpwnam(self.user)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, cwd=self.root)

    def start(self) -> "Cluster":
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                      "--no-locale", "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "30", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                  f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", "start")
        import psycopg
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
                conn.execute(f"CREATE DATABASE {DATABASE}")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    if not argv:
        sys.stderr.write("usage: python -m tests.postgres -- COMMAND...\n")
        return 2
    url = os.environ.get(ENV)
    if url and reachable(url):
        return subprocess.call(argv)
    cluster = Cluster().start()
    sys.stderr.write(f"tests: a throwaway PostgreSQL on port {cluster.port} ({cluster.root})\n")
    try:
        return subprocess.call(argv, env=dict(os.environ, **{ENV: cluster.url}))
    finally:
        started = time.monotonic()
        cluster.remove()
        sys.stderr.write(f"tests: throwaway PostgreSQL removed ({time.monotonic() - started:.1f} s)\n")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
