"""The FastAGI server: each connection from Asterisk becomes one call of the engine on an ``AgiChannel``.

``AgiServer`` owns the per-call path: route the request to a script,
take the compiled ``Program`` from the registry, gather params and
built-ins, run ``Call`` to its ``CallRecord``, hand the record to the
writer, log one line. Every call that delivered its environment leaves a
record, whatever happened: a refused or unknown script, a script that
does not compile, a missing param, a hangup at any point, a protocol
fault, a bug in this layer. The listening socket and the stop sequence
are ``autocall.agi.service``'s.

One interpreter: the dialogue runs in ``autocall.engine.interpreter.Call``
exactly as in the simulator; the server only adds a channel.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass

from twisted.internet import task
from twisted.internet.error import ConnectionClosed

from autocall.agi import protocol as agi
from autocall.agi.channel import DEFAULT_TTS_MAX_CHARS, AgiChannel
from autocall.agi.connection import FastAgiFactory, FastAgiProtocol
from autocall.agi.logs import CallLog, log_line
from autocall.agi.params import environment_builtins, missing_params, request_params
from autocall.agi.protocol import AgiProtocolError, Environment
from autocall.agi.registry import ScriptRegistry, ScriptUnavailable
from autocall.agi.routing import RouteRefused, ScriptRouter
from autocall.engine.channel import CallerHangup, ChannelFailure
from autocall.engine.interpreter import DEFAULT_MAX_DURATION_MS, Call
from autocall.engine.spoken import SpeechDefaults
from autocall.engine.ir import Program
from autocall.engine.record import ENDED_CALLER, ENDED_ERROR, CallRecord
from autocall.peers import LOOPBACK, PeerFilter

log = logging.getLogger("autocall.agi.server")

ATTEMPT_VARIABLE = "AUTOCALL_ATTEMPT"
AMD_VARIABLE = "AMDSTATUS"
ORIGIN_INBOUND = "agi"
ORIGIN_CAMPAIGN = "campaign"
RECENT_IDS = 10_000
SWEEP_S = 1.0
DEFAULT_COMMAND_MARGIN_MS = 10_000


class ReactorClock:
    """The engine's clock on the reactor: ``now()`` is ``IReactorTime.seconds()`` (wall time)."""

    __slots__ = ("now",)

    def __init__(self, reactor) -> None:
        self.now = reactor.seconds


class ShiftedClock:
    """Wall time moved to ``start`` (epoch seconds) at creation, then running with the reactor (tests, rehearsals)."""

    __slots__ = ("_seconds", "_offset")

    def __init__(self, reactor, start: float) -> None:
        self._seconds = reactor.seconds
        self._offset = start - reactor.seconds()

    def now(self) -> float:
        return self._seconds() + self._offset


@dataclass(slots=True, eq=False)
class LiveCall:
    """A call in progress, as the server tracks it (for the duration guard and a graceful stop)."""

    connection: FastAgiProtocol
    call_id: str
    log: CallLog
    since: float                 # clock.seconds() at the start, for the duration guard
    script: str = ""
    cut: str | None = None       # why the server closed the connection itself (then ended_by is error)
    attempt_id: int | None = None


