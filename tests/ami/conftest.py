"""Fixtures of the AMI tests: a task.Clock, a fake endpoint, and a runner for the global reactor."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from twisted.internet.task import Clock

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:          # ``tests.fakes`` importable under a bare ``pytest`` too
    sys.path.insert(0, _ROOT)

from ami_helpers import FakeEndpoint  # noqa: E402

from tests.fakes.reactor import iterate_until  # noqa: E402


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def endpoint(clock: Clock) -> FakeEndpoint:
    return FakeEndpoint(clock)


@pytest.fixture
def run():
    """``run(deferred, timeout=...)`` iterates the global reactor until ``deferred`` fires; returns its result."""
    return iterate_until


@pytest.fixture
def reactor():
    from twisted.internet import reactor as global_reactor
    return global_reactor
