"""Fixtures of the campaign tests: the test script, databases in tmp_path, CSV files, clocks and the reactor."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:           # ``tests.fakes`` importable under a bare ``pytest`` too
    sys.path.insert(0, str(ROOT))

from campaign_helpers import SCRIPT, drive  # noqa: E402

from tests.fakes.reactor import iterate_until  # noqa: E402


@pytest.fixture(scope="session")
def program(compiler):
    result = compiler.compile_file(str(SCRIPT))
    assert result.ok, result.render()
    return result.program


@pytest.fixture
def db(request, database_url):
    """The campaign database, on each engine in turn (``@pytest.mark.one_engine``: SQLite only, for tests
    of rules that do not depend on the engine and would only spend hours of simulated time twice)."""
    if request.node.get_closest_marker("one_engine") and "postgresql" in request.node.callspec.params.values():
        pytest.skip("engine-independent rule: tested on SQLite only")
    from autocall.store.db import connect
    conn = connect(database_url)
    yield conn
    conn.close()


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.advance(1_780_000_000)          # 2026-05-28, a Thursday
    return clock


@pytest.fixture
def run_clock():
    """``run_clock(clock, deferred)``: advance ``clock`` timer by timer until ``deferred`` fires; its result."""
    def run(clock: Clock, deferred: defer.Deferred, max_steps: int = 200_000) -> Any:
        return drive(clock, deferred, max_steps)
    return run


@pytest.fixture
def run_reactor():
    """``run_reactor(deferred, timeout)``: iterate the global reactor (never started) until ``deferred`` fires."""
    return iterate_until


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """``cli(*argv)``: ``autocall`` in this process, in ``tmp_path`` with its own database; (code, out, err)."""
    from autocall.cli.main import main
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOCALL_DATABASE", str(tmp_path / "autocall.db"))

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err
    return run
