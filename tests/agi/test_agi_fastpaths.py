"""The fast paths of the AGI layer give exactly what the plain paths give.

- the one-pass environment parse (a whole block in one regex) against the
  line-by-line parse, fed whole, byte by byte and with trailing data;
- ``quick_environment`` / ``quick_reply``: all or nothing, the same events
  as ``receive_data`` + ``next_event``, nothing consumed when they decline;
- ``_CallTask``: a coroutine ``on_call`` driven without Deferreds (replies
  straight in, Deferreds still awaited, failures thrown in, a lost
  connection, another driver falling back to a Deferred);
- direct writes: straight to the socket while nothing was ever queued, in
  order through the transport after a partial send or an error.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer, task
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from autocall.agi import protocol as agi
from autocall.agi.connection import FastAgiFactory
from autocall.agi.protocol import (
    HANGUP_NOTICE,
    AgiConnection,
    Environment,
    NeedData,
    RemoteProtocolError,
    Response,
    State,
    UsageError,
)
from tests.fakes.agi_fixtures import live_reactor  # noqa: F401  (a fixture)
from tests.fakes.fake_asterisk import transcript_environment

FAST_PATHS_ONLY = True      # these tests compare the fast paths with the plain ones themselves
ENV = transcript_environment("probe").to_bytes()


def events_of(conn: AgiConnection, found: list | None = None) -> list:
    found = [] if found is None else found
    while (event := conn.next_event()) is not NeedData:
        found.append(event)
    return found


def assert_same_events_after(data: bytes, quick: AgiConnection, plain: AgiConnection) -> None:
    """After a declined fast path, the connection must still parse ``data`` exactly as one that never tried."""
    quick.receive_data(data)
    plain.receive_data(data)
    try:
        expected = events_of(plain)
    except RemoteProtocolError:
        with pytest.raises(RemoteProtocolError):
            events_of(quick)
    else:
        assert events_of(quick) == expected


def line_by_line(data: bytes, **options) -> list:
    """The plain parse: byte by byte, so every environment line is consumed on its own."""
    conn = AgiConnection(**options)
    found: list = []
    for index in range(len(data)):
        conn.receive_data(data[index:index + 1])
        events_of(conn, found)
    return found


def whole(data: bytes, **options) -> list:
    conn = AgiConnection(**options)
    conn.receive_data(data)
    return events_of(conn)


def outcome(parse, data: bytes) -> tuple[list, str | None]:
    """The events a parse gives, and the error it stops with (its message), if any."""
    found: list = []
    conn = AgiConnection()
    try:
        if parse is whole:
            conn.receive_data(data)
            events_of(conn, found)
        else:
            for index in range(len(data)):
                conn.receive_data(data[index:index + 1])
                events_of(conn, found)
    except RemoteProtocolError as exc:
        return found, str(exc)
    return found, None


# --- the one-pass environment parse ----------------------------------------------------------------

def test_a_whole_block_is_parsed_in_one_pass_with_the_same_fields():
    conn = AgiConnection()
    conn.receive_data(ENV)
    assert conn._environment_block() == transcript_environment("probe")     # the route next_event takes
    assert conn.state is State.IDLE and conn.next_event() is NeedData
    [env] = whole(ENV)
    assert env == line_by_line(ENV)[0] == transcript_environment("probe")
    assert env.fields["agi_accountcode"] == ""
    assert all(type(key) is str for key in env.fields)


def test_interned_keys_are_shared_between_connections():
    first, second = whole(ENV)[0], whole(ENV)[0]
    assert all(a is b for a, b in zip(first.fields, second.fields))


@pytest.mark.parametrize("block", [
    b"agi_a: 1\nagi_b:2\nagi_c:  two spaces\nagi_d:\nagi_e: x: y\n\n",      # colons and spaces in values
    b"agi_a: 1\nagi_a: 2\n\n",                                                # a repeated key keeps the last
    "agi_callerid: Jos\u00e9 \u2028 \x85 x\n\n".encode(),                      # separators that are not \n
    b"agi_callerid: \xe2\x82\nagi_x: \xff\xfe\n\n",                            # invalid UTF-8, replaced
    b"agi_arg_1: a=b\nagi_arg_10: j\nagi_arg_2: b\n\n",
    b"agi_: empty name\n\n",
])
def test_one_pass_and_line_by_line_agree(block):
    assert whole(block) == line_by_line(block)
    assert len(whole(block)) == 1


@pytest.mark.parametrize("block", [
    b"agi_a: 1\nagi b: 2\n\n",              # a space in a key
    b"agi_a: 1\nnot_agi: 2\n\n",
    b"agi_a: 1\nagi_b\n\n",                 # no colon
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
])
def test_what_the_one_pass_does_not_recognise_still_fails_as_before(block):
    for feed in (whole, line_by_line):
        with pytest.raises(RemoteProtocolError, match="garbage"):
            feed(block)


def test_odd_but_valid_keys_and_crlf_go_line_by_line_with_the_same_result():
    for block in (b"agi_\xc3\xa9t\xc3\xa9: 1\n\n", b"agi_x-y: 1\n\n", ENV.replace(b"\n", b"\r\n")):
        assert whole(block) == line_by_line(block)


def test_trailing_data_after_the_block_is_parsed_next():
    conn = AgiConnection()
    conn.receive_data(ENV + b"HANGUP\n")
    assert events_of(conn) == [transcript_environment("probe"), HANGUP_NOTICE]
    assert conn.state is State.IDLE and conn.hung_up


def test_a_block_longer_than_the_line_limit_is_fine_when_its_lines_are_not():
    block = b"".join(b"agi_k%d: %s\n" % (n, b"v" * 50) for n in range(10)) + b"\n"
    [env] = whole(block, max_line_length=100)
    assert env == line_by_line(block, max_line_length=100)[0] and len(env.fields) == 10


keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789-.\u00e9 ", max_size=8).map(lambda k: "agi_" + k)
values = st.text(st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=20)


@settings(max_examples=300)
@given(st.lists(st.tuples(keys, values), min_size=1, max_size=6), st.binary(max_size=6))
def test_any_block_parses_alike_either_way_even_with_something_after_it(pairs, junk):
    block = b"".join(f"{key}: {value}\n".encode() for key, value in pairs) + b"\n"
    for data in (block, block + junk):
        assert outcome(whole, data) == outcome(line_by_line, data)


# --- quick_environment and quick_reply: all or nothing -----------------------------------------------

def test_quick_environment_takes_exactly_a_whole_block():
    conn = AgiConnection()
    env = conn.quick_environment(ENV)
    assert env == transcript_environment("probe") and conn.state is State.IDLE


@pytest.mark.parametrize("data", [
    ENV + b"HANGUP\n",                  # trailing data
    ENV[:-1],                           # not finished
    ENV.replace(b"\n", b"\r\n"),        # CR line ends
    b"\n",                              # empty
    b"agi_a: 1\n\nagi_b: 2\n\n",        # two blocks
    b"agi b: 1\n\n",                    # garbage
])
def test_quick_environment_declines_and_consumes_nothing(data):
    quick, plain = AgiConnection(), AgiConnection()
    assert quick.quick_environment(data) is None
    assert quick.state is State.ENVIRONMENT
    assert_same_events_after(data, quick, plain)


def test_quick_environment_declines_once_something_is_buffered():
    conn = AgiConnection()
    conn.receive_data(ENV[:10])
    assert conn.quick_environment(ENV[10:]) is None


def ready() -> AgiConnection:
    conn = AgiConnection()
    conn.receive_data(ENV)
    assert isinstance(conn.next_event(), Environment)
    return conn


@pytest.mark.parametrize("data", [
    b"200 result=0\n", b"200 result=51 endpos=13600\n", b"200 result=1 (a (b) c)\n", b"200 result= (timeout)\n",
    b"200 result=1\nHANGUP\n",
])
def test_quick_reply_gives_what_next_event_gives(data):
    quick, plain = ready(), ready()
    quick.send(agi.noop())
    plain.send(agi.noop())
    reply = quick.quick_reply(data)
    plain.receive_data(data)
    expected = events_of(plain)
    assert [reply, *([HANGUP_NOTICE] if quick.hung_up else [])] == expected
    assert quick.state is plain.state is State.IDLE
    assert quick.hung_up == plain.hung_up == data.endswith(b"HANGUP\n")


@pytest.mark.parametrize("data", [
    b"510 Invalid or unknown command\n", b"511 Command Not Permitted on a dead channel\n",
    b"520 Invalid command syntax.  Proper usage not available.\n",
    b"520-Invalid command syntax.  Proper usage follows:\nx\n520 End of proper usage.\n",
    b"200 result=0\r\n", b"200 result=0", b"200 result=0\n200 result=1\n", b"200 result=0\nHANGUP",
    b"200 result=0\nHANGUP\nHANGUP\n", b"HANGUP\n200 result=0\n", b"200 result=1 (unbalanced\n",
    b"200 result=1 endpos=x\n",
])
def test_quick_reply_declines_anything_else_and_consumes_nothing(data):
    quick, plain = ready(), ready()
    quick.send(agi.noop())
    plain.send(agi.noop())
    assert quick.quick_reply(data) is None
    assert quick.state is State.AWAITING_REPLY and not quick.hung_up
    assert_same_events_after(data, quick, plain)


def test_quick_reply_only_when_a_reply_is_awaited_and_nothing_is_buffered():
    conn = ready()
    assert conn.quick_reply(b"200 result=0\n") is None            # no command outstanding
    conn.send(agi.noop())
    conn.receive_data(b"200 res")
    assert conn.quick_reply(b"200 result=0\n") is None            # a partial line is buffered
    conn.receive_data(b"ult=0\n")
    assert events_of(conn) == [Response(200, 0, None, None, "0")]


replies = st.one_of(
    st.builds(Response.ok, st.integers(-2, 10**6), st.none() | values, st.none() | st.integers(0, 10**9)),
    st.builds(Response, st.sampled_from([510, 511]), st.none(), values.filter(lambda s: s == s.lstrip())),
    st.builds(UsageError, st.lists(values.filter(lambda s: not s.startswith("520 ")), max_size=3).map(tuple)),
)


@settings(max_examples=300)
@given(replies, st.booleans())
def test_any_reply_quick_or_not_is_the_same_event(reply, hangup):
    data = reply.to_bytes() + (b"HANGUP\n" if hangup else b"")
    quick, plain = ready(), ready()
    quick.send(agi.noop())
    plain.send(agi.noop())
    got = quick.quick_reply(data)
    if got is None:
        quick.receive_data(data)
        got_events = events_of(quick)
    else:
        got_events = [got, *([HANGUP_NOTICE] if quick.hung_up else [])]
    plain.receive_data(data)
    assert got_events == events_of(plain)
    assert quick.state is plain.state


# --- the call's coroutine, driven without Deferreds ---------------------------------------------------

class Harness:
    def __init__(self, on_call) -> None:
        self.factory = FastAgiFactory(on_call, clock=task.Clock())

    def connect(self):
        proto = self.factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        proto.dataReceived(ENV)
        return proto, transport


def sent(transport: StringTransport) -> list[bytes]:
    lines = transport.value().splitlines()
    transport.clear()
    return lines


def test_request_resumes_the_coroutine_with_each_reply_and_the_connection_closes_after():
    replies = []

    async def on_call(connection):
        replies.append(await connection.request(agi.answer()))
        replies.append(await connection.request(agi.wait_for_digit(1000)))

    proto, transport = Harness(on_call).connect()
    assert sent(transport) == [b"ANSWER"]
    proto.dataReceived(b"200 result=0\n")
    assert sent(transport) == [b"WAIT FOR DIGIT 1000"]
    proto.dataReceived(b"200 result=49\n")
    assert [r.result for r in replies] == [0, 49]
    assert transport.disconnecting and proto._task is None


def test_a_hangup_line_with_the_reply_is_known_when_the_coroutine_resumes():
    seen = []

    async def on_call(connection):
        await connection.request(agi.stream_file("x", ""))
        seen.append(connection.hung_up)

    proto, _ = Harness(on_call).connect()
    proto.dataReceived(b"200 result=-1 endpos=12000\nHANGUP\n")
    assert seen == [True]


def test_deferreds_are_still_awaited_fired_or_not_failing_or_not():
    later: defer.Deferred = defer.Deferred()
    got = []

    async def on_call(connection):
        got.append(await defer.succeed("now"))
        got.append(await later)
        try:
            await defer.fail(ValueError("bad"))
        except ValueError as exc:
            got.append(str(exc))
        failing: defer.Deferred = defer.Deferred()
        connection.factory.clock.callLater(1, failing.errback, KeyError("late"))
        try:
            await failing
        except KeyError as exc:
            got.append(exc.args[0])
        got.append((await connection.request(agi.noop())).result)

    harness = Harness(on_call)
    proto, transport = harness.connect()
    assert got == ["now"]
    later.callback("later")
    harness.factory.clock.advance(1)
    assert got == ["now", "later", "bad", "late"]
    proto.dataReceived(b"200 result=0\n")
    assert got[-1] == 0 and transport.disconnecting


def test_a_lost_connection_is_thrown_into_the_waiting_coroutine():
    errors = []

    async def on_call(connection):
        try:
            await connection.request(agi.answer())
        except ConnectionLost as exc:
            errors.append(exc)
        errors.append("after")

    proto, _ = Harness(on_call).connect()
    proto.connectionLost(Failure(ConnectionLost()))
    assert isinstance(errors[0], ConnectionLost) and errors[1] == "after"


def test_a_request_after_the_connection_closed_fails_at_once():
    errors = []

    async def on_call(connection):
        await connection.request(agi.answer())
        try:
            await connection.request(agi.noop())
        except ConnectionDone:
            errors.append("done")

    proto, _ = Harness(on_call).connect()
    proto._closed = Failure(ConnectionDone())      # closed between the reply and the next command
    proto._task.step(Response.ok(0), None)
    assert errors == ["done"]


def test_a_failing_coroutine_is_logged_and_the_connection_closed(caplog):
    async def on_call(connection):
        await connection.request(agi.answer())
        raise RuntimeError("boom")

    proto, transport = Harness(on_call).connect()
    with caplog.at_level(logging.ERROR, logger="autocall"):
        proto.dataReceived(b"200 result=0\n")
    assert transport.disconnecting and "the call handler failed" in caplog.text and "boom" in caplog.text


def test_another_driver_gets_a_deferred_instead():
    """A coroutine run by ensureDeferred inside the call (not by its task) still gets its reply."""
    got = []

    async def inner(connection):
        return (await connection.request(agi.noop())).result

    async def on_call(connection):
        got.append(await defer.ensureDeferred(inner(connection)))

    proto, transport = Harness(on_call).connect()
    assert sent(transport) == [b"NOOP"]
    proto.dataReceived(b"200 result=7\n")
    assert got == [7] and transport.disconnecting


def test_commands_behind_a_pending_one_queue_as_deferreds():
    got = []

    async def on_call(connection):
        queued = connection.send_command(agi.noop())        # sent at once: nothing pending
        got.append((await connection.request(agi.answer())).result)    # queued behind it
        got.append((await queued).result)

    proto, transport = Harness(on_call).connect()
    assert sent(transport) == [b"NOOP"]
    proto.dataReceived(b"200 result=1\n")
    assert sent(transport) == [b"ANSWER"]
    proto.dataReceived(b"200 result=2\n")
    assert got == [2, 1]


# --- direct writes ------------------------------------------------------------------------------------

class FakeSocket:
    def __init__(self, takes: list) -> None:
        self.takes = list(takes)        # per send: how many bytes to take, or an exception
        self.got = b""

    def send(self, data) -> int:
        take = self.takes.pop(0) if self.takes else len(data)
        if isinstance(take, Exception):
            raise take
        take = min(take, len(data))
        self.got += bytes(data[:take])
        return take


def direct_connection(takes: list):
    async def on_call(connection):
        for n in range(4):
            await connection.request(agi.wait_for_digit(n))

    proto = FastAgiFactory(on_call, clock=task.Clock()).buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    sock = proto._socket = FakeSocket(takes)
    proto.dataReceived(ENV)
    for _ in range(4):
        proto.dataReceived(b"200 result=0\n")
    return proto, transport, sock


def test_commands_go_straight_to_the_socket_while_it_takes_them_whole():
    _, transport, sock = direct_connection([])
    assert sock.got == b"WAIT FOR DIGIT 0\nWAIT FOR DIGIT 1\nWAIT FOR DIGIT 2\nWAIT FOR DIGIT 3\n"
    assert transport.value() == b""


@pytest.mark.parametrize("takes", [[5], [0], [BlockingIOError()], [BrokenPipeError()], [None, 3]])
def test_after_a_partial_send_or_an_error_everything_goes_through_the_transport_in_order(takes):
    takes = [17 if t is None else t for t in takes]
    proto, transport, sock = direct_connection(takes)
    assert sock.got + transport.value() == b"WAIT FOR DIGIT 0\nWAIT FOR DIGIT 1\nWAIT FOR DIGIT 2\nWAIT FOR DIGIT 3\n"
    assert proto._socket is None


def test_no_direct_writes_after_close_or_abort_or_on_other_transports():
    proto, _, _ = direct_connection([])
    assert proto._socket is None                     # the call ended: close()
    other = FastAgiFactory(lambda c: None, clock=task.Clock()).buildProtocol(None)
    other.makeConnection(StringTransport())
    assert other._socket is None
    other._socket = FakeSocket([])
    other.abort()
    assert other._socket is None


def test_a_real_tcp_connection_writes_directly(live_reactor):
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
    from twisted.internet.protocol import Protocol

    servers = []

    async def on_call(connection):
        servers.append(connection._socket is not None)
        await connection.request(agi.answer())
        servers.append(connection._socket is not None)      # the whole line went straight out

    factory = FastAgiFactory(on_call)
    host, port = live_reactor.listen(factory)

    class Peer(Protocol):
        def __init__(self) -> None:
            self.data = b""
            self.closed: defer.Deferred = defer.Deferred()

        def connectionMade(self) -> None:
            self.transport.write(ENV)

        def dataReceived(self, data: bytes) -> None:
            self.data += data
            if self.data == b"ANSWER\n":
                self.transport.write(b"200 result=0\n")

        def connectionLost(self, reason=None) -> None:
            self.closed.callback(None)

    peer = live_reactor.run(connectProtocol(TCP4ClientEndpoint(live_reactor.reactor, host, port), Peer()))
    live_reactor.run(peer.closed)
    assert peer.data == b"ANSWER\n" and servers == [True, True]
    live_reactor.settle(factory)


# --- one switch turns every fast path off ---------------------------------------------------------

def test_one_switch_turns_every_fast_path_off(monkeypatch):
    from autocall.agi import connection as agi_connection
    from autocall.agi import fastpaths

    def refused(*args, **kwargs):
        raise AssertionError("a fast path ran while the fast paths are off")
    monkeypatch.setattr(fastpaths, "enabled", False)
    for name in ("quick_reply", "quick_environment", "_environment_block"):
        monkeypatch.setattr(AgiConnection, name, refused)
    monkeypatch.setattr(agi_connection, "_CallTask", refused)
    replies = []

    async def on_call(connection):
        replies.append(await connection.request(agi.answer()))
        replies.append(await connection.request(agi.wait_for_digit(1000)))

    proto, transport = Harness(on_call).connect()
    assert proto._socket is None
    assert sent(transport) == [b"ANSWER"]
    proto.dataReceived(b"200 result=0\n")
    assert sent(transport) == [b"WAIT FOR DIGIT 1000"]
    proto.dataReceived(b"200 result=49\nHANGUP\n")
    assert [r.result for r in replies] == [0, 49] and proto.hung_up
    assert transport.disconnecting


def test_the_fast_state_changes_are_the_transition_table_s():
    table = agi._TRANSITIONS
    assert agi._AFTER_ENVIRONMENT is table[(State.ENVIRONMENT, agi.Environment)]
    assert agi._AFTER_SEND is table[(State.IDLE, agi._SEND)]
    assert agi._AFTER_REPLY is table[(State.AWAITING_REPLY, Response)]
    assert agi._AFTER_REPLY_AND_HANGUP is table[(agi._AFTER_REPLY, agi.HangupNotice)]
