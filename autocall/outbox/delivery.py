"""``Outbox``: queuing ``notify`` and delivering every due outbox row, on the reactor.

Used by ``autocall serve`` and ``autocall campaign run`` (whichever runs
delivers; several processes share the work through claims with a lease).

- ``enqueue_notify(...)`` writes the row at once, in its own transaction,
  and returns a Deferred that fires once it is committed: the statement
  after a ``notify`` runs only then. A database locked by another process
  is tried again shortly; nothing is dropped.
- Deliveries are POSTs of the row's body with ``Idempotency-Key`` (the
  same on every try), ``X-AutoCall-Event``, and when the service has a
  signing secret ``X-AutoCall-Timestamp``/``X-AutoCall-Signature``.
- 2xx: delivered. No answer, 5xx, 429: tried again after a growing delay
  (``store.outbox.retry_delay``; a ``Retry-After`` is honoured), for up to
  24 hours. Any other status: failed at once (the receiver refused it).
- In order per ordering key (a call): the next row of a call goes only
  once the one before it is delivered or failed.

The database connection never waits for a lock (``busy_timeout = 0``):
a write that meets one stays queued and is tried again at the next turn,
so the reactor (and every call on it) is never held up here.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import sqlite3
from collections import deque
from typing import Any, Callable, Mapping

from twisted.internet import defer

from autocall.engine.web import Reply
from autocall.outbox.signing import signed_headers
from autocall.services_config import ServiceConfig
from autocall.store import outbox as store
from autocall.store.db import is_locked, transaction

log = logging.getLogger("autocall.outbox")

POLL_S = 1.0
RETRY_WRITE_S = 0.05
DELIVERY_TIMEOUT_S = 10.0
LEASE_S = 60.0
MAX_IN_FLIGHT = 32
STOP_WAIT_S = 10.0
_workers = itertools.count(1)


class Outbox:
    """``start()``, then ``enqueue_notify``/``nudge``; ``stop()`` waits for the deliveries in flight."""

    def __init__(self, database: str, services: Mapping[str, ServiceConfig], *, reactor: Any = None,
                 clock: Any = None, client: Any = None, connect: Callable[[str], Any] | None = None,
                 poll_s: float = POLL_S, timeout_s: float = DELIVERY_TIMEOUT_S, lease_s: float = LEASE_S,
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.database = database
        self.services = dict(services)
        self.clock = clock or reactor
        if client is None:
            from autocall.web.client import WebClient
            client = WebClient(services, reactor, clock=self.clock)
        self.client = client
        self._connect = connect
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.lease_s = lease_s
        self.max_in_flight = max_in_flight
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{next(_workers)}"
        self.conn = None
        self.in_flight: dict[int, defer.Deferred] = {}
        self._writes: deque[tuple[Callable, tuple, defer.Deferred | None]] = deque()
        self._timer = None
        self._running = False
        self.delivered = 0
        self.failed = 0
        self.retried = 0

    # --- life cycle -----------------------------------------------------------------------------------------
    def open(self) -> None:
        if self.conn is not None:
            return
        if self._connect is None:
            from autocall.store.db import connect
            self._connect = connect
        self.conn = self._connect(self.database)
        if isinstance(self.conn, sqlite3.Connection):     # never wait for a lock on the reactor
            self.conn.execute("PRAGMA busy_timeout = 0")

    def start(self) -> None:
        """Open the database and deliver whatever is due, now and as it comes due."""
        self.open()
        self._running = True
        self._schedule(0)

    def stop(self) -> defer.Deferred:
        """Claim nothing more; wait (up to the delivery timeout) for the deliveries in flight, write what is
        queued, give back this process's claims, close. Undelivered rows stay for the next process."""
        self._running = False
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        waiting = list(self.in_flight.values())

        def finish(_: object) -> None:
            if self.conn is None:
                return
            if isinstance(self.conn, sqlite3.Connection):
                self.conn.execute("PRAGMA busy_timeout = 10000")
            self._flush_writes()
            try:
                with transaction(self.conn):
                    store.release(self.conn, self.worker)
            except Exception as exc:     # the claims lapse by themselves after their lease
                log.warning("could not give back the outbox claims: %s", exc)
            self.conn.close()
            self.conn = None

        gathered = defer.DeferredList(waiting, consumeErrors=True)
        gathered.addTimeout(STOP_WAIT_S, self.clock)
        gathered.addBoth(finish)
        gathered.addBoth(lambda _: self.client.close())
        return gathered.addBoth(lambda _: None)

    # --- what calls use ------------------------------------------------------------------------------------
    def enqueue_notify(self, *, call_id: str, service: str, path: str, body: Mapping[str, Any],
                       script_url: str = "") -> defer.Deferred:
        """Queue a ``notify``: ``path`` already encoded (``autocall.engine.web.build_path``), ``body`` the JSON
        object of its ``with`` pairs; fires with the row id once the row is committed."""
        done: defer.Deferred = defer.Deferred()
        kwargs = {"kind": "notify", "service": service, "path": path, "body": dict(body),
                  "ordering_key": f"call:{call_id}", "call_id": call_id, "base_url": script_url,
                  "now": self.clock.seconds()}
        self._writes.append((_enqueue, (kwargs,), done))
        if not self._flush_writes():
            self._schedule(RETRY_WRITE_S)
        self.nudge()
        return done

    def nudge(self) -> None:
        """Look for due rows at the next turn of the reactor (something was queued or finished)."""
        if self._running:
            self._schedule(0)

    def settled(self, since: float) -> bool:
        """Nothing in flight, nothing left to write, nothing due since ``since`` (the rest waits for a retry)."""
        if self.in_flight or self._writes or self.conn is None:
            return not self.in_flight and not self._writes
        due = store.next_due(self.conn)
        return due is None or due > since

    # --- the loop --------------------------------------------------------------------------------------------
    def _schedule(self, delay: float) -> None:
        timer = self._timer
        if timer is not None and timer.active():
            if timer.getTime() <= self.clock.seconds() + delay:
                return
            timer.cancel()
        self._timer = self.clock.callLater(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self.conn is None:
            return
        if not self._flush_writes():
            self._schedule(RETRY_WRITE_S)
            return
        if not self._running:
            return
        now = self.clock.seconds()
        free = self.max_in_flight - len(self.in_flight)
        try:
            due = store.next_due(self.conn)            # a read: the write lock only when something is due
        except Exception as exc:
            log.error("cannot read the outbox: %s", exc, extra={"fields": {"database": self.database}})
            due = None
        if due is None or due > now:
            self._schedule(self.poll_s if due is None else min(self.poll_s, due - now))
            return
        if free > 0:
            try:
                with transaction(self.conn):
                    rows = store.claim_due(self.conn, self.worker, now, free, self.lease_s)
            except Exception as exc:
                if not is_locked(exc):
                    log.error("cannot read the outbox: %s", exc, extra={"fields": {"database": self.database}})
                self._schedule(RETRY_WRITE_S if is_locked(exc) else self.poll_s)
                return
            for row in rows:
                self._deliver(row)
        self._schedule(self.poll_s)

    def _deliver(self, row: dict) -> None:
        body = row["body"].encode("utf-8")
        headers = {"Idempotency-Key": row["idempotency_key"], "X-AutoCall-Event": row["kind"],
                   "Content-Type": "application/json"}
        configured = self.services.get(row["service"])
        if configured is not None and configured.signing_secret is not None and configured.signing_secret.value:
            headers.update(signed_headers(configured.signing_secret.value, int(self.clock.seconds()), body))
        d = self.client.request(row["service"], "POST", row["path"], script_url=row["base_url"], body=body,
                                headers=headers, timeout_s=self.timeout_s, call_id=row["call_id"] or None)
        self.in_flight[row["id"]] = d
        d.addCallback(self._settled, row)
        d.addErrback(self._unexpected, row)

    def _settled(self, reply: Reply, row: dict) -> None:
        self.in_flight.pop(row["id"], None)
        now = self.clock.seconds()
        status = reply.status
        if 200 <= status < 300:
            self.delivered += 1
            self._write(store.mark_delivered, row["id"], self.worker, status, now)
        elif status == 0 or status >= 500 or status == 429:
            self.retried += 1
            not_before = _retry_after(reply.headers.get("retry-after"), now)
            self._write(_retry, row, self.worker, status, reply.error, now, not_before)
        else:
            self.failed += 1
            log.warning("delivery refused by the receiver; not tried again",
                        extra={"fields": {"outbox_id": row["id"], "kind": row["kind"], "service": row["service"],
                                          "path": row["path"], "status": status}})
            self._write(store.mark_failed, row["id"], self.worker, status, reply.error, now)
        self.nudge()

    def _unexpected(self, failure, row: dict) -> None:
        self.in_flight.pop(row["id"], None)
        log.error("delivery %d failed unexpectedly: %s", row["id"], failure.getErrorMessage())

    # --- writes ----------------------------------------------------------------------------------------------
    def _write(self, function: Callable, *args: Any) -> None:
        self._writes.append((function, args, None))
        if not self._flush_writes():
            self._schedule(RETRY_WRITE_S)

    def _flush_writes(self) -> bool:
        """Write everything queued, each in its own transaction; False when the database is locked (kept)."""
        while self._writes:
            function, args, done = self._writes[0]
            try:
                with transaction(self.conn):
                    result = function(self.conn, *args)
            except Exception as exc:
                if is_locked(exc):
                    return False
                self._writes.popleft()
                log.error("cannot write to the outbox: %s: %s", exc.__class__.__name__, exc,
                          extra={"fields": {"database": self.database}})
                if done is not None:
                    done.errback(exc)
                continue
            self._writes.popleft()
            if done is not None:
                done.callback(result)
        return True


def _enqueue(conn, kwargs: dict) -> int:
    return store.enqueue(conn, **kwargs)


def _retry(conn, row: dict, worker: str, status: int, error: str, now: float, not_before: float | None) -> None:
    if store.mark_retry(conn, row["id"], worker, status, error, now, not_before) == store.FAILED:
        log.warning("delivery given up after 24 hours",
                    extra={"fields": {"outbox_id": row["id"], "kind": row["kind"], "service": row["service"],
                                      "path": row["path"], "error": error}})


def _retry_after(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` in seconds (the date form is ignored: the growing delay applies)."""
    if value and value.strip().isdigit():
        return now + int(value.strip())
    return None


def make_outbox(config, reactor: Any = None) -> Outbox:
    """The outbox deliverer of a process (``serve``, ``campaign run``); a service whose ``env:NAME`` secret is
    not set is a ``ConfigError`` here, before anything starts."""
    from autocall.services_config import check_services
    check_services(config.services)
    return Outbox(config.database, config.services, reactor=reactor)


def deliver_due(config, *, reactor: Any = None, within_s: float = 10.0) -> dict[str, int]:
    """Run the reactor until every row due now is delivered or settled for later, at most ``within_s``;
    what is left stays queued for the next process (``campaign run`` on the simulated PBX, which runs
    without the reactor, calls this at its end)."""
    if reactor is None:
        from twisted.internet import reactor
    outbox = make_outbox(config, reactor)
    started: dict[str, float] = {}

    def check() -> None:
        if outbox.settled(since=started["at"]) or reactor.seconds() - started["at"] >= within_s:
            outbox.stop().addBoth(lambda _: reactor.stop())
        else:
            reactor.callLater(0.05, check)

    def begin() -> None:
        started["at"] = reactor.seconds()
        outbox.start()
        reactor.callLater(0.05, check)

    reactor.callWhenRunning(begin)
    reactor.run(installSignalHandlers=False)
    return {"delivered": outbox.delivered, "retried": outbox.retried, "failed": outbox.failed}
