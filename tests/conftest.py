"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

import pytest

from autocall.audio.prompt_checks import audio_checks
from autocall.dsl.compiler import Compiler

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:           # ``tests.postgres`` importable under a bare ``pytest`` too
    sys.path.insert(0, str(ROOT))

# Caches (e.g. audio verdicts of `autocall check`) go to a scratch folder, never the user's home.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="autocall-test-cache-")


@pytest.fixture(scope="session")
def compiler() -> Compiler:
    """One compiler (its parser is built once) that also validates audio files and voices."""
    return Compiler(**audio_checks())


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return ROOT / "scripts_examples"


@pytest.fixture
def compile_text(compiler, tmp_path):
    """Compile script text written to a temporary ``test.dlg``; returns the CompileResult."""
    def run(text: str, name: str = "test.dlg"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return compiler.compile_file(str(path))
    return run


def _autocall_children() -> set[int]:
    """Child processes of this test process that run the autocall command (Linux /proc)."""
    found = set()
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                parent = handle.read().rsplit(b")", 1)[1].split()[1].decode()
            if parent != me:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except (OSError, IndexError):
            continue
        if b"autocall" in argv and b"-m" in argv:
            found.add(int(entry))
    return found


@pytest.fixture(autouse=True)
def _no_autocall_process_left_behind():
    """A test that starts `python -m autocall ...` and fails half-way must not leave it running."""
    before = _autocall_children()
    yield
    for pid in _autocall_children() - before:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


# -- PostgreSQL: a database per test session, a schema per test --------------------------------------------

def _no_postgresql(why: str):
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is needed in CI: {why}")
    pytest.skip(f"no PostgreSQL: {why} (make test starts one)")


@pytest.fixture(scope="session")
def postgresql_server():
    """The URL of a PostgreSQL database the tests may fill: ``TEST_POSTGRESQL_URL`` (set by ``make test``),
    else a throwaway cluster started for this session."""
    from tests.postgres import ENV, Cluster, binaries, reachable
    url = os.environ.get(ENV)
    if url:
        if not reachable(url):
            _no_postgresql(f"{ENV} does not answer")
        yield url
        return
    if binaries() is None:
        _no_postgresql("the postgresql package is not installed")
    cluster = Cluster().start()
    try:
        yield cluster.url
    finally:
        cluster.remove()


@pytest.fixture
def own_postgresql():
    """A PostgreSQL cluster of this test's own (``tests.postgres.Cluster``, started), for tests that stop and
    restart it; removed afterwards."""
    from tests.postgres import Cluster, binaries
    if binaries() is None:
        _no_postgresql("the postgresql package is not installed")
    cluster = Cluster().start()
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def postgresql_url(postgresql_server):
    """A ``postgresql://`` URL whose tables land in a schema of this test's own, dropped afterwards."""
    import psycopg
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(postgresql_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{postgresql_server}?options=-csearch_path%3D{schema}"
    with psycopg.connect(postgresql_server, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        try:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
        except psycopg.Error:
            pass


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """What ``database`` is set to, once for each engine: an SQLite file, then a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "autocall.db")
    return request.getfixturevalue("postgresql_url")
