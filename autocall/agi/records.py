"""Call records written in batches on the reactor, a transaction per batch, never waiting on a lock.

Why not a database thread: measured under load (benchmarks/agi_load.py),
a writer thread cost 100 to 150 microseconds of CPU per call, most of it
the GIL going back and forth between the writer and the reactor at every
socket call; the same writes done here cost what the JSON and SQLite work
itself costs, a few tens. So the writes stay on the reactor, and what could
stall it is taken away:

- records queue up and are written every ``batch_delay`` (100 ms), at most
  ``chunk`` (64, a couple of milliseconds of work) per transaction, the
  next chunk after the reactor has had its turn;
- the connection never waits for a lock (``busy_timeout = 0``): when
  another process (the dialer) holds the write lock, the batch stays queued
  and is tried again shortly; nothing is dropped;
- a write that fails because of the database itself (full disk, read-only
  file, I/O error, damage) is kept queued the same way and tried again every
  ``DISK_RETRY_S``, with one line every ``LOCKED_WARNING_S`` naming the file
  and what to do (``autocall.store.db.database_problem``);
- a write that fails because of one record (a value SQLite or JSON cannot
  take) costs only that record, which is stored without the parts that
  failed and says so in its ``error``; the record in full goes to the log;
- the WAL is never checkpointed by these commits (``wal_autocheckpoint =
  0``, the only step that fsyncs); a small thread of its own checkpoints
  every few seconds with another connection, and spends its time in SQLite
  with the GIL released.

``save`` (a finished call), ``add_dnc`` (a script's ``optout``, written at
the next tick) and ``note_amd`` share the queue, so one connection does
every write. ``close`` writes everything still queued, waiting for locks
this time: a record handed over before the server stops is never lost.

A record whose ``call_id`` is already in the database (Asterisk reusing a
channel's uniqueid across server restarts, or two Asterisks sharing a
database) is stored as ``<id>-2``, ``-3``... rather than overwriting it.

On PostgreSQL (``database = "postgresql://..."``, several servers writing
into one database) there is no lock to wait for and no WAL to checkpoint;
what can happen instead is the database going away (down, restarting,
failing over). The server keeps answering calls: records queue in memory
and are written once the database is back, with one log line when it goes
and one when it returns. The queue is bounded, by age (``outage_limit_s``,
10 minutes) and by size (``outage_limit_records``): past that, the oldest
records are given up, each written in full to the log, never silently.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from autocall.engine.record import CallRecord
from autocall.store import calls as store
from autocall.store.db import (check_writable, database_problem, engine_of, is_file_problem, is_locked, transaction,
                                unavailable_errors)

log = logging.getLogger("autocall.agi.records")

DEFAULT_BATCH_DELAY_S = 0.1
DEFAULT_CHUNK = 64
RETRY_DELAY_S = 0.05
DISK_RETRY_S = 1.0
LOCKED_WARNING_S = 10.0
CHECKPOINT_EVERY_S = 5.0
CLOSE_BUSY_TIMEOUT_MS = 30_000
OUTAGE_LIMIT_S = 600.0
OUTAGE_LIMIT_RECORDS = 200_000
OUTAGE_RETRY_S = 1.0
OUTAGE_REMINDER_S = 30.0
# How long one write may wait for a pooled PostgreSQL connection: it runs on the reactor.
PG_WAIT_S = 0.5
PG_OUTAGE_WAIT_S = 0.01

_SAVE, _DNC, _AMD = range(3)


class RecordWriter:
    """The server's database connection: batched writes and quick reads, on the reactor.

    ``open()`` before use (a bad database path is a ``UserError`` there),
    ``close()`` at the end. ``clock`` (an ``IReactorTime``, the reactor by
    default) schedules the batches.
    """

    def __init__(self, database: str, reactor=None, *, clock=None, batch_delay: float = DEFAULT_BATCH_DELAY_S,
                 chunk: int = DEFAULT_CHUNK, checkpoint_every: float = CHECKPOINT_EVERY_S,
                 connect: Callable[[str], Any] | None = None, events=None,
                 outage_limit_s: float = OUTAGE_LIMIT_S, outage_limit_records: int = OUTAGE_LIMIT_RECORDS) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.database = database
        self._clock = clock or reactor
        self._batch_delay = batch_delay
        self._chunk = chunk
        self._checkpoint_every = checkpoint_every
        self._connect = connect
        self.events = events      # an autocall.outbox.events.EventWriter: call_ended queued with each record
        self._conn: Any = None
        self._pending: deque[tuple] = deque()
        self._outage_limit_s = outage_limit_s
        self._outage_limit_records = outage_limit_records
        self._unavailable: tuple[type[BaseException], ...] = ()
        self.down_since: float | None = None        # the database could not be reached since then
        self._reminded = 0.0
        self._scheduled = None
        self._waiters: list[defer.Deferred] = []
        self._held_since: float | None = None
        self._checkpointer: _Checkpointer | None = None
        self.written = 0          # records committed
        self.failed = 0           # writes given up (logged one by one)
        self.salvaged = 0         # records stored without the parts that could not be stored

    # --- life cycle ------------------------------------------------------------------

    def open(self) -> None:
        """Open and migrate the database now; start the checkpoint thread."""
        if self._conn is not None:
            return
        if self._connect is None:
            from autocall.store.db import connect
            self._connect = connect
        conn = self._connect(self.database)
        try:
            check_writable(conn, self.database)
        except Exception:
            conn.close()
            raise
        self._unavailable = unavailable_errors(conn)
        if engine_of(conn) == "postgresql":
            conn.set_wait(PG_WAIT_S)
            self._conn = conn
            return
        conn.execute("PRAGMA busy_timeout = 0")
        if self.database != ":memory:":
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._checkpointer = _Checkpointer(self._connect, self.database, self._checkpoint_every)
            self._checkpointer.start()
        self._conn = conn

    def close(self) -> None:
        """Write everything queued (waiting for locks now), stop the checkpoints, close the database."""
        conn = self._conn
        if conn is None:
            return
        if self._scheduled is not None and self._scheduled.active():
            self._scheduled.cancel()
        self._scheduled = None
        postgresql = engine_of(conn) == "postgresql"
        if postgresql:
            self._close_postgresql()
            self._release_waiters()
            self._conn = None
            conn.close()
            return
        conn.execute(f"PRAGMA busy_timeout = {CLOSE_BUSY_TIMEOUT_MS}")
        while self._pending:
            self._write_chunk(final=True)
        self._release_waiters()
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self._conn = None
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass
        conn.close()

    def _close_postgresql(self) -> None:
        """Write what is queued; a database still away after ``CLOSE_BUSY_TIMEOUT_MS``: log the rest in full."""
        deadline = time.monotonic() + CLOSE_BUSY_TIMEOUT_MS / 1000
        while self._pending:
            if self._write_chunk(final=False) is None:
                continue
            if time.monotonic() >= deadline:
                left = list(self._pending)
                self._pending.clear()
                for job in left:
                    self._give_up(job, f"the database was unreachable for {CLOSE_BUSY_TIMEOUT_MS // 1000} s at "
                                       f"shutdown")
                return
            time.sleep(OUTAGE_RETRY_S / 2)

    @property
    def running(self) -> bool:
        return self._conn is not None

    @property
    def pending(self) -> int:
        return len(self._pending)

    # --- what the server hands over ------------------------------------------------------

    def save(self, record: CallRecord, *, channel: str = "", attempt_id: int | None = None,
             origin: str = "agi") -> None:
        """Queue a finished call's record (secret keys are already masked in it)."""
        self._pending.append((_SAVE, record, channel, attempt_id, origin))
        if self._scheduled is None:
            self._schedule(self._batch_delay)

    def add_dnc(self, number: str, source: str) -> None:
        """Queue a do-not-call entry (``optout``); written at the next turn of the reactor."""
        self._pending.appendleft((_DNC, number, source))
        self._schedule(0)

    def note_amd(self, attempt_id: int, status: str) -> None:
        self._pending.appendleft((_AMD, attempt_id, status))
        self._schedule(0)

    def query(self, function: Callable[..., Any], *args: Any) -> defer.Deferred:
        """``function(conn, *args)`` (a read; WAL readers never wait), as a Deferred."""
        if self._conn is None:
            return defer.fail(RuntimeError("the record writer is not open"))
        return defer.maybeDeferred(function, self._conn, *args)

    def flush(self) -> defer.Deferred:
        """Fire once everything queued so far is written (at once if nothing is)."""
        if not self._pending or self._conn is None:
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        self._waiters.append(d)
        self._schedule(0)
        return d

    # --- writing ---------------------------------------------------------------------------

    def _schedule(self, delay: float) -> None:
        scheduled = self._scheduled
        if scheduled is not None:
            if scheduled.getTime() <= self._clock.seconds() + delay:
                return                              # already due as soon
            scheduled.cancel()
        self._scheduled = self._clock.callLater(delay, self._tick)

    def _tick(self) -> None:
        self._scheduled = None
        if self._conn is None:
            return
        problem = self._write_chunk(final=False)
        if problem is not None:
            # Locked by another process: try again shortly. Unreachable: once a second. The database
            # failed (full disk...): every DISK_RETRY_S.
            self._schedule(OUTAGE_RETRY_S if self.down_since is not None
                           else RETRY_DELAY_S if is_locked(problem) else DISK_RETRY_S)
            return
        if self._pending:
            self._schedule(0)                       # the next chunk, after the reactor's other work
        else:
            self._release_waiters()

    def _write_chunk(self, final: bool) -> Exception | None:
        """Write up to ``chunk`` queued items in one transaction; the error when the database itself failed
        (locked, full, read-only...: the items are queued again), else None."""
        pending = self._pending
        jobs = [pending.popleft() for _ in range(min(self._chunk, len(pending)))]
        try:
            _transaction(self._conn, jobs, events=self._events_now())
            self.written += [job[0] for job in jobs].count(_SAVE)
        except self._unavailable as exc:
            return self._unreachable(jobs, exc)
        except Exception as exc:
            if is_file_problem(exc):
                return self._held(jobs, final, exc)
            # One bad write must not cost the others: each in its own transaction. (A call id
            # already stored lands here too, and is given a new one.)
            for position, job in enumerate(jobs):
                try:
                    _transaction(self._conn, [job], one_by_one=True, events=self._events_now())
                    self.written += job[0] == _SAVE
                except self._unavailable as exc:
                    return self._unreachable(jobs[position:], exc)
                except Exception as exc:
                    if is_file_problem(exc):
                        return self._held(jobs[position:], final, exc)
                    self._salvage(job, exc)
        self._held_since = None
        if self.down_since is not None:
            log.warning("database back after %.0f s: the queued call records are being written (%d left)",
                        self._clock.seconds() - self.down_since, len(self._pending),
                        extra={"fields": {"database": self._shown()}})
            self.down_since = None
            if engine_of(self._conn) == "postgresql":
                self._conn.set_wait(PG_WAIT_S)
        return None

    def _shown(self) -> str:
        from autocall.config import is_database_url
        if not is_database_url(self.database):
            return self.database
        from autocall.store.pg import shown
        return shown(self.database)

    def _unreachable(self, jobs: list[tuple], exc: BaseException) -> BaseException:
        """The database cannot be reached: keep everything queued, within the outage bounds."""
        self._pending.extendleft(reversed(jobs))
        now = self._clock.seconds()
        if self.down_since is None:
            self.down_since = self._reminded = now
            if engine_of(self._conn) == "postgresql":
                self._conn.set_wait(PG_OUTAGE_WAIT_S)      # the pool reconnects in the background meanwhile
            reason = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
            log.warning("database unavailable (%s): calls go on, their records wait in memory (%d now; kept up to "
                        "%.0f s)", reason, len(self._pending), self._outage_limit_s,
                        extra={"fields": {"database": self._shown()}})
        elif now - self._reminded >= OUTAGE_REMINDER_S:
            self._reminded = now
            log.warning("database still unavailable after %.0f s; %d records wait in memory",
                        now - self.down_since, len(self._pending), extra={"fields": {"database": self._shown()}})
        self._drop_beyond_bounds(now)
        return exc

    def _drop_beyond_bounds(self, now: float) -> None:
        over = len(self._pending) - self._outage_limit_records
        if now - self.down_since >= self._outage_limit_s:
            over = len(self._pending)
        for _ in range(max(0, over)):
            self._give_up(self._pending.popleft(), f"the database was unavailable for {now - self.down_since:.0f} s "
                                                   f"and the in-memory queue is bounded")

    def _held(self, jobs: list[tuple], final: bool, problem: Exception) -> Exception | None:
        """The database cannot take writes now: requeue; at close (after the busy timeout), log what is left."""
        if not final:
            self._pending.extendleft(reversed(jobs))
            self._note_held(problem)
            return problem
        left = jobs + list(self._pending)
        self._pending.clear()
        why = (f"the database stayed locked for {CLOSE_BUSY_TIMEOUT_MS // 1000} s at shutdown" if is_locked(problem)
               else f"{database_problem(self._shown(), problem)}; still so at shutdown")
        for job in left:       # the last resort: the record in full in the log, rather than nowhere
            self._give_up(job, why)
        return None

    def _salvage(self, job: tuple, problem: Exception) -> None:
        """A record SQLite would not take: store what can be stored, saying what was left out."""
        why = _describe(problem)
        if job[0] != _SAVE:
            self._give_up(job, why)
            return
        record = job[1]
        self._log_record(logging.WARNING, job, f"the call record could not be stored in full ({why}); "
                                               "stored without the parts that failed")
        try:
            kept = _storable(record, why)
            _transaction(self._conn, [(_SAVE, kept, *job[2:])], one_by_one=True)
        except Exception as exc:
            if is_file_problem(exc) or isinstance(exc, self._unavailable):
                self._pending.appendleft(job)     # the database went away meanwhile: the whole record waits
                return
            self._give_up(job, _describe(exc))
            return
        self.written += 1
        self.salvaged += 1

    def _give_up(self, job: tuple, why: str) -> None:
        self.failed += 1
        self._log_record(logging.ERROR, job, f"could not write to the database: {why}")

    def _log_record(self, level: int, job: tuple, message: str) -> None:
        """``message`` with the item in full, as far as it can be shown (never raises: it is the last resort)."""
        fields: dict = {"database": self._shown()}
        if job[0] == _SAVE:
            fields["call_id"] = _text(job[1].call_id)
            try:
                fields["record"] = json.dumps(job[1].to_dict(), default=repr, ensure_ascii=True)
            except Exception as exc:
                fields["record"] = f"(cannot be shown: {_describe(exc)})"
        else:
            fields["item"] = _text(repr(job[1:]))
        log.log(level, "%s", message, extra={"fields": fields})

    def _note_held(self, problem: Exception) -> None:
        now = self._clock.seconds()
        locked = is_locked(problem)
        if self._held_since is None:
            self._held_since = now
            if locked:
                return           # a lock is usually gone in a moment: say so only if it lasts
        elif now - self._held_since < LOCKED_WARNING_S:
            return
        else:
            self._held_since = now
        if locked:
            log.warning("the database has been locked by another process for %.0f s; %d records wait",
                        LOCKED_WARNING_S, len(self._pending), extra={"fields": {"database": self._shown()}})
        else:
            log.error("%s; %d records wait and are tried again", database_problem(self._shown(), problem),
                      len(self._pending), extra={"fields": {"database": self._shown()}})

    def _events_now(self) -> tuple | None:
        return (self.events, self._clock.seconds()) if self.events else None

    def _release_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)


