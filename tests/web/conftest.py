"""The reactor's thread pool (name resolution runs there) for tests that iterate a reactor never started."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def _thread_pool():
    from twisted.internet import reactor
    pool = reactor.getThreadPool()
    yield pool
    if pool.started:
        pool.stop()           # its threads would keep the worker process alive


@pytest.fixture(autouse=True)
def _resolver_threads(_thread_pool):
    if not _thread_pool.started:
        _thread_pool.start()
