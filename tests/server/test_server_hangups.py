"""Hangups everywhere: the caller hanging up at every step of a call ends it cleanly, with its record, and
the server goes on serving the next call.

Two loops over one call that sends every kind of command (``helpers.EVERYTHING``):
the scripted caller's ``h`` at every position of its keys (compared with the
simulator, which must agree), and Asterisk's unprompted ``HANGUP`` line after
every reply, with and without ``AGIEXITONHANGUP`` (the socket closing too).
"""

from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from autocall.sim.runner import simulate
from tests.fakes.fake_asterisk import FakeAsterisk, FakeAsteriskProtocol, connect_raw, transcript_environment
from tests.server.helpers import EVERYTHING, EVERYTHING_KEYS, write

# The commands the server sends that touch the caller; after a hangup none of them may go out.
CALLER_FACING = ("ANSWER", "STREAM FILE", "WAIT FOR DIGIT", "RECORD FILE", "EXEC Wait", "EXEC Dial")


@pytest.fixture
def everything(serve, scripts):
    write(scripts, "everything.dlg", EVERYTHING)
    running = serve(scripts)
    full = running.call(FakeAsterisk("everything", keys=EVERYTHING_KEYS, uniqueid="full"))
    assert running.last()["ended_by"] == "hangup"
    return running, full.commands()


def still_serving(running, uniqueid: str) -> None:
    running.call(FakeAsterisk("everything", keys=EVERYTHING_KEYS, uniqueid=uniqueid))
    record = running.last()
    assert (record["call_id"], record["ended_by"], record["result"]) == (uniqueid, "hangup", "done 12")


def test_the_caller_hanging_up_at_every_key_position(everything, compiler, scripts):
    running, _ = everything
    program = compiler.compile_file(str(scripts / "everything.dlg")).program
    tokens = EVERYTHING_KEYS.replace(" ", "")
    # Every prefix of the keys, then "h": before the answer, mid-prompt, mid-gather, mid-menu, at the wait
    # (the next step once the keys are spent). Later steps are the command-index loop's below.
    keys_list = [tokens[:i] + "h" for i in range(len(tokens) + 1)]
    for number, keys in enumerate(keys_list):
        simulated = simulate(program, keys=keys)
        transcript = running.call(FakeAsterisk("everything", keys=keys, uniqueid=f"h{number}"))
        record = running.last()
        assert record["call_id"] == f"h{number}"
        assert (record["ended_by"], record["path"]) == (simulated.ended_by, simulated.path), keys
        assert record["ended_by"] == "caller_hangup", keys
        # Nothing caller-facing was sent after the caller was gone.
        lines = transcript.after_environment()
        gone = next(i for i, (direction, line) in enumerate(lines)
                    if direction == "<<" and (line.startswith("200 result=-1") or line == "HANGUP"))
        assert not [line for direction, line in lines[gone + 1:]
                    if direction == ">>" and line.startswith(CALLER_FACING)], keys
    still_serving(running, "after-keys")


@pytest.mark.parametrize("exit_on_hangup", [False, True], ids=["socket-stays-open", "AGIEXITONHANGUP"])
def test_asterisk_hangup_line_after_every_reply(everything, exit_on_hangup):
    running, commands = everything
    last_caller_facing = max(i for i, line in enumerate(commands) if line.startswith(CALLER_FACING))
    for index in range(1, len(commands)):
        fake = FakeAsterisk("everything", keys=EVERYTHING_KEYS, uniqueid=f"n{index}", hangup_after_reply=index,
                            exit_on_hangup=exit_on_hangup)
        transcript = running.call(fake)
        record = running.last()
        assert record["call_id"] == f"n{index}"
        # Hung up while a caller-facing command was still to come: the caller ended the call. After the
        # last one (only the final HANGUP left), the dialogue had already ended it.
        expected = "caller_hangup" if index <= last_caller_facing else "hangup"
        assert record["ended_by"] == expected, (index, commands[index - 1], transcript.render())
        assert record["error"] is None
        sent_after = transcript.commands()[index:]
        assert not [line for line in sent_after if line.startswith(CALLER_FACING)], (index, sent_after)
    still_serving(running, "after-lines")


def test_hangup_replies_to_every_command(everything):
    """The caller gone mid-command: that command answers -1 (as Asterisk does), the call ends cleanly."""
    running, commands = everything
    for index, command in enumerate(commands, start=1):
        if not command.startswith(CALLER_FACING):
            continue
        reply = "200 result=-1 endpos=4000" if command.startswith("STREAM FILE") else "200 result=-1"
        if command.startswith("RECORD FILE"):
            reply = "200 result=-1 (hangup) endpos=16000"
        fake = FakeAsterisk("everything", keys=EVERYTHING_KEYS, uniqueid=f"r{index}",
                            replies={index: [reply, "HANGUP"]})
        running.call(fake)
        assert running.last()["ended_by"] == "caller_hangup", (index, command)
    still_serving(running, "after-replies")


class HangupDuringEnvironment(FakeAsteriskProtocol):
    """The caller hangs up while Asterisk is still sending the environment: the HANGUP line follows it."""

    def connectionMade(self) -> None:
        super().connectionMade()
        self._hangup_line()


