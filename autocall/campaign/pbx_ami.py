"""The Asterisk backend (``--pbx ami://USER@HOST:5038``): one async ``Originate`` per attempt.

Each attempt is sent to the channel template (``PJSIP/{number}@trunk``) into
the dialplan context ``outbound_context`` (extension ``s``), with the channel
variables ``AUTOCALL_ATTEMPT`` (the attempt's token), ``AUTOCALL_SCRIPT`` (the
script's file name without ``.dlg``), ``AUTOCALL_NUMBER``,
``AUTOCALL_AGI_URL`` (configuration ``agi_url``) and, with ``--amd``,
``AUTOCALL_AMD=1``. The context (docs/campaigns.md) runs ``AMD()`` when asked
and then ``AGI(${AUTOCALL_AGI_URL}/${AUTOCALL_SCRIPT})``; the FastAGI server
reads ``AUTOCALL_ATTEMPT``, checks the token and fills the params with
``store.campaigns.claim_attempt`` and saves the call record with
``attempt_id`` when the call ends.

An Originate that Asterisk refuses itself (``Response: Error``: shutting
down, not fully booted) or that cannot be sent (not logged in) dialled no
one: it is returned ``not_dialled`` and the scheduler tries the contact
again after a back-off, without counting an attempt.

The ``OriginateResponse`` Reason gives the outcome (``autocall.ami.originate``).
An answered call stays in flight until its call record appears in the
database (polled every ``poll_s``): that is where its end, ``result`` and
keys come from. An AMI ``Hangup`` event for the call's Uniqueid shortens the
wait to ``hangup_grace_s``; without either, ``answered_wait_s`` (the maximum
call duration plus a minute) ends the wait. An answered call that leaves no
record by then never ran its script (the FastAGI server was down, the
dialplan is wrong): its outcome is ``no_script``, retried like a failure. A
record that still comes later is adopted by the contact
(``store.campaigns.adopt_late_records``). An originate whose fate the client could not
learn (``unknown``) is also looked up there for ``unknown_wait_s`` before it
is recorded ``unknown``, which is final: it is never redialled
automatically, since the call may have been placed.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Any, Callable

from twisted.internet import defer
from twisted.python.failure import Failure

from autocall.ami.client import AmiClient, AmiNotConnected
from autocall.ami.originate import ChannelTemplate, OriginateOutcome, OriginateResult, build_originate_request
from autocall.campaign.pbx import CallSettings
from autocall.campaign.scheduler import DialRequest, DialResult
from autocall.store.calls import calls_for_attempt
from autocall.store.campaigns import NO_SCRIPT, answered_outcome, attempt_amd, call_summary

log = logging.getLogger("autocall.campaign")


@dataclass
class _Watch:
    """An attempt waiting for its call record."""

    deferred: defer.Deferred
    deadline: float
    outcome: str
    detail: str
    uniqueid: str | None


@dataclass(frozen=True)
class AmiLine:
    """The Asterisk backend's own settings: the started client, where calls go, how long to wait for records."""

    client: AmiClient
    channel_template: str = "PJSIP/{number}@trunk"
    context: str = "autocall-outbound"
    agi_url: str = ""
    poll_s: float = 1.0
    hangup_grace_s: float = 30.0
    unknown_wait_s: float = 60.0


