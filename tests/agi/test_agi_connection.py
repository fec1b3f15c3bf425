"""The Twisted adapter: StringTransport and task.Clock, no sockets, no sleeps.

Pins one-at-a-time commands, the unprompted HANGUP line, 520 multi-line
replies, connection loss failing every waiter, and the peers that must cost
only their own connection (health check, garbage, endless line, silence).
"""

from __future__ import annotations

import logging

import pytest
from twisted.internet import defer, task
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from autocall.agi import protocol as agi
from autocall.agi.connection import FastAgiFactory, FastAgiProtocol
from autocall.agi.protocol import HANGUP_NOTICE, Environment, RemoteProtocolError, Response, UsageError
from autocall.config import Config
from tests.fakes.fake_asterisk import transcript_environment

ENV = transcript_environment("probe").to_bytes()


class Harness:
    """A factory on a task.Clock, the calls its on_call saw, and connections on StringTransports."""

    def __init__(self, on_call=None, **options) -> None:
        self.calls: list[FastAgiProtocol] = []
        self.clock = task.Clock()
        self.factory = FastAgiFactory(on_call or self._record, clock=self.clock, **options)
        self.result: defer.Deferred = defer.Deferred()

    def _record(self, connection):
        self.calls.append(connection)
        return self.result       # the call lasts until the test fires it

    def connect(self, env: bytes | None = ENV) -> tuple[FastAgiProtocol, StringTransport]:
        proto = self.factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        if env:
            proto.dataReceived(env)
        return proto, transport


def fired(d: defer.Deferred):
    """The result of a fired Deferred (raises its failure)."""
    box: list = []

    def keep(result):
        box.append(result)
        return None if isinstance(result, Failure) else result   # a failure is handled here

    d.addBoth(keep)
    assert box, "the Deferred has not fired"
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


def test_environment_starts_the_call_once():
    harness = Harness()
    proto, _ = harness.connect(None)
    for index in range(len(ENV)):                     # byte by byte
        assert harness.calls == []
        proto.dataReceived(ENV[index:index + 1])
    assert harness.calls == [proto]
    assert proto.environment.script == "probe"
    assert fired(proto.wait_environment()) is proto.environment
    assert harness.clock.getDelayedCalls() == []      # the environment timer is gone


def test_commands_go_one_at_a_time_and_replies_pair_in_order():
    harness = Harness()
    proto, transport = harness.connect()
    first = proto.send_command(agi.answer())
    second = proto.send_command(agi.stream_file("probe-1s", "1234"))
    third = proto.send_command(agi.wait_for_digit(5000))
    assert transport.value() == b"ANSWER\n"           # the others wait their turn
    proto.dataReceived(b"200 result=0\n")
    assert fired(first) == Response(200, 0, None, None, "0")
    assert transport.value() == b'ANSWER\nSTREAM FILE probe-1s "1234"\n'
    assert not second.called
    proto.dataReceived(b"200 result=0 endpos=8000\n")
    assert fired(second).endpos == 8000
    assert transport.value().endswith(b"WAIT FOR DIGIT 5000\n")
    proto.dataReceived(b"200 result=53\n")
    assert fired(third).result == 53


def test_a_reply_to_a_command_not_yet_written_is_the_peers_fault():
    """Asterisk answers only what it has read; a queued command has not been written yet."""
    harness = Harness()
    proto, transport = harness.connect()
    first = proto.send_command(agi.answer())
    second = proto.send_command(agi.noop())
    proto.dataReceived(b"200 result=0\n200 result=0\n")
    assert fired(first).result == 0
    with pytest.raises(RemoteProtocolError, match="a reply to no command"):
        fired(second)
    assert transport.disconnecting


def test_a_callback_may_send_the_next_command_at_once():
    harness = Harness()
    proto, transport = harness.connect()
    seen = []

    def next_one(reply):
        seen.append(reply)
        return proto.send_command(agi.noop()).addCallback(seen.append)

    proto.send_command(agi.answer()).addCallback(next_one)
    proto.dataReceived(b"200 result=0\n")
    assert transport.value() == b"ANSWER\nNOOP\n"          # written from inside the callback
    proto.dataReceived(b"200 result=0\n")
    assert [r.result for r in seen] == [0, 0]


