"""Running the global Twisted reactor inside a test without ``reactor.run()`` (which cannot restart)."""

from __future__ import annotations

import time
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure


def iterate_until(deferred: defer.Deferred, timeout: float = 10.0, reactor=None) -> Any:
    """Iterate the reactor until ``deferred`` fires; return its result or raise its failure.

    A wall-clock guard fails the test instead of hanging it. Each pytest-xdist
    worker is its own process with its own reactor, so ``-n 2`` is safe.
    """
    if reactor is None:
        from twisted.internet import reactor
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
