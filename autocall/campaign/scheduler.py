"""The campaign scheduler: which contact is dialled when, through any PBX backend.

Time comes from an injected ``IReactorTime`` (the reactor, or ``task.Clock``
in tests and for the simulated PBX), so every rule below is tested without
real time:

- never more than ``concurrency`` attempts in flight, in the whole campaign
  (every worker running it counts: ``store.campaigns.claim_contacts``);
- never two dials closer than ``1 / rate`` seconds, campaign-wide (spacing;
  the last dial of an earlier run counts too);
- never a dial outside ``window`` in the callee's own time zone (the
  contact's ``timezone``, from its number or the list; else the window's):
  a contact whose window is closed waits, due again when it opens; calls
  already in flight finish;
- busy / noanswer / congestion / failed / no_script are retried after their
  delay until ``max_attempts``; every other outcome is final;
- a dial the PBX refused without calling anyone (``not_dialled``) is not an
  attempt: the contact is due again after a back-off that doubles with each
  refusal in a row (``REFUSED_BACKOFF_S`` up to ``REFUSED_BACKOFF_MAX_S``);
- the do-not-call list is checked right before each dial;
- pause/resume are read from the database (``campaign pause`` from another
  process) every ``poll_interval_s``;
- every attempt is committed (``store.campaigns.claim_contacts``) before the
  backend is asked to dial it;
- the poll is also this worker's heartbeat (its lease), and settles the
  attempts of workers that died (``store.campaigns.settle_orphans``);
- when the database cannot be reached (PostgreSQL down or restarting),
  dialling pauses, the outcomes of the calls in flight wait in memory, and
  everything resumes once the database answers again.

Contacts are claimed from the database a few at a time, so memory does not
grow with the size of the list.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

from twisted.internet import defer
from twisted.python.failure import Failure

from autocall.engine.record import CallRecord
from autocall.hours import Schedule
from autocall.store import campaigns as store
from autocall.store.db import transaction, unavailable_errors

log = logging.getLogger("autocall.campaign")

RETRYABLE = ("busy", "noanswer", "congestion", "failed", store.NO_SCRIPT)
DEFAULT_RETRY_MS = 600_000
REFUSED_BACKOFF_S = 1.0
REFUSED_BACKOFF_MAX_S = 60.0
LATE_RECORDS_EVERY = 30           # polls between two looks for late call records


@dataclass(frozen=True)
class CampaignSettings:
    """How a campaign dials. ``rate`` is dials per second (None: no limit); ``retry_after_ms`` maps an
    outcome (or ``"default"``) to its delay."""

    concurrency: int = 10
    rate: float | None = None
    max_attempts: int = 3
    retry_after_ms: dict[str, int] = field(default_factory=lambda: {"default": DEFAULT_RETRY_MS})
    window: Schedule | None = None
    poll_interval_s: float = 1.0
    batch_size: int = 200
    lease_s: float = store.DEFAULT_LEASE_S
    full_retry_s: float = 0.05         # campaign-wide --concurrency reached by other workers: look again

    def retry_delay_s(self, outcome: str) -> float:
        return self.retry_after_ms.get(outcome, self.retry_after_ms.get("default", DEFAULT_RETRY_MS)) / 1000


@dataclass(frozen=True)
class DialRequest:
    """One attempt as a backend sees it (already committed to the database)."""

    attempt_id: int
    attempt_number: int
    contact_id: int
    number: str
    params: dict
    sim_outcome: str = ""
    sim_keys: str = ""
    token: str = ""               # AUTOCALL_ATTEMPT: the attempt's unguessable token


@dataclass
class DialResult:
    """How an attempt ended. ``call``: call_id/result/keys/duration of a call record already saved (AMI);
    ``record``: a record to save with the attempt (the simulated PBX); ``not_dialled``: nothing was sent,
    the attempt is given back; ``refused``: the PBX itself refused to place the call (nothing dialled)."""

    outcome: str
    detail: str = ""
    uniqueid: str | None = None
    call: dict | None = None
    record: CallRecord | None = None
    not_dialled: bool = False
    refused: bool = False


class Backend(Protocol):
    """A PBX the scheduler dials through (``pbx_sim.SimPbx``, ``pbx_ami.AmiPbx``)."""

    def ready(self) -> bool: ...
    def free(self) -> int | None: ...          # calls it can take now (None: no limit of its own)
    def when_ready(self) -> defer.Deferred: ...
    def dial(self, request: DialRequest, on_answered: Callable[[str | None, str], None]) -> defer.Deferred: ...


class Observer:
    """What the progress display hears; every method is optional."""

    def started(self, scheduler: "Scheduler") -> None: ...
    def attempt_started(self, request: DialRequest) -> None: ...
    def attempt_ended(self, request: DialRequest, result: DialResult, final: bool,
                      next_try_at: float | None) -> None: ...
    def contact_skipped(self, number: str, outcome: str) -> None: ...
    def state_changed(self, state: str, detail: str = "") -> None: ...
    def finished(self, scheduler: "Scheduler") -> None: ...


class CampaignFailed(Exception):
    """The backend gave up (e.g. the AMI login was refused on a reconnect); carries the one-line reason."""


class Scheduler:
    """Runs one campaign to its end: ``run()`` fires when every contact is done or after ``stop()``."""

    def __init__(self, conn, campaign_id: int, backend: Backend, clock: Any, settings: CampaignSettings,
                 observer: Observer | None = None, *, worker: str | None = None, events=None) -> None:
        self.conn = conn
        self.worker = worker or store.new_worker_id()
        self.events = events              # an autocall.outbox.events.EventWriter, or None
        self.campaign_id = campaign_id
        self.backend = backend
        self.clock = clock
        self.settings = settings
        self.observer = observer or Observer()
        self.in_flight = 0
        self.dialled = 0
        self.ended = 0
        self.final = Counter()            # final outcomes reached during this run
        self.paused = False
        self.stopping = False
        self.waiting_for = ""             # why nothing is being dialled now ("window", "retry", ...)
        self.done: defer.Deferred = defer.Deferred()
        self.db_down_since: float | None = None
        self._unwritten: list[tuple[Callable, tuple, dict]] = []   # writes waiting for the database
        self._settle_after = 0.0
        self._unavailable = unavailable_errors(conn)
        self._wake = None
        self._poll = None
        self._waiting_ready = False
        self._pumping = False
        self._again = False
        self._finished = False
        self._failure: Exception | None = None
        self._interval = 1.0 / settings.rate if settings.rate else 0.0
        self._refusals = 0                # PBX refusals in a row, for the back-off
        self._polls = 0
        self._windows: dict[str | None, Schedule] = {}
        self.recovered: dict[str, int] = {}

    # -- life cycle --------------------------------------------------------------------------------------
    def run(self) -> defer.Deferred:
        """Settle what a previous run left open, then dial until every contact is done."""
        now = self.clock.seconds()
        store.register_worker(self.conn, self.campaign_id, self.worker, now, self.settings.lease_s,
                              pbx=str(getattr(self.backend, "name", "")))
        self.recovered = store.recover_open_attempts(self.conn, self.campaign_id, now)
        if self._interval:
            store.space_from_last_dial(self.conn, self.campaign_id, self._interval, now)
        state = store.campaign_state(self.conn, self.campaign_id)
        if state == store.CAMPAIGN_DONE and store.next_due_time(self.conn, self.campaign_id) is not None:
            store.set_campaign_state(self.conn, self.campaign_id, store.CAMPAIGN_RUNNING, now)
        self.paused = state == store.CAMPAIGN_PAUSED
        self.observer.started(self)
        if self.paused:
            self.observer.state_changed("paused")
        self._poll = self.clock.callLater(self.settings.poll_interval_s, self._poll_state)
        self._pump()
        return self.done

    def stop(self) -> defer.Deferred:
        """Dial nothing more; ``run()``'s Deferred fires once the calls in flight have ended."""
        if not self.stopping:
            self.stopping = True
            self.observer.state_changed("stopping")
        self._check_finished()
        return self.done

    def summary(self) -> dict:
        try:
            counts = store.status_counts(self.conn, self.campaign_id)
        except self._unavailable:
            counts = {}
        counts.update(dialled=self.dialled, ended=self.ended, stopped=self.stopping and not self._all_done(),
                      recovered=dict(self.recovered))
        return counts

    # -- the dialling loop ---------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Dial whatever the rules allow now; re-entrant calls (instant outcomes) loop here, not recurse."""
        if self._pumping:
            self._again = True
            return
        self._pumping = True
        try:
            self._again = True
            while self._again and not self._finished:
                self._again = False
                try:
                    self._dial_what_we_can()
                except self._unavailable as exc:
                    self._database_down(exc)
        finally:
            self._pumping = False
        self._check_finished()

    def _dial_what_we_can(self) -> None:
        if self.stopping or self.paused or self._finished or self.db_down_since is not None:
            return
        free = self.settings.concurrency - self.in_flight
        backend_free = self.backend.free() if hasattr(self.backend, "free") else None
        if backend_free is not None:
            free = min(free, backend_free)
        if free <= 0:
            return
        if not self.backend.ready():
            self._wait_for_backend()
            return
        now = self.clock.seconds()
        claim = store.claim_contacts(self.conn, self.campaign_id, self.worker, now,
                                     min(free, self.settings.batch_size), concurrency=self.settings.concurrency,
                                     interval=self._interval, window_opening=self._window_opening,
                                     scan=self.settings.batch_size)     # committed before dialling
        for number in claim.dnc:
            self.final["dnc"] += 1
            self.observer.contact_skipped(number, "dnc")
        if claim.state == store.CAMPAIGN_PAUSED:
            self._paused()
            return
        if not claim.contacts:
            if claim.rate_wait_until is not None:
                self._set_waiting("rate")
                self._wake_at(claim.rate_wait_until)
            elif claim.full:
                self._set_waiting("concurrency")
                self._wake_at(now + self.settings.full_retry_s)
            elif claim.dnc:
                self._again = True
            else:
                due = store.next_due_time(self.conn, self.campaign_id)
                if due is not None and due > now:
                    self._set_waiting("window" if claim.windowed else "retry")
                    self._wake_at(due)
            return
        self._set_waiting("")
        requests = [DialRequest(attempt.attempt_id, attempt.attempt_number, contact["id"], contact["number"],
                                json.loads(contact["params"]), contact["sim_outcome"], contact["sim_keys"],
                                attempt.token)
                    for contact, attempt in zip(claim.contacts, claim.started)]
        self.in_flight += len(requests)
        self.dialled += len(requests)
        for request in requests:
            self.observer.attempt_started(request)
            try:
                dialling = self.backend.dial(request, self._answered_callback(request))
            except Exception:
                dialling = defer.fail()
            dialling.addBoth(self._ended, request)
        self._again = True

    def _window_opening(self, zone: str | None, now: float) -> float | None:
        """None when the window is open for a callee in ``zone`` now; else when it opens next."""
        window = self.settings.window
        if window is None:
            return None
        local = self._windows.get(zone)
        if local is None:
            local = self._windows[zone] = replace(window, timezone=zone) if zone else window
        moment = datetime.fromtimestamp(now, timezone.utc)
        if local.contains(moment):
            return None
        opening = local.next_opening(moment)
        return max(opening.timestamp(), now + 1e-3) if opening is not None else now + 7 * 86400

    def _answered_callback(self, request: DialRequest) -> Callable[[str | None, str], None]:
        def answered(uniqueid: str | None = None, amd: str = "") -> None:
            self._write(store.mark_answered, self.conn, request.attempt_id, self.clock.seconds(), uniqueid, amd)
        return answered

    def _ended(self, result: DialResult | Failure, request: DialRequest) -> None:
        self.in_flight -= 1
        self.ended += 1
        now = self.clock.seconds()
        if isinstance(result, Failure):
            log.error("attempt %d: the backend failed: %s", request.attempt_id, result.getErrorMessage(),
                      exc_info=result.value if result.check(Exception) else None)
            result = DialResult("unknown", f"internal error while dialling: {result.getErrorMessage()}")
        next_try_at = None
        if result.not_dialled:
            self._refusals += 1
            backoff = min(REFUSED_BACKOFF_MAX_S, REFUSED_BACKOFF_S * 2 ** (self._refusals - 1))
            final, next_try_at = False, now + backoff
        elif result.outcome in RETRYABLE and request.attempt_number < self.settings.max_attempts:
            final, next_try_at = False, now + self.settings.retry_delay_s(result.outcome)
        else:
            final = True
        if not result.not_dialled:
            self._refusals = 0
        state = store.UNKNOWN if result.outcome == "unknown" else store.DONE
        self._write(self._finish_attempt, request, result, now, final, next_try_at, state)
        if final:
            self.final[result.outcome] += 1
        self.observer.attempt_ended(request, result, final, next_try_at)
        self._pump()

    def _finish_attempt(self, request: DialRequest, result: DialResult, now: float, final: bool,
                        next_try_at: float | None, state: str) -> None:
        with transaction(self.conn):     # the attempt and its events are stored together
            finished = store.finish_attempt(
                self.conn, request.attempt_id, request.contact_id, outcome=result.outcome, detail=result.detail,
                now=now, final=final, next_try_at=next_try_at, state=state, uniqueid=result.uniqueid,
                call=result.call, record=result.record, refund=result.not_dialled)
            if finished and self.events and not result.not_dialled:
                self.events.attempt_finished(self.conn, request.attempt_id,
                                             result.record.call_id if result.record else None, now)

    # -- waiting ------------------------------------------------------------------------------------------------
    def _set_waiting(self, why: str) -> None:
        if why != self.waiting_for:
            self.waiting_for = why
            if why:
                self.observer.state_changed("waiting", why)

    def _wake_at(self, when: float) -> None:
        if self._wake is not None and self._wake.active():
            if self._wake.getTime() <= when:
                return
            self._wake.cancel()
        now = self.clock.seconds()
        delay = max(0.0, when - now)
        while now + delay < when:          # float rounding must not wake us a hair early
            delay = math.nextafter(delay, math.inf)
        self._wake = self.clock.callLater(delay, self._woken)

    def _woken(self) -> None:
        self._wake = None
        self._pump()

    def _wait_for_backend(self) -> None:
        if self._waiting_ready:
            return
        self._waiting_ready = True
        self._set_waiting("pbx")
        self.backend.when_ready().addCallbacks(self._backend_ready, self._backend_failed)

    def _backend_ready(self, _: object) -> None:
        self._waiting_ready = False
        self._pump()

    def _backend_failed(self, failure: Failure) -> None:
        self._waiting_ready = False
        self._failure = CampaignFailed(failure.getErrorMessage())
        self.stop()

    def _poll_state(self) -> None:
        """The pause/resume poll, this worker's heartbeat, and settling what dead workers left open."""
        self._poll = None
        if self._finished:
            return
        now = self.clock.seconds()
        try:
            self._flush_unwritten()
            state, kept = store.renew_worker(self.conn, self.campaign_id, self.worker, now, self.settings.lease_s)
            if not kept:
                log.warning("campaign: this dialer's lease had run out and the others settled its open attempts; "
                            "it goes on with new ones")
            if self.db_down_since is not None:
                self._database_back(now)
            self._polls += 1
            if self._polls % LATE_RECORDS_EVERY == 0:
                store.adopt_late_records(self.conn, self.campaign_id, now)
            if now >= self._settle_after:
                self._settle_after = now + self.settings.lease_s / 4
                if store.has_dead_workers(self.conn, self.campaign_id, now):
                    settled = store.settle_orphans(self.conn, self.campaign_id, now, late_records=False)
                    for how, count in settled.items():
                        self.recovered[how] = self.recovered.get(how, 0) + count
        except self._unavailable as exc:
            self._database_down(exc)
        else:
            if state == store.CAMPAIGN_PAUSED and not self.paused:
                self._paused()
            elif state != store.CAMPAIGN_PAUSED and self.paused:
                self.paused = False
                self.observer.state_changed("running")
            self._pump()
        self._poll = self.clock.callLater(self.settings.poll_interval_s, self._poll_state)

    def _paused(self) -> None:
        self.paused = True
        self.observer.state_changed("paused", f"{self.in_flight} call(s) in flight finish")

    # -- the database going away and coming back ----------------------------------------------------------
    def _write(self, function: Callable, *args: Any, **kwargs: Any) -> None:
        """A write of an outcome: done now, or kept (in order) until the database is back."""
        if self.db_down_since is None:
            try:
                function(*args, **kwargs)
                return
            except self._unavailable as exc:
                self._database_down(exc)
        self._unwritten.append((function, args, kwargs))

    def _flush_unwritten(self) -> None:
        while self._unwritten:
            function, args, kwargs = self._unwritten[0]
            function(*args, **kwargs)
            self._unwritten.pop(0)

    def _database_down(self, exc: BaseException) -> None:
        if self.db_down_since is not None:
            return
        self.db_down_since = self.clock.seconds()
        reason = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        log.warning("database unavailable (%s): dialling paused, %d call(s) in flight finish; trying again every "
                    "%g s", reason, self.in_flight, self.settings.poll_interval_s)
        self._set_waiting("database")

    def _database_back(self, now: float) -> None:
        log.warning("database back after %.0f s: dialling resumes", now - self.db_down_since)
        self.db_down_since = None
        # Let every live worker renew its lease before anyone is taken for dead.
        self._settle_after = now + self.settings.lease_s
        self._set_waiting("")

    # -- the end --------------------------------------------------------------------------------------------------
    def _all_done(self) -> bool:
        # next_due_time (an index range) answers first while contacts are pending; the scan only at the end.
        return self.in_flight == 0 and store.next_due_time(self.conn, self.campaign_id) is None and \
            not store.has_open_contacts(self.conn, self.campaign_id)

    def _check_finished(self) -> None:
        if self._finished or self._pumping or self.in_flight:
            return
        if self.stopping:
            self._finish()
            return
        if self.db_down_since is not None or self._unwritten:
            return
        try:
            if self._all_done():
                with transaction(self.conn):
                    store.set_campaign_state(self.conn, self.campaign_id, store.CAMPAIGN_DONE, self.clock.seconds())
                    if self.events:
                        self.events.campaign_finished(self.conn, self.campaign_id, self.clock.seconds())
                self._finish()
        except self._unavailable as exc:
            self._database_down(exc)

    def _finish(self) -> None:
        self._finished = True
        try:
            self._flush_unwritten()
            store.release_worker(self.conn, self.worker)
        except self._unavailable as exc:
            log.error("database unavailable at the end (%s): %d outcome(s) not written; the next run settles "
                      "those attempts from the call records", exc.__class__.__name__, len(self._unwritten))
        for timer in (self._wake, self._poll):
            if timer is not None and timer.active():
                timer.cancel()
        self._wake = self._poll = None
        self.observer.finished(self)
        if self._failure is not None:
            self.done.errback(self._failure)
        else:
            self.done.callback(self.summary())