def test_a_hangup_line_in_the_same_segment_as_a_reply_is_known_to_the_replys_callbacks():
    harness = Harness()
    proto, _ = harness.connect()
    seen = []
    proto.send_command(agi.stream_file("x", "")).addCallback(lambda reply: seen.append(proto.hung_up))
    proto.dataReceived(b"200 result=-1 endpos=4000\nHANGUP\n")
    assert seen == [True]


def test_multi_line_520_is_one_reply_and_the_next_command_gets_its_own():
    """starpy desynchronised on this: usage lines taken as replies to later commands."""
    harness = Harness()
    proto, _ = harness.connect()
    bad = proto.send_command(agi.Command.raw("STREAM FILE"))
    good = proto.send_command(agi.noop())
    proto.dataReceived(b"520-Invalid command syntax.  Proper usage follows:\n"
                       b"Send the given file, allowing playback to be interrupted by the given digits.\n"
                       b"It sets the following channel variables upon completion:\n")
    assert not bad.called
    proto.dataReceived(b"    <value>SUCCESS</value>\n520 End of proper usage.\n")
    assert isinstance(fired(bad), UsageError) and len(fired(bad).lines) == 3
    assert not good.called
    proto.dataReceived(b"200 result=0\n")
    assert fired(good).result == 0


def test_unprompted_hangup_while_thinking_is_never_the_next_reply():
    """starpy took this HANGUP line for the reply to the next command."""
    harness = Harness()
    proto, transport = harness.connect()
    answered = proto.send_command(agi.answer())
    proto.dataReceived(b"200 result=0\n")
    assert fired(answered).result == 0
    proto.dataReceived(b"HANGUP\n")                   # while the server is thinking
    assert proto.hung_up
    d = proto.send_command(agi.stream_file("x", ""))
    assert not d.called
    proto.dataReceived(b"511 Command Not Permitted on a dead channel or intercept routine\n")
    assert fired(d).code == 511


def test_hangup_line_between_command_and_reply_sets_the_flag_only():
    """#7776: >> SET VARIABLE, << HANGUP, << 200 result=1."""
    harness = Harness()
    proto, _ = harness.connect()
    d = proto.send_command(agi.set_variable("RESULT", "ok"))
    proto.dataReceived(b"HANGUP\n")
    assert proto.hung_up and not d.called
    proto.dataReceived(b"200 result=1\n")
    assert fired(d).result == 1


@pytest.mark.parametrize("reason", [ConnectionDone(), ConnectionLost()])
def test_connection_loss_fails_the_pending_and_queued_commands(reason):
    harness = Harness()
    proto, _ = harness.connect()
    pending = proto.send_command(agi.answer())
    queued = proto.send_command(agi.noop())
    proto.connectionLost(Failure(reason))
    for d in (pending, queued):
        with pytest.raises(type(reason)):
            fired(d)
    with pytest.raises(type(reason)):
        fired(proto.send_command(agi.noop()))
    assert proto.closed and proto not in harness.factory.connections


def test_exit_on_hangup_close_after_hangup_lines_fails_the_command():
    """#6624 (AGIEXITONHANGUP=yes): >> WAIT FOR DIGIT, << HANGUP, << HANGUP, EOF."""
    harness = Harness()
    proto, _ = harness.connect()
    d = proto.send_command(agi.wait_for_digit(1000))
    proto.dataReceived(b"HANGUP\nHANGUP\n")
    proto.connectionLost(Failure(ConnectionDone()))
    assert proto.hung_up
    with pytest.raises(ConnectionDone):
        fired(d)


def test_health_check_connect_and_close_costs_nothing(caplog):
    """panoramisk's whole server froze on this."""
    harness = Harness()
    caplog.set_level(logging.DEBUG, "autocall.agi")
    proto, _ = harness.connect(None)
    proto.connectionLost(Failure(ConnectionDone()))
    assert harness.calls == [] and harness.clock.getDelayedCalls() == []
    assert harness.factory.connections == set()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with pytest.raises(ConnectionDone):
        fired(proto.wait_environment())
    # the next caller is served
    other, _ = harness.connect()
    assert harness.calls == [other]


