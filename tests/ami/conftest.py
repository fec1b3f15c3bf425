"""Fixtures of the AMI tests: a task.Clock, a fake endpoint, and a runner for the global reactor."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:          # ``tests.fakes`` importable under a bare ``pytest`` too
    sys.path.insert(0, _ROOT)

from ami_helpers import FakeEndpoint, fired  # noqa: E402


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def endpoint(clock: Clock) -> FakeEndpoint:
    return FakeEndpoint(clock)


@pytest.fixture
def run():
    """``run(deferred, timeout=...)`` iterates the global reactor until ``deferred`` fires; returns its result.

    pytest_twisted is not installed; the reactor is never started, only
    iterated, so each test (and each xdist worker process) drives its own turns.
    """
    from twisted.internet import reactor

    def run_until(deferred: defer.Deferred, timeout: float = 10.0) -> Any:
        results = fired(deferred)
        deadline = time.monotonic() + timeout
        while not results:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing fired within {timeout} s")
            reactor.iterate(0.005)
        if isinstance(results[0], Failure):
            results[0].raiseException()
        return results[0]

    return run_until


@pytest.fixture
def reactor():
    from twisted.internet import reactor as global_reactor
    return global_reactor