def test_hangup_during_the_environment(everything):
    running, _ = everything
    proto = HangupDuringEnvironment(FakeAsterisk("everything", keys=EVERYTHING_KEYS, uniqueid="env-h"))
    endpoint = TCP4ClientEndpoint(running.live.reactor, running.host, running.port)
    running.live.run(connectProtocol(endpoint, proto).addCallback(lambda _: proto.finished))
    running.live.settle(running.server.factory)
    record = running.last()
    assert (record["call_id"], record["ended_by"], record["path"]) == ("env-h", "caller_hangup", ["main"])
    assert not [line for line in proto.transcript.commands() if line.startswith(CALLER_FACING)]
    still_serving(running, "after-env-hangup")


def test_connection_closed_half_way_through_the_environment(everything):
    """Not a call yet (no complete environment): nothing to record, nothing logged above debug."""
    running, _ = everything
    before = len(running.records())
    block = transcript_environment("everything").to_bytes()
    peer = running.live.run(connect_raw(running.live.reactor, running.host, running.port,
                                        send=block[: len(block) // 2], close=True))
    running.live.run(peer.finished)
    running.live.settle(running.server.factory)
    assert len(running.records()) == before
    still_serving(running, "after-half-env")


def test_many_callers_hanging_up_at_once_cost_only_their_own_calls(everything):
    running, _ = everything
    tokens = EVERYTHING_KEYS.replace(" ", "")
    fakes = [FakeAsterisk("everything", keys=tokens[: n % 4] + "h" if n % 2 else EVERYTHING_KEYS,
                          uniqueid=f"m{n}", env_chunk=5) for n in range(40)]
    calls = [fake.call(running.live.reactor, running.host, running.port) for fake in fakes]
    running.live.run(defer.gatherResults(calls))
    running.live.settle(running.server.factory)
    records = {r["call_id"]: r for r in running.records()}
    for n in range(40):
        assert records[f"m{n}"]["ended_by"] == ("caller_hangup" if n % 2 else "hangup")


class ParkedSounds:
    """Renders that never finish (a TTS queue stuck behind other work): every call parks on its first prompt."""

    def __init__(self) -> None:
        self.asked: list[defer.Deferred] = []

    def sound_for(self, prompt) -> defer.Deferred:
        self.asked.append(defer.Deferred())
        return self.asked[-1]


def test_a_stop_records_the_calls_parked_on_a_render(serve, scripts):
    """At a stop every call in progress gets its record at once, including those waiting for a prompt to
    be made (before, they sat until the render ended, after the records were closed, and were lost)."""
    from autocall.agi.service import AgiService
    from tests.server.helpers import HELLO, HeldAsterisk
    write(scripts, "hello.dlg", HELLO)
    sounds = ParkedSounds()
    running = serve(scripts, sounds=sounds)
    callers = [running.start(HeldAsterisk(FakeAsterisk("hello", keys="1234", uniqueid=f"p{n}"), hold_at="NEVER"))
               for n in range(3)]
    running.live.spin_until(lambda: len(sounds.asked) == 3)
    service = AgiService(running.server, "tcp:0", grace_period_ms=0, records=running.writer)
    service.stop_now()
    running.live.run(service._stopping, timeout=3)        # before: 5 s of waiting, then the records lost
    for caller in callers:
        running.live.run(caller.finished)
    conn = __import__("sqlite3").connect(running.database)
    stored = conn.execute("SELECT call_id, ended_by, error FROM calls ORDER BY call_id").fetchall()
    conn.close()
    assert [row[0] for row in stored] == ["p0", "p1", "p2"]
    assert all(row[1] == "error" and "stopped at once" in row[2] for row in stored)
    sounds.asked[0].callback("tts/late")                 # the render ends after all: nothing happens
    running.writer = None                                 # closed by the stop


def test_a_stop_drops_the_queued_warm_ups(serve, scripts, tmp_path):
    """A script edited just before a stop queued hundreds of warm-up renders: the stop drops them (it
    waited for all of them, a minute and more), and the calls' records are written as always."""
    import time
    from autocall.agi.service import AgiService
    from autocall.agi.sounds import PlayableSounds
    from autocall.audio.async_sounds import AsyncSounds
    from autocall.audio.library import SoundLibrary
    from autocall.engine.channel import TtsPrompt
    library = SoundLibrary(tmp_path / "sounds")
    running = serve(scripts)
    sounds = PlayableSounds(AsyncSounds(library, running.live.reactor), library)
    running.server.sounds = sounds
    sounds.warm([TtsPrompt(f"Warm-up prompt number {n}.") for n in range(200)])
    service = AgiService(running.server, "tcp:0", grace_period_ms=0, records=running.writer)
    started = time.monotonic()
    running.live.run(service.stopService(), timeout=20)
    assert time.monotonic() - started < 10 and library.renders <= 2
    import threading                                      # and nothing renders on after the stop
    assert not [t for t in threading.enumerate() if "autocall-sounds" in t.name and t.is_alive()]
    running.writer = None                                 # closed by the stop