def test_silent_peer_is_dropped_after_env_timeout(caplog):
    harness = Harness(env_timeout_ms=10_000)
    proto, transport = harness.connect(None)
    waiting = proto.wait_environment()
    harness.clock.advance(9.999)
    assert not transport.disconnecting
    harness.clock.advance(0.001)
    assert transport.disconnecting
    with pytest.raises(RemoteProtocolError, match="no environment within 10000 ms"):
        fired(waiting)
    assert "dropped: the peer sent no environment" in caplog.text
    proto.connectionLost(Failure(ConnectionLost()))    # the transport reports the abort
    assert harness.factory.connections == set() and harness.calls == []


def test_partial_environment_is_still_a_silent_peer():
    harness = Harness(env_timeout_ms=1000)
    proto, transport = harness.connect(ENV[:100])
    harness.clock.advance(1)
    assert transport.disconnecting and harness.calls == []


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n\r\n", b"\x00\x01\x02\n", b"HANGUP\n"])
def test_garbage_instead_of_environment_is_dropped(data, caplog):
    harness = Harness()
    proto, transport = harness.connect(None)
    proto.dataReceived(data)
    assert transport.disconnecting and harness.calls == []
    assert harness.clock.getDelayedCalls() == []
    assert "garbage instead of an AGI environment" in caplog.text or "not AGI" in caplog.text or \
        "empty environment" in caplog.text
    proto.dataReceived(ENV)                           # whatever comes after is ignored
    assert harness.calls == []


def test_endless_line_is_dropped_before_it_ends():
    harness = Harness(max_line_length=1024)
    proto, transport = harness.connect(None)
    for _ in range(3):
        proto.dataReceived(b"x" * 400)
    assert transport.disconnecting and harness.calls == []


def test_endless_line_mid_call_fails_the_pending_command():
    harness = Harness(max_line_length=1024)
    proto, transport = harness.connect()
    d = proto.send_command(agi.answer())
    proto.dataReceived(b"2" * 2000)
    assert transport.disconnecting
    with pytest.raises(RemoteProtocolError, match="longer than 1024"):
        fired(d)


def test_a_reply_to_no_command_drops_the_connection():
    harness = Harness()
    proto, transport = harness.connect()
    proto.dataReceived(b"200 result=0\n")
    assert transport.disconnecting
    with pytest.raises(RemoteProtocolError):
        fired(proto.send_command(agi.noop()))


def test_the_connection_closes_when_the_call_is_over():
    harness = Harness()
    proto, transport = harness.connect()
    assert not transport.disconnecting
    harness.result.callback(None)
    assert transport.disconnecting


def test_a_failing_call_handler_is_logged_and_the_connection_closed(caplog):
    def broken(connection):
        raise ValueError("boom")

    harness = Harness(broken)
    _, transport = harness.connect()
    assert transport.disconnecting
    assert "the call handler failed" in caplog.text and "boom" in caplog.text


def test_coroutine_call_handler():
    harness = Harness()
    replies = []

    async def on_call(connection):
        replies.append(await connection.send_command(agi.answer()))

    harness.factory.on_call = on_call
    proto, transport = harness.connect()
    assert transport.value() == b"ANSWER\n"
    proto.dataReceived(b"200 result=0\n")
    assert replies[0].result == 0 and transport.disconnecting


def test_many_connections_are_independent():
    harness = Harness()
    good, good_transport = harness.connect()
    bad, bad_transport = harness.connect(b"garbage\n")
    silent, silent_transport = harness.connect(None)
    harness.clock.advance(10)
    assert bad_transport.disconnecting and silent_transport.disconnecting
    assert not good_transport.disconnecting
    d = good.send_command(agi.answer())
    good.dataReceived(b"200 result=0\n")
    assert fired(d).result == 0


def test_factory_from_config_takes_the_limits():
    factory = FastAgiFactory.from_config(Config(env_timeout=2500, max_line_length=99), lambda c: None,
                                         clock=task.Clock())
    assert (factory.env_timeout_ms, factory.max_line_length) == (2500, 99)


def test_hangup_notice_event_is_shared_and_small():
    assert HANGUP_NOTICE.to_bytes() == b"HANGUP\n"
    proto = FastAgiProtocol(FastAgiFactory(lambda c: None, clock=task.Clock()))
    assert not hasattr(proto, "__dict__")             # __slots__: thousands of these are held
    assert isinstance(transcript_environment(), Environment)