def _transaction(conn: Any, jobs: list[tuple], one_by_one: bool = False, events: tuple | None = None) -> None:
    """Write ``jobs`` in one transaction. The records go in with one plain INSERT, which fails (and
    with it the transaction) if a call id is already stored; ``one_by_one`` checks each id first
    and gives a taken one a new id (``_unique_id``): the writer's second try after such a failure."""
    calls = []
    with transaction(conn):
        for job in jobs:
            kind = job[0]
            if kind == _SAVE:
                _, record, channel, attempt_id, origin = job
                if one_by_one:
                    _unique_id(conn, record)
                    store.save_call(conn, record, channel=channel, attempt_id=attempt_id, origin=origin)
                else:
                    calls.append((record, channel, attempt_id, origin))
            elif kind == _DNC:
                store.add_dnc(conn, job[1], source=job[2])
            else:
                from autocall.store.campaigns import note_amd
                note_amd(conn, job[1], job[2])
        if calls:
            store.insert_calls(conn, calls)
        if events is not None:      # (EventWriter, now): call_ended in the record's own transaction
            for job in jobs:
                if job[0] == _SAVE:
                    events[0].call_ended(conn, job[1].call_id, events[1])


def _describe(exc: BaseException) -> str:
    return _text(f"{exc.__class__.__name__}: {exc}")[:500]


