"""Several Asterisk servers as one backend (``--pbx`` given more than once).

Each server gets its share of ``--concurrency`` (12 over 3 servers: 4
each; the first ones take the remainder). An attempt goes to the server
with the most room. A server is skipped while it cannot take calls:

- its AMI link is down (the client reconnects by itself) or was never up
  (the runner keeps trying to connect it);
- it refused an Originate (``Response: Error``: nothing was dialled): it
  rests for ``rest_s`` seconds, and the attempt is given back to the
  scheduler, which sends it to another server at once.

The servers are ``AmiPbx`` instances (or anything with their ``ready``,
``when_ready`` and ``dial``); a member without one yet is down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from twisted.internet import defer
from twisted.python.failure import Failure

from autocall.campaign.scheduler import DialRequest, DialResult

log = logging.getLogger("autocall.campaign")

REST_AFTER_REFUSAL_S = 30.0
READY_POLL_S = 0.5


def shares(concurrency: int, servers: int) -> list[int]:
    """``concurrency`` split over ``servers`` (each at least 1)."""
    base, extra = divmod(concurrency, servers)
    return [max(1, base + (1 if index < extra else 0)) for index in range(servers)]


@dataclass
class Member:
    """One Asterisk server of the pool."""

    address: str
    share: int
    pbx: Any = None                # its AmiPbx once connected
    in_flight: int = 0
    resting_until: float = 0.0


class PbxPool:
    """See the module docstring."""

    def __init__(self, members: list[Member], clock: Any, *, rest_s: float = REST_AFTER_REFUSAL_S) -> None:
        self.members = members
        self.clock = clock
        self.rest_s = rest_s
        self.name = " ".join(member.address for member in members)

    def _usable(self, member: Member) -> bool:
        return (member.pbx is not None and member.pbx.ready() and self.clock.seconds() >= member.resting_until
                and member.in_flight < member.share)

    def ready(self) -> bool:
        return any(self._usable(member) for member in self.members)

    def free(self) -> int:
        return sum(member.share - member.in_flight for member in self.members if self._usable(member))

    def when_ready(self) -> defer.Deferred:
        """Fires once a server can take a call (checked every ``READY_POLL_S``)."""
        waiting: defer.Deferred = defer.Deferred()

        def check() -> None:
            if self.ready():
                waiting.callback(None)
            else:
                self.clock.callLater(READY_POLL_S, check)
        check()
        return waiting

    def dial(self, request: DialRequest, on_answered: Callable[[str | None, str], None]) -> defer.Deferred:
        candidates = [member for member in self.members if self._usable(member)]
        if not candidates:
            return defer.succeed(DialResult("failed", "not dialled: no Asterisk server can take the call now",
                                            not_dialled=True))
        member = max(candidates, key=lambda m: m.share - m.in_flight)
        member.in_flight += 1
        dialling = member.pbx.dial(request, on_answered)
        return dialling.addBoth(self._ended, member, request, on_answered)

    def _ended(self, result: DialResult | Failure, member: Member, request: DialRequest,
               on_answered: Callable[[str | None, str], None]) -> DialResult | Failure | defer.Deferred:
        member.in_flight -= 1
        if isinstance(result, DialResult) and result.refused:
            member.resting_until = self.clock.seconds() + self.rest_s
            log.warning("%s refused an Originate (%s); skipped for %g s, the call goes to another server",
                        member.address, result.detail, self.rest_s)
            if any(self._usable(other) for other in self.members):
                return self.dial(request, on_answered)      # nothing was dialled: the same attempt, elsewhere
            return DialResult(result.outcome, result.detail, not_dialled=True)
        return result

    def close(self) -> None:
        for member in self.members:
            if member.pbx is not None:
                member.pbx.close()
