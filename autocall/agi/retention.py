"""The server's daily retention run: records, recordings and attempts older than ``retention`` are deleted.

Runs at start and then every 24 hours on the server's clock (``IReactorTime``,
so tests drive it with ``task.Clock``), in a thread of the reactor's pool
with a connection of its own: deleting a large backlog never stalls calls,
and it deletes in short transactions, so the record writer waits little.
"""

from __future__ import annotations

import logging
import time

from twisted.internet import defer, task, threads

from autocall.agi.logs import log_event
from autocall.privacy import purge_before

log = logging.getLogger("autocall.agi.retention")

EVERY_S = 86_400.0


class RetentionJob:
    """``start()`` runs the first purge now and schedules the next ones; ``stop()`` cancels them."""

    def __init__(self, database: str, retention_ms: int, recordings_dir: str, *, reactor, clock=None,
                 now=time.time, run_in_thread=None) -> None:
        self.database = database
        self.retention_s = retention_ms / 1000
        self.recordings_dir = recordings_dir
        self._reactor = reactor
        self._now = now
        self._in_thread = run_in_thread or (lambda f, *a: threads.deferToThreadPool(
            reactor, reactor.getThreadPool(), f, *a))
        self._loop = task.LoopingCall(self.run_once)
        self._loop.clock = clock or reactor
        self.runs = 0

    def start(self) -> None:
        self._loop.start(EVERY_S, now=True).addErrback(lambda failure: log.error(
            "retention stopped: %s", failure.getErrorMessage()))

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def run_once(self) -> defer.Deferred:
        """Delete what is older than the retention now; the Deferred fires with the counts (never fails)."""
        cutoff = self._now() - self.retention_s
        done = self._in_thread(self._purge, cutoff)
        done.addCallbacks(self._done, self._failed)
        return done

    def _purge(self, cutoff: float) -> dict:
        from autocall.store.db import connect

        conn = connect(self.database)
        try:
            return purge_before(conn, cutoff, self.recordings_dir)
        finally:
            conn.close()

    def _done(self, counts: dict) -> dict:
        self.runs += 1
        log_event(log, logging.INFO, "retention: deleted what was older than the retention period",
                  retention_days=round(self.retention_s / 86_400, 2), **counts)
        return counts

    def _failed(self, failure) -> None:
        self.runs += 1
        log_event(log, logging.ERROR, "retention: could not delete old records, trying again tomorrow",
                  error=failure.getErrorMessage(), database=self.database)
        return None
