"""The pure AGI protocol: tables of bytes and events from the Asterisk 22 transcripts, fed whole,
byte by byte and with trailing data; command serialisation; errors that say whose fault they are;
hypothesis round trips."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autocall.agi import protocol as agi
from autocall.agi.protocol import (
    HANGUP_NOTICE,
    AgiConnection,
    Command,
    Environment,
    LocalProtocolError,
    NeedData,
    RemoteProtocolError,
    Response,
    State,
    UsageError,
    parse_command_line,
)

TRANSCRIPT = Path(__file__).parent / "transcripts" / "agi-probe-session.log"
_LINE = re.compile(r"^\[\s*[\d.]+\] #\d+ (<<|>>) ('.*')$")


def transcript_sessions() -> list[list[tuple[str, str]]]:
    """Each connection of agi-probe-session.log as [(direction, line-with-newline)], verbatim."""
    sessions: list[list[tuple[str, str]]] = []
    for raw in TRANSCRIPT.read_text().splitlines():
        if "connection from" in raw:
            sessions.append([])
        match = _LINE.match(raw)
        if match and sessions:
            sessions[-1].append((match.group(1), ast.literal_eval(match.group(2))))
    return sessions


SESSIONS = transcript_sessions()
ENV_BLOCK = "".join(line for _, line in SESSIONS[0][:23]).encode()


def events_of(conn: AgiConnection) -> list:
    found = []
    while (event := conn.next_event()) is not NeedData:
        found.append(event)
    return found


def feed(conn: AgiConnection, data: bytes, how: str) -> list:
    """Feed ``data`` whole or byte by byte; collect every event."""
    if how == "whole":
        conn.receive_data(data)
        return events_of(conn)
    found = []
    for index in range(len(data)):
        conn.receive_data(data[index:index + 1])
        found.extend(events_of(conn))
    return found


def ready(**kwargs) -> AgiConnection:
    """A connection past the environment."""
    conn = AgiConnection(**kwargs)
    conn.receive_data(ENV_BLOCK)
    assert isinstance(conn.next_event(), Environment)
    return conn


HOW = ["whole", "bytewise"]


# --- the environment -------------------------------------------------------------

@pytest.mark.parametrize("how", HOW)
def test_environment_block_from_the_transcript_parses_every_field(how):
    conn = AgiConnection()
    [env] = feed(conn, ENV_BLOCK, how)
    assert len(env.fields) == 22
    assert env.fields["agi_accountcode"] == ""          # 'agi_accountcode: \n'
    assert env.fields["agi_channel"] == "Local/s@ivr-00000000;2"
    assert (env.script, env.callerid, env.calleridname, env.uniqueid) == ("probe", "5550100", "Probe", "1795685563.1")
    assert env.extension == "s" and env.context == "ivr" and env.language == "en" and env.dnid == "unknown"
    assert env.args == [] and env.query == {}
    assert conn.state is State.IDLE


def test_environment_with_query_string_and_agi_arguments():
    session = next(s for s in SESSIONS if ("<<", "agi_network_script: digits?lang=de&x=1\n") in s)
    block = b"".join(line.encode() for d, line in session if d == "<<")
    conn = AgiConnection()
    conn.receive_data(block.split(b"\n\n")[0] + b"\n\n")
    env = conn.next_event()
    assert env.network_script == "digits?lang=de&x=1"
    assert env.script == "digits" and env.safe_script == "digits"
    assert env.query == {"lang": "de", "x": "1"}
    assert env.args == ["5551234"] and env.get("arg_1") == env.get("agi_arg_1") == "5551234"
    assert env.extension == "5551234"


def test_environment_args_are_ordered_numerically():
    env = Environment({"agi_arg_10": "j", "agi_arg_2": "b", "agi_arg_1": "a"})
    assert env.args == ["a", "b", "j"]


@pytest.mark.parametrize(("script", "safe"), [
    ("support", "support"),
    ("sales/main?company=Acme", "sales/main"),
    ("../etc/passwd", None),
    ("a/../../b", None),
    ("%2e%2e/secret", None),                 # percent-encoded ..
    ("/etc/passwd", None),                   # agi://host//etc/passwd
    ("a//b", None),
    ("./x", None),
    ("a\\..\\b", None),
    ("", None),
    ("?x=1", None),
    ("nul\x00byte", None),
])
def test_safe_script_refuses_names_that_escape_the_scripts_folder(script, safe):
    assert Environment({"agi_network_script": script}).safe_script == safe


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"hello\n",
    b"200 result=0\n",
    b"HANGUP\n",
    b"agi network: yes\n",
    b"\n",                                     # an empty environment
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",   # a TLS hello
])
def test_garbage_instead_of_an_environment_is_the_peers_fault(garbage):
    conn = AgiConnection()
    conn.receive_data(garbage)
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    assert conn.state is State.ERROR
    with pytest.raises(RemoteProtocolError, match="already failed"):
        conn.next_event()


def test_crlf_line_endings_are_tolerated():
    conn = AgiConnection()
    conn.receive_data(ENV_BLOCK.replace(b"\n", b"\r\n"))
    env = conn.next_event()
    assert env.fields["agi_network_script"] == "probe"


# --- replies: a table from the transcripts (and res_agi.c for RECORD FILE) -------

TIMEOUT = "timeout"
REPLIES = [
    # agi-probe-session.log
    ("ANSWER", b"200 result=0\n", Response(200, 0, None, None, "0")),
    ('STREAM FILE probe-1s "1234"', b"200 result=0 endpos=8000\n", Response(200, 0, None, 8000, "0")),
    ('STREAM FILE probe-4s "0123456789*#"', b"200 result=51 endpos=13600\n", Response(200, 51, None, 13600, "51")),
    ('STREAM FILE no-such-file "1"', b"200 result=-1 endpos=0\n", Response(200, -1, None, 0, "-1")),
    ('STREAM FILE probe-4s ""', b"200 result=-1 endpos=12000\n", Response(200, -1, None, 12000, "-1")),
    ("WAIT FOR DIGIT 5000", b"200 result=53\n", Response(200, 53, None, None, "53")),
    ("WAIT FOR DIGIT 10000", b"200 result=-1\n", Response(200, -1, None, None, "-1")),
    ("GET DATA probe-1s 5000 4", b"200 result=1234\n", Response(200, 1234, None, None, "1234")),
    ("GET DATA probe-1s 2000 4", b"200 result= (timeout)\n", Response(200, None, TIMEOUT, None, "")),
    ("GET DATA probe-4s 3000 3", b"200 result=98 (timeout)\n", Response(200, 98, TIMEOUT, None, "98")),
    ("SET VARIABLE RESULT ok", b"200 result=1\n", Response(200, 1, None, None, "1")),
    ("GET VARIABLE RESULT", b"200 result=1 (ok)\n", Response(200, 1, "ok", None, "1")),
    ("GET VARIABLE NOSUCHVAR", b"200 result=0\n", Response(200, 0, None, None, "0")),
    ("GET FULL VARIABLE ${CHANNEL}", b"200 result=1 (Local/s@ivr-00000001;2)\n",
     Response(200, 1, "Local/s@ivr-00000001;2", None, "1")),
    ("EXEC NoSuchApp x", b"200 result=-2\n", Response(200, -2, None, None, "-2")),
    ("FOO BAR", b"510 Invalid or unknown command\n", Response(510, None, "Invalid or unknown command")),
    ("HANGUP", b"511 Command Not Permitted on a dead channel or intercept routine\n",
     Response(511, None, "Command Not Permitted on a dead channel or intercept routine")),
    ("SET VARIABLE\n", b"520-Invalid command syntax.  Proper usage follows:\n"
                       b"Sets a variable to the current channel.\n520 End of proper usage.\n",
     UsageError(("Sets a variable to the current channel.",))),
    ("STREAM FILE", b"520-Invalid command syntax.  Proper usage follows:\n"
                    b"It sets the following channel variables upon completion:\n"
                    b"    <value>SUCCESS</value>\n"
                    b"200 result=0\n"                    # a usage line that looks like a reply is still usage
                    b"HANGUP\n"
                    b"520 End of proper usage.\n",
     UsageError(("It sets the following channel variables upon completion:", "    <value>SUCCESS</value>",
                 "200 result=0", "HANGUP"))),
    ("OLD", b"520 Invalid command syntax.  Proper usage not available.\n", UsageError(())),
    # RECORD FILE's forms in res_agi.c
    ("RECORD FILE x wav \"#\" 5000", b"200 result=35 (dtmf) endpos=16000\n", Response(200, 35, "dtmf", 16000, "35")),
    ("RECORD FILE x wav \"#\" 5000", b"200 result=0 (timeout) endpos=8000\n", Response(200, 0, TIMEOUT, 8000, "0")),
    ("RECORD FILE x wav \"#\" 5000", b"200 result=-1 (hangup) endpos=800\n", Response(200, -1, "hangup", 800, "-1")),
    ("RECORD FILE x wav \"#\" 5000", b"200 result=-1 (writefile)\n", Response(200, -1, "writefile", None, "-1")),
    # variable values with spaces and parentheses
    ("GET VARIABLE X", b"200 result=1 (a (b) c)\n", Response(200, 1, "a (b) c", None, "1")),
    ("GET VARIABLE X", b"200 result=1 ()\n", Response(200, 1, "", None, "1")),
    ("GET DATA f", b"200 result=0123 (timeout)\n", Response(200, 123, TIMEOUT, None, "0123")),
    ("GET DATA f", b"200 result=1*2\n", Response(200, None, None, None, "1*2")),
]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(("command", "data", "expected"), REPLIES, ids=[r[1][:30].decode() for r in REPLIES])
def test_reply_table(command, data, expected, how):
    conn = ready()
    conn.send(Command.raw(command.strip()))
    assert feed(conn, data, how) == [expected]
    assert conn.state is State.IDLE


@pytest.mark.parametrize(("command", "data", "expected"), REPLIES, ids=[r[1][:30].decode() for r in REPLIES])
def test_reply_table_with_trailing_data(command, data, expected):
    """A reply followed by the start of the next line: the event now, the rest waits."""
    conn = ready()
    conn.send(Command.raw(command.strip()))
    conn.receive_data(data + b"HANG")
    assert conn.next_event() == expected
    assert conn.next_event() is NeedData
    conn.receive_data(b"UP\n")
    assert conn.next_event() is HANGUP_NOTICE


def test_raw_keeps_the_line_and_timeout_flag():
    conn = ready()
    conn.send(agi.get_data("f", 2000, 4))
    conn.receive_data(b"200 result= (timeout)\r\n")
    reply = conn.next_event()
    assert reply.raw == "200 result= (timeout)" and reply.timeout and reply.result is None


@pytest.mark.parametrize("session", range(len(SESSIONS)), ids=lambda i: f"session{i}")
@pytest.mark.parametrize("how", HOW)
def test_every_transcript_session_replays_without_error(session, how):
    """Each connection of agi-probe-session.log: one reply event per command, HANGUP lines as notices."""
    conn = AgiConnection()
    events, commands, hangups, pending = [], 0, 0, b""
    for direction, line in SESSIONS[session]:
        if direction == ">>":
            events += feed(conn, pending, how)
            pending = b""
            conn.send(Command.raw(line.rstrip("\n")))
            commands += 1
        else:
            pending += line.encode()
            hangups += line == "HANGUP\n"
    events += feed(conn, pending, how)
    assert isinstance(events[0], Environment)
    assert sum(isinstance(e, (Response, UsageError)) for e in events) == commands - _unanswered(session)
    assert sum(e is HANGUP_NOTICE for e in events) == hangups


def _unanswered(session: int) -> int:
    """1 when Asterisk closed without answering the last command (AGIEXITONHANGUP: HANGUP, HANGUP, EOF)."""
    lines = SESSIONS[session]
    last_command = max(i for i, (direction, _) in enumerate(lines) if direction == ">>")
    return 0 if any(line != "HANGUP\n" for _, line in lines[last_command + 1:]) else 1


def test_unprompted_hangup_is_never_a_reply():
    """#7776: SET VARIABLE sent, then 'HANGUP', then its '200 result=1'."""
    conn = ready()
    conn.send(agi.set_variable("RESULT", "ok"))
    conn.receive_data(b"HANGUP\n")
    assert conn.next_event() is HANGUP_NOTICE
    assert conn.state is State.AWAITING_REPLY
    conn.receive_data(b"200 result=1\n")
    assert conn.next_event() == Response(200, 1, None, None, "1")


