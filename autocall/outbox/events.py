"""``EventWriter``: queues the configured product events in the transaction of what they report.

No I/O of its own and no Twisted: each method takes the connection of the
transaction in progress (the call record's, the attempt's, the campaign's)
and adds the event's outbox row there, so the event exists exactly when
what it reports does. An event that is not configured costs nothing.
"""

from __future__ import annotations

from typing import Mapping

from autocall.services_config import EventRoute
from autocall.store import events as payloads
from autocall.store.outbox import enqueue


class EventWriter:
    def __init__(self, routes: Mapping[str, EventRoute]) -> None:
        self.routes = dict(routes)

    def __bool__(self) -> bool:
        return bool(self.routes)

    def call_ended(self, conn, call_id: str, now: float) -> None:
        if "call_ended" in self.routes:
            record = payloads.call_payload(conn, call_id)
            if record is not None:
                self._queue(conn, "call_ended", record, f"call:{call_id}", call_id, now)

    def attempt_finished(self, conn, attempt_id: int, call_id: str | None, now: float) -> None:
        """A campaign attempt ended: ``call_ended`` for the call record saved with it (the simulated PBX's),
        then ``attempt_ended``."""
        if call_id is not None:
            self.call_ended(conn, call_id, now)
        self.attempt_ended(conn, attempt_id, now)

    def attempt_ended(self, conn, attempt_id: int, now: float) -> None:
        if "attempt_ended" in self.routes:
            payload = payloads.attempt_payload(conn, attempt_id)
            if payload is not None:
                call_id = payload["call_id"] or ""
                key = f"call:{call_id}" if call_id else f"attempt:{attempt_id}"
                self._queue(conn, "attempt_ended", payload, key, call_id, now)

    def campaign_finished(self, conn, campaign_id: int, now: float) -> None:
        if "campaign_finished" in self.routes:
            payload = payloads.campaign_payload(conn, campaign_id, now)
            self._queue(conn, "campaign_finished", payload, f"campaign:{campaign_id}", "", now)

    def _queue(self, conn, event: str, body: dict, ordering_key: str, call_id: str, now: float) -> None:
        route = self.routes[event]
        enqueue(conn, kind=event, service=route.service, path=route.path, body=body, ordering_key=ordering_key,
                call_id=call_id, now=now)