class AmiPbx:
    """Dials through an ``AmiClient`` that the caller has started (and stops)."""

    def __init__(self, conn: sqlite3.Connection, clock: Any, calls: CallSettings, line: AmiLine) -> None:
        client = line.client
        self.client = client
        self.conn = conn
        self.clock = clock
        self.template = ChannelTemplate(line.channel_template)
        self.context = line.context
        self.script = calls.script
        self.agi_url = line.agi_url
        self.caller_id = calls.caller_id or None
        self.amd = calls.amd
        self.ring_timeout_ms = calls.ring_timeout_ms
        self.answered_wait_s = calls.max_call_duration_ms / 1000 + 60
        self.poll_s = line.poll_s
        self.hangup_grace_s = line.hangup_grace_s
        self.unknown_wait_s = line.unknown_wait_s
        self._watching: dict[int, _Watch] = {}
        self._by_uniqueid: dict[str, int] = {}
        self._poll = None
        self._unsubscribe = client.on_event(self._event)

    @property
    def name(self) -> str:
        return f"ami://{self.client.address}"

    def ready(self) -> bool:
        return self.client.ready

    def when_ready(self) -> defer.Deferred:
        return self.client.when_ready()

    def close(self) -> None:
        """Stop watching (the scheduler is done); the caller stops the client."""
        self._unsubscribe()
        if self._poll is not None and self._poll.active():
            self._poll.cancel()
        for attempt_id in list(self._watching):
            self._settle(attempt_id, None, closing=True)

    # -- dialling -----------------------------------------------------------------------------------------
    def request_for(self, request: DialRequest):
        variables = [("AUTOCALL_AGI_URL", self.agi_url)] if self.agi_url else []
        if self.amd:
            variables.append(("AUTOCALL_AMD", "1"))
        return build_originate_request(self.template, request.number, attempt_id=request.token,
                                       script=self.script, context=self.context, exten="s",
                                       timeout_ms=self.ring_timeout_ms, caller_id=self.caller_id,
                                       variables=variables)

    def dial(self, request: DialRequest, on_answered: Callable[[str | None, str], None]) -> defer.Deferred:
        try:
            originate = self.request_for(request)
        except ValueError as exc:       # a number the template cannot carry: nothing is sent
            return defer.succeed(DialResult("failed", f"not dialled: {exc}"))
        sent = self.client.originate(originate)
        sent.addCallbacks(self._originated, self._not_sent, callbackArgs=(request, on_answered),
                          errbackArgs=(request,))
        return sent

    def _not_sent(self, failure: Failure, request: DialRequest) -> DialResult:
        if failure.check(AmiNotConnected):
            return DialResult("failed", f"not dialled: {failure.getErrorMessage()}", not_dialled=True)
        log.error("attempt %d: Originate failed: %s", request.attempt_id, failure.getErrorMessage())
        return DialResult("unknown", f"Originate failed: {failure.getErrorMessage()}")

    def _originated(self, result: OriginateResult, request: DialRequest,
                    on_answered: Callable[[str | None, str], None]) -> DialResult | defer.Deferred:
        outcome = result.outcome
        if result.not_placed:
            log.warning("attempt %d: %s; tried again later, not counted as an attempt", request.attempt_id,
                        result.detail)
            return DialResult("failed", f"not dialled: {result.detail}", not_dialled=True, refused=True)
        if outcome is OriginateOutcome.ANSWERED:
            on_answered(result.uniqueid, "")
            return self._wait_for_record(request.attempt_id, self.answered_wait_s, "answered", result.detail,
                                         result.uniqueid)
        if outcome is OriginateOutcome.UNKNOWN:
            return self._wait_for_record(request.attempt_id, self.unknown_wait_s, "unknown",
                                         f"outcome unknown ({result.detail}); not redialled automatically",
                                         None)
        refused = outcome is OriginateOutcome.FAILED and not result.queued and result.event is None
        return DialResult(outcome.value, result.detail, uniqueid=result.uniqueid, refused=refused)

    # -- waiting for the FastAGI server's call record -------------------------------------------------------------
    def _wait_for_record(self, attempt_id: int, wait_s: float, outcome: str, detail: str,
                         uniqueid: str | None) -> defer.Deferred:
        watch = _Watch(defer.Deferred(), self.clock.seconds() + wait_s, outcome, detail, uniqueid)
        self._watching[attempt_id] = watch
        if uniqueid:
            self._by_uniqueid[uniqueid] = attempt_id
        if self._poll is None:
            self._poll = self.clock.callLater(self.poll_s, self._poll_records)
        return watch.deferred

    def _poll_records(self) -> None:
        self._poll = None
        now = self.clock.seconds()
        for attempt_id, watch in list(self._watching.items()):
            records = calls_for_attempt(self.conn, attempt_id)
            if records:
                self._settle(attempt_id, records[-1])
            elif now >= watch.deadline:
                self._settle(attempt_id, None)
        if self._watching:
            self._poll = self.clock.callLater(self.poll_s, self._poll_records)

    def _settle(self, attempt_id: int, record: dict | None, closing: bool = False) -> None:
        """End the wait: with the record, or without one (its deadline, or the dialer stopping: then an answered
        call may still be running, so it stays answered, and takes its record when it comes)."""
        watch = self._watching.pop(attempt_id)
        if watch.uniqueid:
            self._by_uniqueid.pop(watch.uniqueid, None)
        if record is not None:
            result = DialResult(answered_outcome(attempt_amd(self.conn, attempt_id)), "answered",
                                uniqueid=watch.uniqueid, call=call_summary(record))
        elif watch.outcome == "answered" and closing:
            result = DialResult(answered_outcome(attempt_amd(self.conn, attempt_id)),
                                "answered; the dialer stopped before its call record came", uniqueid=watch.uniqueid)
        elif watch.outcome == "answered":
            result = DialResult(NO_SCRIPT, "answered, but no call record came from the FastAGI server: the script "
                                "did not run (is autocall serve reachable at agi_url?)", uniqueid=watch.uniqueid)
        else:
            result = DialResult(watch.outcome, watch.detail)
        watch.deferred.callback(result)

    def _event(self, event) -> None:
        """A ``Hangup`` of an answered call: its record is due within ``hangup_grace_s``."""
        if event.name.lower() != "hangup":
            return
        attempt_id = self._by_uniqueid.get(event.fields.get("Uniqueid") or "")
        watch = self._watching.get(attempt_id) if attempt_id is not None else None
        if watch is not None:
            watch.deadline = min(watch.deadline, self.clock.seconds() + self.hangup_grace_s)