def test_hangup_notice_while_idle_leaves_the_connection_idle():
    conn = ready()
    conn.receive_data(b"HANGUP\n")
    assert conn.next_event() is HANGUP_NOTICE
    assert conn.state is State.IDLE
    conn.send(agi.noop())


@pytest.mark.parametrize("data", [
    b"200 result=0\n",                        # a reply to no command
    b"520-Invalid command syntax.\n",
])
def test_reply_with_no_command_outstanding_is_the_peers_fault(data):
    conn = ready()
    conn.receive_data(data)
    with pytest.raises(RemoteProtocolError, match="reply to no command"):
        conn.next_event()


@pytest.mark.parametrize("line", [
    b"200 result=1 (unclosed\n",
    b"200 result=1 endpos=abc\n",
    b"200 result=1 trailing words\n",
    b"200 ok\n",
    b"OK\n",
    b"\n",
    b"2000 result=0\n",
])
def test_garbage_replies_are_the_peers_fault(line):
    conn = ready()
    conn.send(agi.answer())
    conn.receive_data(line)
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_an_endless_line_is_refused_before_it_ends():
    conn = AgiConnection(max_line_length=100)
    conn.receive_data(b"agi_network: " + b"y" * 50)
    assert conn.next_event() is NeedData
    conn.receive_data(b"y" * 60)
    with pytest.raises(RemoteProtocolError, match="longer than 100 bytes"):
        conn.next_event()