class AgiServer:
    """Serves FastAGI calls; ``factory`` is what to listen with. Build it with ``from_config`` or by hand.

    ``sounds`` turns prompts into ``STREAM FILE`` names (``PlayableSounds``
    in production, ``FakeSounds`` in tests); ``records`` is an open
    ``RecordWriter`` (None: records are not stored, for tests that do not
    look at them); ``engine_clock`` is what the engine reads the time from
    (``ReactorClock`` by default; tests set a ``ShiftedClock`` to pin a
    scenario's ``now``); ``clock`` (an ``IReactorTime``, the reactor by
    default) runs the environment timeout and the call-duration guard, so
    tests drive them with ``task.Clock``.
    """

    def __init__(self, scripts_dir: str, sounds, *, recordings_dir: str = "recordings", records=None,
                 reactor=None, clock=None, registry: ScriptRegistry | None = None, engine_clock=None,
                 max_call_duration_ms: int = DEFAULT_MAX_DURATION_MS, env_timeout_ms: int = 10_000,
                 max_line_length: int = agi.DEFAULT_MAX_LINE_LENGTH, allowed_peers=LOOPBACK,
                 command_margin_ms: int = DEFAULT_COMMAND_MARGIN_MS,
                 tts_max_chars: int = DEFAULT_TTS_MAX_CHARS, country: str | None = None, services=None,
                 speech: SpeechDefaults = SpeechDefaults()) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.services = services or {}       # [services] of the configuration, for fetch/send without an outbox
        self.outbox = None                   # set by ``serve``: notify goes there, fetch/send use its client
        self.web_port = None                 # a WebPort to use instead (tests: canned replies)
        self._web = None
        self.clock = clock or reactor
        self.router = ScriptRouter(scripts_dir)
        self.sounds = sounds
        self.recordings_dir = recordings_dir
        self.records = records
        self.registry = registry or ScriptRegistry(reactor)
        if self.registry.on_compiled is None and hasattr(sounds, "warm"):
            self.registry.on_compiled = lambda program: sounds.warm(program.static_prompts())
        self.engine_clock = engine_clock or ReactorClock(reactor)
        self.max_call_duration_ms = max_call_duration_ms
        self.speech = speech
        self.command_margin_ms = command_margin_ms
        self.tts_max_chars = tts_max_chars
        self.country = country            # how a national caller id is read for ``optout``
        self.factory = FastAgiFactory(self._serve, clock=self.clock, env_timeout_ms=env_timeout_ms,
                                      max_line_length=max_line_length, allowed_peers=PeerFilter(allowed_peers))
        self.active: dict[FastAgiProtocol, LiveCall] = {}
        self.calls_started = 0
        self.calls_ended = 0
        self._recent_ids: dict[str, int] = {}
        self._serial = itertools.count(1)
        self._sweep: task.LoopingCall | None = None

    @classmethod
    def from_config(cls, config, *, reactor=None, sounds=None, records=None, scripts_dir: str | None = None,
                    engine_clock=None) -> AgiServer:
        """A server set up from ``autocall.config.Config``. Without ``sounds``, the real sound cache is used
        (``PlayableSounds`` over ``AsyncSounds``); the caller opens and closes ``records``."""
        if sounds is None:
            from autocall.agi.sounds import PlayableSounds
            from autocall.audio.async_sounds import AsyncSounds
            from autocall.audio.library import SoundLibrary
            library = SoundLibrary.from_config(config)
            sounds = PlayableSounds(AsyncSounds(library, reactor), library)
        scripts_dir = scripts_dir or config.scripts_dir
        roots = (scripts_dir, config.sounds_dir)

        def compiler():
            from autocall.audio.prompt_checks import audio_checks
            from autocall.dsl.compiler import Compiler
            return Compiler(**audio_checks(), audio_roots=roots)
        return cls(scripts_dir, sounds, recordings_dir=config.recordings_dir,
                   registry=ScriptRegistry(reactor, compiler_factory=compiler),
                   records=records, reactor=reactor, engine_clock=engine_clock,
                   max_call_duration_ms=config.max_call_duration, env_timeout_ms=config.env_timeout,
                   max_line_length=config.max_line_length, allowed_peers=config.allowed_peers,
                   command_margin_ms=config.command_margin, tts_max_chars=config.tts_max_chars,
                   country=config.country or None, services=config.services,
                   speech=SpeechDefaults(config.voice, config.currency))

    @property
    def web(self):
        """The calls' ``WebPort``: the outbox's client and the outbox, once ``outbox`` is set; else a client of
        its own (tests, a server without a database); ``web_port`` when set."""
        if self.web_port is not None:
            return self.web_port
        if self._web is None or self._web.outbox is not self.outbox:
            from autocall.web.port import ReactorWeb
            client = self.outbox.client if self.outbox is not None else None
            if client is None:
                from autocall.web.client import WebClient
                client = self._web.client if self._web is not None else WebClient(self.services, self.reactor)
            self._web = ReactorWeb(client, self.outbox)
        return self._web

    def close(self) -> None:
        """Stop the duration guard and the compile thread (the service does this after the last call)."""
        if self._sweep is not None and self._sweep.running:
            self._sweep.stop()
        self._sweep = None
        self.registry.stop()
        if self._web is not None and self.outbox is None:
            self._web.client.close()            # the server's own pooled connections (the outbox closes its own)

    # --- the connections' side ---------------------------------------------------------

    def hang_up_all(self, reason: str) -> int:
        """Close every call in progress now (the end of a graceful stop); their records say ``reason``."""
        calls = list(self.active.values())
        for live in calls:
            self._cut(live, reason)
        for connection in list(self.factory.connections):
            if connection not in self.active and connection.transport is not None:
                connection.abort()     # still sending its environment
        return len(calls)

    async def _serve(self, connection: FastAgiProtocol) -> None:
        environment = connection.environment
        call_id = self._call_id(environment)
        live = LiveCall(connection, call_id, CallLog(log, {"call_id": call_id}), self.clock.seconds())
        self.active[connection] = live
        self.calls_started += 1
        if self._sweep is None:
            self._start_sweep()
        started = self.engine_clock.now()
        outcome = None
        try:
            outcome = await self._dialogue(live, environment, started)
            # The dialogue runs from here, not inside _dialogue: one coroutine less on the way of every reply.
            record = outcome if type(outcome) is CallRecord else await outcome.run()
        except ConnectionClosed:   # gone while the call waited for its script (connection.until_lost)
            record = self._record(live, environment, started, ENDED_CALLER,
                                  note="Asterisk closed the connection before the dialogue began")
        except AgiProtocolError as exc:
            record = self._record(live, environment, started, ENDED_ERROR,
                                  error=f"AGI protocol fault (Asterisk's) before the dialogue began: {exc}")
        except Exception as exc:   # a bug in this layer must still leave the call's record
            live.log.exception("the server failed during the call")
            record = self._record(live, environment, started, ENDED_ERROR,
                                  error=f"internal error: {exc.__class__.__name__}: {exc}")
        finally:
            del self.active[connection]
            if type(outcome) is Call:
                outcome.channel.close()
        if live.cut is not None and record.ended_by == ENDED_CALLER:
            record.ended_by, record.error = ENDED_ERROR, live.cut
        self.calls_ended += 1
        if self.records is not None:
            origin = ORIGIN_CAMPAIGN if live.attempt_id is not None else ORIGIN_INBOUND
            self.records.save(record, channel=environment.channel, attempt_id=live.attempt_id, origin=origin)
        self._log_end(live, record)

    async def _dialogue(self, live: LiveCall, environment: Environment, started: float) -> CallRecord | Call:
        """The ``Call`` to run, or the record of a call that cannot run (refused, unavailable, no values)."""
        connection = live.connection
        try:
            route = self.router.resolve(environment)
        except RouteRefused as refused:
            live.script = refused.requested
            live.log.warning("script refused; hanging up", fields={"peer": connection.peer,
                                                                    "requested": refused.requested,
                                                                    "reason": refused.reason})
            return await self._refuse(live, environment, started, str(refused))
        live.script = route.name
        try:
            program = self.registry.current(route.path)
            if program is None:
                program = await connection.until_lost(self.registry.load(route.path))
        except ScriptUnavailable as unavailable:
            live.log.warning("script unavailable; hanging up",
                             fields={"script": route.name, "reason": str(unavailable)})
            return await self._refuse(live, environment, started, str(unavailable))
        channel = AgiChannel(connection, self.sounds, self.recordings_dir, logger=live.log,
                             tts_max_chars=self.tts_max_chars)
        try:
            params, builtins = await self._values(live, program, environment, channel)
        except CallerHangup as exc:
            return self._record(live, environment, started, ENDED_CALLER, note=str(exc))
        except ChannelFailure as exc:
            live.log.warning("could not read the call's values", fields={"error": str(exc)})
            return await self._refuse(live, environment, started, f"channel failure: {exc}")
        if log.isEnabledFor(logging.DEBUG):
            live.log.debug("call started", fields={"script": route.name, "peer": connection.peer,
                                                   "caller": builtins.get("caller"), "attempt_id": live.attempt_id})
        return Call(program, channel, self.engine_clock, call_id=live.call_id, params=params, builtins=builtins,
                    max_duration_ms=self.max_call_duration_ms, speech=self.speech,
                    on_optout=lambda call: self._optout(live, call),
                    on_log=lambda call, message: live.log.info(message, fields={"script": live.script}),
                    web=self.web if program.data.get("services") else None)

    # --- values ------------------------------------------------------------------------

    async def _values(self, live: LiveCall, program: Program, environment: Environment, channel: AgiChannel):
        declared = program.params
        params, notes = request_params(program, environment)
        for note in notes:
            live.log.info(note)
        builtins = environment_builtins(environment)
        if self.records is not None:
            attempt = await channel.get_variable(ATTEMPT_VARIABLE)
            if attempt:
                await self._campaign_values(live, program, attempt, params, builtins, channel)
        if declared:
            for name in missing_params(program, params):
                value = await channel.get_variable(name)
                if value is not None:
                    params[name] = value
        return params, builtins

    async def _campaign_values(self, live: LiveCall, program: Program, attempt: str, params: dict,
                               builtins: dict, channel: AgiChannel) -> None:
        """A campaign call (``AUTOCALL_ATTEMPT`` set by the dialer): the contact's values from the database.

        The token must be the attempt's own (an HMAC bound to its number) and unused: a forged or replayed
        one is refused and logged (never echoed), and the call runs as inbound, settling no attempt."""
        from autocall.phone import caller_id_number
        from autocall.store.campaigns import AttemptRefused, claim_attempt
        try:
            context = await self.records.query(claim_attempt, attempt, time.time())
        except AttemptRefused as exc:
            live.log.warning(f"{ATTEMPT_VARIABLE} refused: {exc}; the call runs as inbound",
                             fields={"peer": live.connection.peer})
            return
        except Exception as exc:
            live.log.error("could not read the campaign attempt; the call runs as inbound",
                           fields={"error": f"{exc.__class__.__name__}: {exc}"})
            return
        live.attempt_id = context["attempt_id"]
        live.log.extra = {**live.log.extra, "attempt_id": live.attempt_id}
        if context.get("script") and context["script"] != live.script:
            live.log.warning("the campaign's script is not the one the AGI URL names; running the URL's",
                             fields={"campaign_script": context["script"], "script": live.script})
        builtins["caller"] = context["number"]
        builtins["called"] = caller_id_number(context.get("caller_id") or "")    # as on the simulated PBX
        builtins["attempt"] = context["attempt_number"]
        declared = {param["name"] for param in program.params}
        for name, value in (context.get("params") or {}).items():
            if name in declared and name not in params:
                params[name] = value
        if context.get("amd"):
            status = (await channel.get_variable(AMD_VARIABLE) or "").upper()
            builtins["amd"] = status
            if status:
                self.records.note_amd(live.attempt_id, status)

    # --- engine hooks ----------------------------------------------------------------

    def _optout(self, live: LiveCall, call: Call) -> None:
        """``optout``: the caller's number goes on the do-not-call list at once."""
        from autocall.phone import try_e164
        raw = str(call.env.get("caller", ""))
        number = try_e164(raw, self.country)
        if number is None:
            live.log.warning("optout: the caller's number is not a phone number; nothing added to the "
                             "do-not-call list", fields={"caller": raw})
            return
        if self.records is not None:
            self.records.add_dnc(number, f"optout {live.script} {live.call_id}")
        live.log.info("optout: number added to the do-not-call list", fields={"number": number})

    # --- endings ---------------------------------------------------------------------

    async def _refuse(self, live: LiveCall, environment: Environment, started: float, error: str) -> CallRecord:
        """End a call that cannot run: hang the channel up; its record says ``ended_by: error`` and why."""
        connection = live.connection
        if not connection.hung_up and not connection.closed:
            try:
                await connection.request(agi.hangup())
            except (ConnectionClosed, AgiProtocolError):
                pass      # gone already: the record still says why the call did not run
        return self._record(live, environment, started, ENDED_ERROR, error=error)

    def _record(self, live: LiveCall, environment: Environment, started: float, ended_by: str, *,
                error: str | None = None, note: str | None = None) -> CallRecord:
        builtins = environment_builtins(environment)
        record = CallRecord(call_id=live.call_id, script=live.script or environment.script, started_at=started,
                            caller=str(builtins["caller"]), called=str(builtins["called"]))
        record.ended_by, record.error, record.ended_at = ended_by, error, self.engine_clock.now()
        if note:
            record.log.append({"at": round(record.ended_at - started, 3), "line": None, "message": note})
        return record

    def _start_sweep(self) -> None:
        """The guards: once a second, close the calls older than ``max_call_duration``, and those whose
        command Asterisk has not answered in the longest time it could take plus ``command_margin``
        (a ``WAIT FOR DIGIT 5000`` after 15 s, a ``STREAM FILE`` after the longest prompt; a ``Dial``,
        which may bridge for as long as the call lasts, only by the first guard).

        The engine checks the duration between statements; this catches a
        single command that never returns (one timer for all calls, not one
        per call: the per-call path stays lean).
        """
        self._sweep = task.LoopingCall(self._overran)
        self._sweep.clock = self.clock
        self._sweep.start(SWEEP_S, now=False)

    def _overran(self) -> None:
        now = self.clock.seconds()
        limit = now - self.max_call_duration_ms / 1000
        margin = self.command_margin_ms / 1000
        for live in list(self.active.values()):
            if live.cut is not None:
                continue
            if live.since <= limit:
                self._cut(live, f"the call lasted longer than the maximum of {self.max_call_duration_ms / 1000:g} s "
                                "(a command did not return in time); the server closed the connection")
                continue
            late = live.connection.overdue(now, margin)
            if late is not None:
                took = (late.max_ms or 0) / 1000 + margin
                live.log.warning("Asterisk did not answer a command in time; hanging up",
                                 fields={"command": late.name, "waited_s": f"{took:g}"})
                self._cut(live, f"Asterisk did not answer {late.name} within {took:g} s (the longest it can "
                                "take plus a margin); the server closed the connection")

    def _cut(self, live: LiveCall, reason: str) -> None:
        live.cut = reason
        if live.connection.transport is not None and not live.connection.closed:
            live.connection.abort()

    @staticmethod
    def _log_end(live: LiveCall, record: CallRecord) -> None:
        """The one line every call leaves in the log (warning level when it ended in error)."""
        level = logging.WARNING if record.ended_by == ENDED_ERROR else logging.INFO
        if log.isEnabledFor(level):
            # Texts only, no None (left out of the line anyway): the formatter's quick way.
            fields = {**live.log.extra, "script": record.script, "caller": record.caller,
                      "ended_by": record.ended_by}
            if record.result is not None:
                fields["result"] = record.result
            fields["duration_ms"] = str(round(record.duration * 1000))
            fields["path"] = ">".join(record.path)
            fields["keys"] = record.keys
            if record.error is not None:
                fields["error"] = record.error
            log_line(log, level, "call ended", fields)

    def _call_id(self, environment: Environment) -> str:
        """``agi_uniqueid``, made unique: a channel running AGI twice gets ``-2``, ``-3``..."""
        base = environment.uniqueid or f"agi-{int(time.time())}-{next(self._serial)}"
        seen = self._recent_ids
        count = seen.get(base)
        if count is None:
            if len(seen) >= RECENT_IDS:
                del seen[next(iter(seen))]
            seen[base] = 1
            return base
        seen[base] = count + 1
        return f"{base}-{count + 1}"
