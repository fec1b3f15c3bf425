"""Fixtures of the campaign tests: the test script, databases in tmp_path, CSV files, clocks and the reactor."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:           # ``tests.fakes`` importable under a bare ``pytest`` too
    sys.path.insert(0, str(ROOT))

from campaign_helpers import SCRIPT, drive  # noqa: E402


@pytest.fixture(scope="session")
def program(compiler):
    result = compiler.compile_file(str(SCRIPT))
    assert result.ok, result.render()
    return result.program


@pytest.fixture
def db(tmp_path):
    from autocall.store.db import connect
    conn = connect(str(tmp_path / "autocall.db"))
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
    """``run_reactor(deferred, timeout)``: iterate the global reactor (never started) until ``deferred`` fires.

    pytest_twisted is not installed; this is the same approach as tests/ami/conftest.py.
    """
    from twisted.internet import reactor

    def run(deferred: defer.Deferred, timeout: float = 10.0) -> Any:
        results: list = []
        deferred.addBoth(results.append)
        deadline = time.monotonic() + timeout
        while not results:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing fired within {timeout} s")
            reactor.iterate(0.005)
        if isinstance(results[0], Failure):
            results[0].raiseException()
        return results[0]

    return run