def test_a_complete_line_over_the_limit_is_refused():
    conn = AgiConnection(max_line_length=100)
    conn.receive_data(b"agi_x: " + b"y" * 200 + b"\n\n")
    with pytest.raises(RemoteProtocolError, match="longer than 100 bytes"):
        conn.next_event()


def test_an_endless_usage_reply_is_refused():
    conn = ready()
    conn.send(agi.answer())
    conn.receive_data(b"520-Invalid command syntax.\n" + b"usage\n" * (agi.MAX_USAGE_LINES + 1))
    with pytest.raises(RemoteProtocolError, match="520"):
        conn.next_event()


# --- sending ----------------------------------------------------------------------

def test_sending_before_the_environment_is_our_fault():
    with pytest.raises(LocalProtocolError, match="reading the environment"):
        AgiConnection().send(agi.answer())


def test_sending_two_commands_at_once_is_our_fault():
    conn = ready()
    conn.send(agi.answer())
    with pytest.raises(LocalProtocolError, match="one command at a time"):
        conn.send(agi.noop())


def test_sending_during_a_usage_reply_is_our_fault():
    conn = ready()
    conn.send(agi.answer())
    conn.receive_data(b"520-Invalid command syntax.  Proper usage follows:\nusage\n")
    assert conn.next_event() is NeedData
    with pytest.raises(LocalProtocolError):
        conn.send(agi.noop())


