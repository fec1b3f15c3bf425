"""In-flight originates of one AMI client: each waits, by its ActionID, for its one ``OriginateResult``.

``OriginateTracker`` keeps what ``AmiClient.originate`` promised (see the
client's module docstring): a tracked originate fires exactly once, with
the ``OriginateResponse`` carrying its ActionID, with ``refused`` when
Asterisk answered the action itself with an error, or with ``unknown`` at
its deadline or when everything is given up. It never reads the network:
the client feeds it replies and events; time comes from the injected
reactor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from autocall.ami import protocol as ami
from autocall.ami.originate import OriginateResult

log = logging.getLogger("autocall.ami")


@dataclass
class _InFlight:
    action_id: str
    deferred: defer.Deferred
    wait_ms: int
    queued: bool = False
    link_lost: bool = False
    timer: Any = field(default=None, repr=False)


class OriginateTracker:
    """``track(action_id, wait_ms)`` -> a Deferred; ``acknowledged``/``event`` feed it; ``give_up`` ends all."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._in_flight: dict[str, _InFlight] = {}

    def __len__(self) -> int:
        return len(self._in_flight)

    def __contains__(self, action_id: str) -> bool:
        return action_id in self._in_flight

    def track(self, action_id: str, wait_ms: int) -> defer.Deferred:
        """Wait for the fate of the Originate sent with ``action_id``; ``unknown`` after ``wait_ms``."""
        record = _InFlight(action_id, defer.Deferred(), wait_ms)
        record.timer = self._reactor.callLater(wait_ms / 1000, self._timed_out, action_id)
        self._in_flight[action_id] = record
        return record.deferred

    def acknowledged(self, action_id: str, response: ami.Response) -> None:
        """The reply to the Originate action: queued, or refused (nothing dialled)."""
        record = self._in_flight.get(action_id)
        if record is None:
            return  # the OriginateResponse came first; nothing left to do
        if response.ok:
            record.queued = True
        else:
            self._resolve(action_id, OriginateResult.refused(response))

    def event(self, event: ami.Event) -> None:
        """Any event: an ``OriginateResponse`` with a tracked ActionID settles that originate."""
        action_id = event.action_id or ""
        if event.name.lower() == "originateresponse" and action_id in self._in_flight:
            self._resolve(action_id, OriginateResult.from_event(event, queued=self._in_flight[action_id].queued))

    def link_lost(self) -> None:
        """The link dropped: every originate stays tracked (its event may still come after the re-login)."""
        for record in self._in_flight.values():
            record.link_lost = True

    def give_up(self, detail: str) -> None:
        """Fire every tracked originate ``unknown`` now (the client stopped or failed)."""
        for action_id in list(self._in_flight):
            self._resolve(action_id, OriginateResult.unknown(action_id, detail, self._in_flight[action_id].queued))

    def _timed_out(self, action_id: str) -> None:
        record = self._in_flight.get(action_id)
        if record is None:
            return
        record.timer = None
        detail = f"no OriginateResponse within {record.wait_ms / 1000:g} s"
        if record.link_lost:
            detail += " (the AMI link was lost meanwhile; the event may have been sent while it was down)"
        self._resolve(action_id, OriginateResult.unknown(action_id, detail, record.queued))

    def _resolve(self, action_id: str, result: OriginateResult) -> None:
        record = self._in_flight.pop(action_id, None)
        if record is None:
            return
        if record.timer is not None and record.timer.active():
            record.timer.cancel()
        log.debug("AMI: originate %s: %s (%s)", action_id, result.outcome.value, result.detail)
        record.deferred.callback(result)