def _text(value: str) -> str:
    """``value`` as text SQLite and the log can take (a lone surrogate becomes U+FFFD)."""
    return value.encode("utf-8", "replace").decode("utf-8") if isinstance(value, str) else repr(value)


def _storable(record: CallRecord, why: str) -> CallRecord:
    """A copy of ``record`` that can be stored: texts made valid, every list or dict that cannot be written
    as JSON left empty; ``error`` says what was left out."""
    changes: dict = {name: _text(getattr(record, name)) for name in ("call_id", "script", "caller", "called")}
    left_out = []
    for name in store.JSON_COLUMNS:
        value = getattr(record, name)
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")     # what storing it does, as strictly
        except Exception:
            changes[name] = {} if isinstance(value, dict) else []
            left_out.append(name)
    if record.result is not None:
        changes["result"] = _text(str(record.result))
    note = f"the record could not be stored in full ({why})"
    if left_out:
        note += "; left out: " + ", ".join(left_out)
    changes["error"] = note if not record.error else f"{_text(str(record.error))}; {note}"
    return dataclasses.replace(record, **changes)


def _unique_id(conn: Any, record: CallRecord) -> None:
    """Never overwrite an earlier call: a taken ``call_id`` gets ``-2``, ``-3``..."""
    if not store.call_exists(conn, record.call_id):
        return
    number = 2
    while store.call_exists(conn, f"{record.call_id}-{number}"):
        number += 1
    original, record.call_id = record.call_id, f"{record.call_id}-{number}"
    log.warning("call id already in the database; stored under a new id",
                extra={"fields": {"call_id": original, "stored_as": record.call_id}})


