"""Helpers and fixtures for FastAGI tests: a safe in-test reactor runner, in-memory calls, fake sounds.

Two ways to run a call against the fake Asterisk:

- ``call_in_memory(fake, factory)``: both ends joined by ``twisted.test.iosim``
  with a ``task.Clock``; deterministic, no sockets. Most tests use this.
- ``live_reactor`` (fixture): real TCP on 127.0.0.1 through the global
  reactor, spun with ``reactor.iterate()`` until a Deferred fires. See
  README.md in this folder for why and how.

Import fixtures into a test module (``from tests.fakes.agi_fixtures import
live_reactor  # noqa: F401``); there is no conftest, so nothing collides
with other folders' conftests.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.python.failure import Failure
from twisted.test import iosim

from autocall.agi.channel import AgiChannel
from autocall.agi.connection import FastAgiFactory, FastAgiProtocol
from autocall.engine.channel import CallerHangup, ChannelFailure, FilePrompt, RecordOutcome, SoundPrompt, TtsPrompt
from tests.fakes.fake_asterisk import FakeAsterisk, Transcript

DEFAULT_TIMEOUT = 10.0


class LiveReactor:
    """Runs the global (default, epoll/select) reactor inside a test without ``reactor.run()``.

    ``reactor.run()`` cannot be restarted once stopped, so each wait spins
    ``reactor.iterate()`` until its Deferred fires, with a wall-clock guard
    that fails the test instead of hanging it. Each pytest-xdist worker is its
    own process with its own reactor, so ``-n 2`` is safe. ``close()`` stops
    every port this runner opened and drops every connection the test's
    factories still hold.
    """

    def __init__(self, reactor=None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self._ports: list = []
        self._factories: list[FastAgiFactory] = []

    def listen(self, factory, interface: str = "127.0.0.1") -> tuple[str, int]:
        """Listen on a free port; return (host, port)."""
        port = self.reactor.listenTCP(0, factory, interface=interface)
        self._ports.append(port)
        if isinstance(factory, FastAgiFactory):
            self._factories.append(factory)
        address = port.getHost()
        return address.host, address.port

    def run(self, work: defer.Deferred | Awaitable[Any], timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Spin the reactor until ``work`` (a Deferred or coroutine) is done; return its result or raise."""
        d = work if isinstance(work, defer.Deferred) else defer.Deferred.fromCoroutine(work)
        outcome: list = []
        d.addBoth(outcome.append)
        self.spin_until(lambda: bool(outcome), timeout)
        if isinstance(outcome[0], Failure):
            outcome[0].raiseException()
        return outcome[0]

    def spin_until(self, condition: Callable[[], bool], timeout: float = DEFAULT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the reactor did not get there within {timeout} s")
            self.reactor.iterate(0.002)

    def settle(self, factory: FastAgiFactory, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until the server side has finished every call (the peer may have closed first)."""
        self.spin_until(lambda: not factory.connections, timeout)

    def close(self) -> None:
        for factory in self._factories:
            for connection in list(factory.connections):
                connection.transport.abortConnection()
        stopping = [defer.maybeDeferred(port.stopListening) for port in self._ports]
        self.run(defer.DeferredList(stopping), timeout=5)
        self.spin_until(lambda: all(not f.connections for f in self._factories), timeout=5)


@pytest.fixture
def live_reactor():
    runner = LiveReactor()
    yield runner
    runner.close()


class FakeSounds:
    """``sound_for(prompt)`` as the audio helper's ``AsyncSounds`` has it: prompts -> PBX sound names.

    TTS text becomes ``tts/<slug>``, a file prompt its stem, a PBX sound its
    name; ``names`` overrides any of them.
    """

    def __init__(self, names: dict | None = None) -> None:
        self.names = dict(names or {})
        self.asked: list = []

    def sound_for(self, prompt) -> defer.Deferred:
        self.asked.append(prompt)
        if prompt in self.names:
            return defer.succeed(self.names[prompt])
        if isinstance(prompt, TtsPrompt):
            return defer.succeed("tts/" + (re.sub(r"[^a-z0-9]+", "-", prompt.text.lower()).strip("-") or "empty"))
        if isinstance(prompt, FilePrompt):
            return defer.succeed(prompt.resolved.rsplit("/", 1)[-1].rsplit(".", 1)[0])
        if isinstance(prompt, SoundPrompt):
            return defer.succeed(prompt.name)
        return defer.fail(TypeError(f"not a prompt: {prompt!r}"))

    @staticmethod
    def beep() -> str:
        """AutoCall's own beep, as ``PlayableSounds.beep`` names it (installed with the prompts)."""
        return "autocall-beep"


Step = Callable[[AgiChannel], Awaitable[Any]]


@dataclass
class Outcome:
    """How a driven call ended, as the engine would record it."""

    ended_by: str | None = None              # hangup | caller_hangup | error; None while the call runs
    returns: list = field(default_factory=list)
    error: str | None = None


def script_driver(steps: Iterable[Step], outcomes: list[Outcome], *, sounds: FakeSounds | None = None,
                  recordings_dir: str = "/var/spool/autocall/recordings") -> Callable[[FastAgiProtocol], Any]:
    """An ``on_call`` standing in for the engine: run ``steps`` on an AgiChannel, catch as the engine does."""
    steps = list(steps)

    async def on_call(connection: FastAgiProtocol) -> None:
        channel = AgiChannel(connection, sounds or FakeSounds(), recordings_dir)
        outcome = Outcome()
        outcomes.append(outcome)
        try:
            for step in steps:
                returned = await step(channel)
                outcome.returns.append(returned)
                if isinstance(returned, RecordOutcome) and returned.hung_up:
                    raise CallerHangup()          # the engine keeps the file, then ends the call
            outcome.ended_by = "hangup"
        except CallerHangup:
            outcome.ended_by = "caller_hangup"
        except ChannelFailure as exc:
            outcome.ended_by = "error"
            outcome.error = str(exc)

    return on_call


def call_in_memory(fake: FakeAsterisk, factory: FastAgiFactory) -> Transcript:
    """Join a fake Asterisk and a server connection in memory and pump until the call is over."""
    server = factory.buildProtocol(None)
    client = fake.protocol()
    pump = iosim.connect(server, iosim.makeFakeServer(server), client, iosim.makeFakeClient(client),
                         clock=factory.clock)
    for _ in range(100):
        if client.finished.called:
            break
        pump.flush()
    transcript: list = []
    client.finished.addCallback(transcript.append)
    assert transcript, "the call did not end (is the server waiting on something?)"
    return transcript[0]


def run_on_agi(program, *, keys: str = "", settings=None, now=None, call_id: str = "agi",
               max_duration_ms: int | None = None, transcripts: list | None = None, **fake_options):
    """One call of ``program`` through an ``AgiChannel`` against the fake Asterisk, in memory: the AGI runtime
    of ``autocall.sim.runner.simulate`` (same arguments, same CallRecord), for the semantics tests.
    ``fake_options`` go to ``FakeAsterisk`` (over the settings' statuses); ``transcripts`` gets its transcript."""
    from datetime import datetime, timezone

    from autocall.agi.server import ShiftedClock
    from autocall.engine.interpreter import DEFAULT_MAX_DURATION_MS, Call
    from autocall.sim.runner import parse_settings

    settings = settings or parse_settings(program, {})
    records = []

    async def on_call(connection: FastAgiProtocol) -> None:
        channel = AgiChannel(connection, FakeSounds(), "/var/spool/autocall/recordings")
        clock = ShiftedClock(factory.clock, (now or datetime.now(timezone.utc)).timestamp())
        call = Call(program, channel, clock, call_id=call_id, params=settings.params, builtins=settings.builtins,
                    initial=settings.initial, max_duration_ms=max_duration_ms or DEFAULT_MAX_DURATION_MS)
        records.append(await call.run())

    factory = memory_factory(on_call)
    options = {"dial_status": settings.transfer_status, "queue_status": settings.queue_status, **fake_options}
    transcript = call_in_memory(FakeAsterisk("t", keys=keys, **options), factory)
    if transcripts is not None:
        transcripts.append(transcript)
    assert records, "the call did not run"
    return records[0]


def memory_factory(on_call, **options) -> FastAgiFactory:
    """A factory on a ``task.Clock`` (``factory.clock``) for in-memory and StringTransport tests."""
    return FastAgiFactory(on_call, clock=task.Clock(), **options)


# -- the AGI layer's fast paths on and off (autocall.agi.fastpaths) ----------------------------------------

def parametrize_agi_paths(metafunc) -> None:
    """``pytest_generate_tests`` of the AGI and server suites: every test runs with the fast paths on and
    off, but those of a module setting ``FAST_PATHS_ONLY = True`` (they test the fast paths themselves)."""
    if "agi_paths" in metafunc.fixturenames and not getattr(metafunc.module, "FAST_PATHS_ONLY", False):
        metafunc.parametrize("agi_paths", ["fast", "plain"], indirect=True)


@pytest.fixture(autouse=True)
def agi_paths(request, monkeypatch):
    """Which paths the AGI layer takes in this test ("fast" unless parametrized)."""
    from autocall.agi import fastpaths
    paths = getattr(request, "param", "fast")
    monkeypatch.setattr(fastpaths, "enabled", paths == "fast")
    return paths