COMMANDS = [
    # the lines of agi-probe-session.log, rebuilt with the builders
    (agi.answer(), "ANSWER"),
    (agi.stream_file("probe-1s", "1234"), 'STREAM FILE probe-1s "1234"'),
    (agi.stream_file("probe-1s"), 'STREAM FILE probe-1s ""'),
    (agi.stream_file("probe-4s", "0123456789*#"), 'STREAM FILE probe-4s "0123456789*#"'),
    (agi.wait_for_digit(5000), "WAIT FOR DIGIT 5000"),
    (agi.get_data("probe-1s", 5000, 4), "GET DATA probe-1s 5000 4"),
    (agi.set_variable("RESULT", "ok"), "SET VARIABLE RESULT ok"),
    (agi.get_variable("RESULT"), "GET VARIABLE RESULT"),
    (agi.get_full_variable("${CHANNEL}"), "GET FULL VARIABLE ${CHANNEL}"),
    (agi.noop("hello"), "NOOP hello"),
    (agi.verbose("probe says hi", 1), 'VERBOSE "probe says hi" 1'),
    (agi.exec_app("Wait", "0.5"), "EXEC Wait 0.5"),
    (agi.exec_app("NoSuchApp", "x"), "EXEC NoSuchApp x"),
    (agi.hangup(), "HANGUP"),
    (agi.channel_status(), "CHANNEL STATUS"),
    # the rest of what the channel sends
    (agi.wait_for_digit(-1), "WAIT FOR DIGIT -1"),
    (agi.get_data("f"), "GET DATA f"),
    (agi.record_file("/rec/1-msg", "wav", "#", 60000, True, 5), 'RECORD FILE /rec/1-msg wav "#" 60000 BEEP s=5'),
    (agi.record_file("/rec/1-msg", "wav", "", -1), 'RECORD FILE /rec/1-msg wav "" -1'),
    (agi.record_file("/my rec/x", "wav", "", 1000, silence_s=2), 'RECORD FILE "/my rec/x" wav "" 1000 s=2'),
    (agi.exec_app("Dial", "PJSIP/101,25"), "EXEC Dial PJSIP/101,25"),
    (agi.set_variable("CALLERID(all)", '"Acme" <5551234>'), r'SET VARIABLE CALLERID(all) "\"Acme\" <5551234>"'),
    (agi.set_variable("X", ""), 'SET VARIABLE X ""'),
    (agi.set_variable("X", "back\\slash"), r'SET VARIABLE X "back\\slash"'),
    (agi.stream_file("with space", "1"), 'STREAM FILE "with space" "1"'),
    (agi.get_full_variable("${X}", "PJSIP/1"), "GET FULL VARIABLE ${X} PJSIP/1"),
    (agi.hangup("PJSIP/1"), "HANGUP PJSIP/1"),
]