class _Checkpointer:
    """Checkpoints the WAL every few seconds from a thread of its own (SQLite releases the GIL meanwhile).

    It never stops while the writer is open: a checkpoint that fails (the database locked for long, gone,
    a full disk) is logged once, with the fix, and tried again at the next turn on a fresh connection;
    the line saying it works again follows. Without checkpoints the WAL file grows without bound."""

    def __init__(self, connect, database: str, every: float) -> None:
        self._connect = connect
        self._database = database
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="autocall-checkpoint", daemon=True)
        self.checkpoints = 0       # checkpoints done
        self.failures = 0          # checkpoints that failed

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn = None
        failing = False
        try:
            while not self._stop.wait(self._every):
                try:
                    if conn is None:
                        conn = self._connect(self._database)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except Exception as exc:
                    self.failures += 1
                    if not failing:
                        problem = (database_problem(self._database, exc) if isinstance(exc, sqlite3.Error)
                                   else f"{self._database}: {_describe(exc)}")
                        log.error("WAL checkpoint failed: %s; tried again every %g s", problem, self._every,
                                  extra={"fields": {"database": self._database}})
                    failing = True
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            conn.close()
                    conn = None
                    continue
                self.checkpoints += 1
                if failing:
                    failing = False
                    log.warning("WAL checkpoints work again", extra={"fields": {"database": self._database}})
        except BaseException as exc:      # never silently: the thread itself is going away
            log.error("WAL checkpoints stopped: %s", _describe(exc), extra={"fields": {"database": self._database}})
            raise
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
