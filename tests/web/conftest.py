"""The reactor's thread pool (name resolution runs there) for tests that iterate a reactor never started."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _reactor_thread_pool():
    from twisted.internet import reactor
    pool = reactor.getThreadPool()
    if not pool.started:
        pool.start()
    yield
    pool.stop()