@pytest.mark.parametrize(("command", "line"), COMMANDS, ids=[c[1] for c in COMMANDS])
def test_command_serialisation_table(command, line):
    conn = ready()
    assert conn.send(command) == line.encode() + b"\n"
    assert command.line == line


MALFORMED = {
    "escape digits not DTMF": lambda: agi.stream_file("f", "12a"),
    "empty file name": lambda: agi.stream_file("", "1"),
    "line break in a name": lambda: agi.stream_file("two\nlines"),
    "timeout below -1": lambda: agi.wait_for_digit(-2),
    "timeout not whole": lambda: agi.wait_for_digit(1.5),
    "timeout a bool": lambda: agi.wait_for_digit(True),
    "terminator not DTMF": lambda: agi.record_file("f", "wav", "x", 1000),
    "negative silence": lambda: agi.record_file("f", "wav", "", 1000, silence_s=-1),
    "application with spaces": lambda: agi.exec_app("Dial; Hangup", "x"),
    "empty application": lambda: agi.exec_app("", "x"),
    "empty variable name": lambda: agi.set_variable("", "v"),
    "carriage return in a value": lambda: agi.set_variable("X", "a\rb"),
    "value not a string": lambda: agi.set_variable("X", 3),
    "verbose level": lambda: agi.verbose("x", 9),
    "NUL": lambda: agi.noop("nul\x00"),
    "longer than Asterisk reads": lambda: agi.set_variable("X", "v" * agi.MAX_COMMAND_BYTES),
    "more words than Asterisk splits": lambda: Command.build("NOOP", *["a"] * agi.MAX_COMMAND_WORDS),
}


