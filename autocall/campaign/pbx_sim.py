"""The simulated PBX (``--pbx sim``, the default): callees from the CSV's ``sim_outcome``/``sim_keys``.

``sim_outcome`` is ``answer`` (the default), ``busy``, ``noanswer``,
``congestion``, ``failed`` or ``machine``. An answered call runs the real
engine in-process on a simulated channel whose caller presses ``sim_keys``;
the script sees ``caller`` (the contact's number), ``called`` (the caller-id
number), ``attempt`` and, with ``--amd``, ``amd`` = ``HUMAN``/``MACHINE``.
Without ``--amd`` a machine cannot be told from a person, exactly as on a
real line: the outcome is ``answered`` and ``amd`` is ``""``.

Ringing and talking take time on the injected clock (``RING_MS``; the talk
time is the call's own simulated duration, speech included), divided by
``speed``; ``instant=True`` ends every attempt at once (benchmarks, tests).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from twisted.internet import defer

from autocall.campaign.pbx import CallSettings
from autocall.campaign.scheduler import DialRequest, DialResult
from autocall.engine.channel import Prompt, TtsPrompt
from autocall.engine.interpreter import Call
from autocall.engine.ir import Program
from autocall.engine.record import CallRecord
from autocall.phone import caller_id_number
from autocall.sim.caller import HANGUP, ScriptedCaller
from autocall.sim.channel import SimChannel, SimClock, run_sync
from autocall.engine.web import Notice, NotifyFailed, Reply, WebRequest, unanswered
from autocall.services_config import ServiceConfig
from autocall.store import outbox
from autocall.store.calls import add_dnc
from autocall.store.db import transaction
from autocall.web.blocking import BlockingWeb

# How long each kind of callee takes to reach its outcome (ms of simulated time).
RING_MS = {"answer": 4_000, "machine": 3_000, "busy": 2_000, "congestion": 1_000, "failed": 500}
DETAILS = {"busy": "busy (simulated)", "noanswer": "no answer before the ring timeout (simulated)",
           "congestion": "network congestion (simulated)", "failed": "the call could not be placed (simulated)"}
WORDS_PER_SECOND = 2.5
NON_TTS_PROMPT_MS = 3_000


class TimedSimChannel(SimChannel):
    """The simulated channel, with prompts taking the time it takes to say them."""

    async def play(self, prompt: Prompt, interrupt_keys: str = "") -> str | None:
        reaction = await super().play(prompt, interrupt_keys)
        if isinstance(prompt, TtsPrompt):
            spoken_ms = int(len(prompt.text.split()) / WORDS_PER_SECOND * 1000)
        else:
            spoken_ms = NON_TTS_PROMPT_MS
        self.clock.advance(spoken_ms // 2 if reaction not in (None, HANGUP) else spoken_ms)
        return reaction


@dataclass(frozen=True)
class SimLine:
    """The simulated PBX's own settings: the dialogue it runs in-process, and how fast time goes."""

    program: Program
    speed: float = 1.0
    instant: bool = False
    recordings_dir: str = "recordings"
    services: Mapping[str, ServiceConfig] = field(default_factory=dict)   # [services]: where fetch/send may go


class SimPbx:
    """A PBX that needs no telephone line; see the module docstring."""

    def __init__(self, conn: sqlite3.Connection, clock: Any, calls: CallSettings, line: SimLine) -> None:
        if line.speed <= 0:
            raise ValueError("speed must be positive")
        self.conn = conn
        self.clock = clock
        self.program = line.program
        self.campaign = calls.campaign
        self.speed = line.speed
        self.instant = line.instant
        self.ring_timeout_ms = calls.ring_timeout_ms
        self.amd = calls.amd
        self.called = caller_id_number(calls.caller_id)
        self.max_call_duration_ms = calls.max_call_duration_ms
        self.recordings_dir = line.recordings_dir
        self.services = dict(line.services)

    def ready(self) -> bool:
        return True

    def when_ready(self) -> defer.Deferred:
        return defer.succeed(None)

    def dial(self, request: DialRequest, on_answered: Callable[[str | None, str], None]) -> defer.Deferred:
        outcome = request.sim_outcome or "answer"
        if outcome not in ("answer", "machine"):
            ring_ms = self.ring_timeout_ms if outcome == "noanswer" else RING_MS.get(outcome, 0)
            return self._after(ring_ms, lambda: DialResult(outcome, DETAILS.get(outcome, outcome)))
        return self._after(RING_MS[outcome], lambda: self._answer(request, outcome, on_answered))

    def _after(self, ms: float, then: Callable[[], DialResult | defer.Deferred]) -> defer.Deferred:
        if self.instant:
            return defer.maybeDeferred(then)
        done: defer.Deferred = defer.Deferred()
        self.clock.callLater(ms / 1000 / self.speed, lambda: defer.maybeDeferred(then).chainDeferred(done))
        return done

    def _answer(self, request: DialRequest, outcome: str,
                on_answered: Callable[[str | None, str], None]) -> defer.Deferred | DialResult:
        machine = outcome == "machine"
        amd = ("MACHINE" if machine else "HUMAN") if self.amd else ""
        on_answered(f"sim-{request.attempt_id}", amd)
        record = self.run_call(request, amd)
        result = DialResult("machine" if machine and self.amd else "answered",
                            "answered by a machine (AMD)" if machine and self.amd else "answered",
                            uniqueid=f"sim-{request.attempt_id}", record=record)
        return self._after(record.duration * 1000, lambda: result)

    def run_call(self, request: DialRequest, amd: str) -> CallRecord:
        """The dialogue with this contact, run to its end on simulated time starting now."""
        call_id = f"{self.campaign}-{request.attempt_id}"
        clock = SimClock(self.clock.seconds())
        channel = TimedSimChannel(ScriptedCaller(request.sim_keys), clock, call_id=call_id,
                                  recordings_dir=self.recordings_dir)
        call = Call(self.program, channel, clock, call_id=call_id, params=request.params,
                    builtins={"caller": request.number, "called": self.called, "attempt": request.attempt_number,
                              "amd": amd, "channel": f"Sim/{request.number}"},
                    max_duration_ms=self.max_call_duration_ms,
                    on_optout=lambda _call: add_dnc(self.conn, request.number, source=f"optout:{self.campaign}",
                                                    when=self.clock.seconds()),
                    web=SimPbxWeb(self.conn, BlockingWeb(self.services, clock)) if self.program.data.get("services")
                    else None)
        return run_sync(call.run())


class SimPbxWeb:
    """The simulated PBX's ``WebPort`` (it runs without the reactor): fetch/send to a service the configuration
    names (``[services.NAME]``) are real requests, made in place; any other is not sent (status 0, ``no reply
    for ...``, as in the simulator), so a rehearsal reaches only what it was pointed at. notify is queued in
    the database in its own transaction and delivered when the campaign ends (``deliver_due``) or by the next
    ``serve``/``campaign run``."""

    def __init__(self, conn, client: BlockingWeb) -> None:
        self.conn = conn
        self.client = client

    async def request(self, request: WebRequest) -> Reply:
        if request.service not in self.client.services:
            return unanswered(request)
        return self.client.send(request)

    async def notify(self, notice: Notice) -> None:
        try:
            with transaction(self.conn):
                outbox.enqueue(self.conn, kind="notify", service=notice.service, path=notice.path, body=notice.body,
                               ordering_key=f"call:{notice.call_id}", call_id=notice.call_id,
                               base_url=notice.script_url)
        except Exception as exc:   # sqlite3 or psycopg errors alike: the call ends in error, nothing is lost quietly
            raise NotifyFailed(f"{exc.__class__.__name__}: {exc}") from None