@pytest.mark.parametrize("build", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_commands_are_our_fault(build):
    with pytest.raises(LocalProtocolError):
        build()


@pytest.mark.parametrize(("line", "words"), [
    ('STREAM FILE probe-1s "1234"', ["STREAM", "FILE", "probe-1s", "1234"]),
    ('STREAM FILE probe-1s ""', ["STREAM", "FILE", "probe-1s", ""]),
    ('VERBOSE "probe says hi" 1', ["VERBOSE", "probe says hi", "1"]),
    ("a\tb  c", ["a", "b", "c"]),
    ('a"b c"d', ["ab cd"]),
    (r'x "\"q\"" \\', ["x", '"q"', "\\"]),
    ("", []),
    ("  lead", ["lead"]),
])
def test_parse_command_line_follows_asterisks_parse_args(line, words):
    assert parse_command_line(line) == words


# --- hypothesis round trips ------------------------------------------------------

argument = st.text(st.characters(blacklist_characters="\n\r\x00", blacklist_categories=("Cs",)), max_size=20)
digits = st.text(alphabet="0123456789*#", max_size=12)


@given(st.lists(argument, max_size=6))
def test_any_arguments_survive_asterisks_parser(args):
    command = Command.build("NOOP", *args)
    assert parse_command_line(command.line) == ["NOOP", *args]


@given(name=argument.filter(bool), keys=digits, value=argument, ms=st.integers(-1, 10**7))
def test_builders_round_trip(name, keys, value, ms):
    assert parse_command_line(agi.stream_file(name, keys).line) == ["STREAM", "FILE", name, keys]
    assert parse_command_line(agi.set_variable(name, value).line) == ["SET", "VARIABLE", name, value]
    assert parse_command_line(agi.record_file(name, "wav", keys, ms, True, 3).line) == [
        "RECORD", "FILE", name, "wav", keys, str(ms), "BEEP", "s=3"]
    assert parse_command_line(agi.exec_app("Dial", value).line)[2:] == ([value] if value else [])


data_text = st.text(st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=30)
responses = st.one_of(
    st.builds(Response.ok, st.integers(-2, 10**6), st.none() | data_text, st.none() | st.integers(0, 10**9)),
    st.builds(Response.ok, st.text(alphabet="0123456789*", max_size=8), st.none() | data_text),
    st.builds(Response, st.sampled_from([510, 511]), st.none(), data_text.filter(lambda s: s == s.lstrip())),
)
usage_replies = st.builds(UsageError, st.lists(data_text.filter(lambda s: not s.startswith("520 ")),
                                               min_size=1, max_size=4).map(tuple))
environments = st.dictionaries(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12).map(lambda k: "agi_" + k),
    data_text, min_size=1, max_size=8).map(Environment)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


@settings(max_examples=200)
@given(environments, st.lists(st.one_of(responses, usage_replies)), st.lists(st.integers(0, 10**6), max_size=12))
def test_any_conversation_round_trips_however_it_is_split(environment, replies, cuts):
    """Serialise an environment and replies as Asterisk would, cut anywhere: the same events come back."""
    data = environment.to_bytes() + b"".join(reply.to_bytes() for reply in replies)
    conn = AgiConnection()
    events = []
    for piece in chunked(data, cuts):
        conn.receive_data(piece)
        while (event := conn.next_event()) is not NeedData:
            events.append(event)
            if len(events) <= len(replies):
                conn.send(agi.noop())
    assert events == [environment, *replies]


@given(responses)
def test_response_raw_is_the_line(response):
    conn = ready()
    conn.send(agi.noop())
    conn.receive_data(response.to_bytes())
    assert conn.next_event().raw.encode() + b"\n" == response.to_bytes()
