"""The pure AMI protocol: tables of bytes and typed messages, fed whole, byte by byte and with trailing data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autocall.ami import protocol as ami
from autocall.ami.protocol import (Action, AmiConnection, Banner, ConnectionClosed, Event, Fields,
                                   LocalProtocolError, NeedData, RemoteProtocolError, Response)
from ami_helpers import (load_transcript, parse_bytewise, parse_chunks, parse_whole, drain, transcript_paths,
                         transcripts_or_skip)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def expected_from_lines(lines: list[str]) -> tuple[str, list[tuple[str, str]]]:
    """What a transcript message must parse to, read independently from its text lines."""
    pairs = [(line.split(":", 1)[0], line.split(":", 1)[1][1:]) for line in lines]
    return pairs[0][0], pairs


# -- tables from the captured transcripts ------------------------------------------------------------------
@pytest.mark.parametrize("path", transcript_paths(), ids=lambda p: p.stem)
@pytest.mark.parametrize("feed", ["whole", "bytewise", "trailing"])
def test_transcript_stream_parses_to_one_typed_message_per_entry(path, feed):
    """Every message Asterisk sent in a transcript comes out once, typed by its first line, all lines kept."""
    transcript = load_transcript(path)
    stream = transcript.stream
    if feed == "whole":
        items = parse_whole(stream)
    elif feed == "bytewise":
        items = parse_bytewise(stream)
    else:
        connection = AmiConnection()
        connection.receive_data(stream + b"Event: Newchannel\r\nPrivilege: call,all\r\nChann")
        items = drain(connection)
        assert connection.next_event() is NeedData
    assert items[0] == Banner(version="11.0.0", text="Asterisk Call Manager/11.0.0")
    assert len(items) == len(transcript.received)
    for item, lines in zip(items[1:], transcript.received_lines[1:]):
        kind, pairs = expected_from_lines(lines)
        assert isinstance(item, Event if kind == "Event" else Response)
        assert item.fields.pairs == tuple(pairs)
        assert item.action_id == dict(pairs).get("ActionID")


def test_transcripts_are_present():
    transcripts_or_skip()


def test_originate_response_is_an_event_even_though_it_carries_response_and_actionid():
    """The trap of async Originate (panoramisk #37/#88): OriginateResponse must not pass for the reply."""
    transcript = load_transcript(next(p for p in transcripts_or_skip() if p.stem == "ami-fail-local"))
    items = parse_whole(transcript.stream)
    replies = [i for i in items if isinstance(i, Response) and i.action_id == "orig-1"]
    events = [i for i in items if isinstance(i, Event) and i.name == "OriginateResponse"]
    assert [r.message for r in replies] == ["Originate successfully queued"]
    assert len(events) == 1
    event = events[0]
    assert (event.action_id, event.fields["Response"], event.fields["Reason"], event.fields["Uniqueid"],
            event.fields["Channel"]) == ("orig-1", "Failure", "0", "<unknown>", "Local/nonexistent@nowhere")


def test_empty_values_and_keys_with_dashes_survive():
    items = parse_whole(BANNER + b"Event: Hangup\r\nAccountCode: \r\nCause-txt: Normal Clearing\r\n\r\n")
    assert items[1].fields.pairs == (("Event", "Hangup"), ("AccountCode", ""), ("Cause-txt", "Normal Clearing"))


# -- hand tables for what the transcripts do not show (manager.c formats) ----------------------------------
PING_REPLY = b"Response: Success\r\nActionID: p-1\r\nPing: Pong\r\nTimestamp: 1795685579.123456\r\n\r\n"
LOGIN_REFUSED = b"Response: Error\r\nActionID: login-1\r\nMessage: Authentication failed\r\n\r\n"
LEGACY_FOLLOWS = (b"Response: Follows\r\nPrivilege: Command\r\nActionID: c-1\r\n"
                  b"Channel              Location             State   Application(Data)\n"
                  b"\n"
                  b"0 active channels\n"
                  b"--END COMMAND--\r\n\r\n")
FOLLOWS_SAME_LINE = b"Response: Follows\r\nPrivilege: Command\r\nActionID: c-2\r\nNo such command 'x'--END COMMAND--\r\n\r\n"
MODERN_COMMAND = (b"Response: Success\r\nActionID: c-3\r\nMessage: Command output follows\r\n"
                  b"Output: Name/username  Host\r\nOutput: 0 sip peers\r\n\r\n")
EVENT_LIST = (b"Response: Success\r\nActionID: s-1\r\nEventList: start\r\nMessage: Channel status will follow\r\n\r\n"
              b"Event: Status\r\nPrivilege: Call\r\nActionID: s-1\r\nChannel: PJSIP/100-00000001\r\n\r\n"
              b"Event: StatusComplete\r\nActionID: s-1\r\nEventList: Complete\r\nListItems: 1\r\n\r\n")
ORIGINATE_VARIABLES = (b"Event: VarSet\r\nPrivilege: dialplan,all\r\nVariable: A\r\nVariable: B\r\nValue: x\r\n\r\n")

TABLE = [
    (PING_REPLY, [Response("p-1", "Success", None, Fields([("Response", "Success"), ("ActionID", "p-1"),
                                                           ("Ping", "Pong"), ("Timestamp", "1795685579.123456")]))]),
    (LOGIN_REFUSED, [Response("login-1", "Error", "Authentication failed",
                              Fields([("Response", "Error"), ("ActionID", "login-1"),
                                      ("Message", "Authentication failed")]))]),
    (LEGACY_FOLLOWS, [Response("c-1", "Follows", None,
                               Fields([("Response", "Follows"), ("Privilege", "Command"), ("ActionID", "c-1")]),
                               ("Channel              Location             State   Application(Data)", "",
                                "0 active channels"))]),
    (FOLLOWS_SAME_LINE, [Response("c-2", "Follows", None,
                                  Fields([("Response", "Follows"), ("Privilege", "Command"), ("ActionID", "c-2")]),
                                  ("No such command 'x'",))]),
    (MODERN_COMMAND, [Response("c-3", "Success", "Command output follows",
                               Fields([("Response", "Success"), ("ActionID", "c-3"),
                                       ("Message", "Command output follows"), ("Output", "Name/username  Host"),
                                       ("Output", "0 sip peers")]))]),
    (ORIGINATE_VARIABLES, [Event("VarSet", None, Fields([("Event", "VarSet"), ("Privilege", "dialplan,all"),
                                                        ("Variable", "A"), ("Variable", "B"), ("Value", "x")]))]),
]


@pytest.mark.parametrize("data,expected", TABLE, ids=["ping", "login-refused", "legacy-follows",
                                                      "follows-same-line", "command-output", "duplicate-keys"])
@pytest.mark.parametrize("feed", ["whole", "bytewise", "trailing"])
def test_message_table(data, expected, feed):
    stream = BANNER + data
    if feed == "whole":
        items = parse_whole(stream)
    elif feed == "bytewise":
        items = parse_bytewise(stream)
    else:
        items = parse_whole(stream + b"Event: Hangup\r\nChannel: PJSIP/1")
    assert items[1:] == expected


def test_keys_are_case_insensitive_but_keep_their_case():
    event = parse_whole(BANNER + b"Event: OriginateResponse\r\nActionID: a\r\nUniqueid: 1.2\r\n\r\n")[1]
    assert event.fields.get("uniqueID") == "1.2" and event.fields["ACTIONID"] == "a"
    assert [key for key, _ in event.fields] == ["Event", "ActionID", "Uniqueid"]
    assert "uniqueid" in event.fields and "Nope" not in event.fields
    assert event.fields.get_all("variable") == []


def test_event_list_collects_until_complete():
    items = parse_whole(BANNER + EVENT_LIST)
    response, status, complete = items[1:]
    assert response.starts_event_list
    collector = ami.EventListCollector(response)
    assert not collector.add(status)
    assert collector.add(complete)
    result = collector.result()
    assert result.events == (status,) and result.complete is complete and collector.done
    with pytest.raises(LocalProtocolError):
        collector.add(Event("Status", "other", Fields([("Event", "Status")])))


def test_blank_lines_between_messages_and_bare_lf_are_tolerated():
    items = parse_whole(BANNER + b"\r\n\r\nEvent: A\nX: 1\n\nResponse: Success\r\nActionID: 7\r\n\r\n")
    assert [type(i).__name__ for i in items] == ["Banner", "Event", "Response"]
    assert items[1].fields["X"] == "1" and items[2].action_id == "7"


def test_connection_closed_after_the_last_message():
    connection = AmiConnection()
    connection.receive_data(BANNER + PING_REPLY)
    connection.receive_data(b"")
    assert isinstance(connection.next_event(), Banner)
    assert isinstance(connection.next_event(), Response)
    assert connection.next_event() is ConnectionClosed


# -- the peer's faults --------------------------------------------------------------------------------------
@pytest.mark.parametrize("data,words", [
    (b"SSH-2.0-OpenSSH_9.6\r\n", "not an Asterisk Manager"),
    (BANNER + b"Hello there\r\n\r\n", "without any 'Key: Value'"),
    (BANNER + b"Foo: bar\r\n\r\n", "neither a Response nor an Event"),
])
def test_remote_protocol_errors_name_the_peers_fault(data, words):
    connection = AmiConnection()
    connection.receive_data(data)
    with pytest.raises(RemoteProtocolError, match=words):
        drain(connection)
    with pytest.raises(RemoteProtocolError):      # the error sticks: the conversation cannot go on
        connection.next_event()


def test_oversized_message_is_refused_before_it_is_complete():
    connection = AmiConnection(max_message_size=64)
    connection.receive_data(BANNER + b"Event: Flood\r\n" + b"X: " + b"y" * 100)
    assert isinstance(connection.next_event(), Banner)
    with pytest.raises(RemoteProtocolError, match="longer than 64 bytes"):
        connection.next_event()


def test_endless_banner_is_refused():
    connection = AmiConnection(max_message_size=32)
    connection.receive_data(b"x" * 40)
    with pytest.raises(RemoteProtocolError, match="banner"):
        connection.next_event()


def test_closed_in_the_middle_of_a_message():
    connection = AmiConnection()
    connection.receive_data(BANNER + b"Event: Hangup\r\nChannel: PJ")
    connection.receive_data(b"")
    connection.next_event()
    with pytest.raises(RemoteProtocolError, match="middle of a message"):
        connection.next_event()


# -- sending ---------------------------------------------------------------------------------------------------
def test_login_bytes_and_redacted_repr():
    action = ami.login("autocall", "hunter2", events="call", action_id="login-1")
    data = AmiConnection().send(action)
    assert data == (b"Action: Login\r\nActionID: login-1\r\nUsername: autocall\r\nSecret: hunter2\r\n"
                    b"Events: call\r\n\r\n")
    for text in (repr(action), str(action), f"{action}", repr([action]), repr(action.fields)):
        assert "hunter2" not in text and "***" in text


def test_login_key_of_md5_challenge_is_redacted_too():
    action = Action("Login", Fields([("AuthType", "md5"), ("Username", "u"), ("Key", "abcdef")]))
    assert "abcdef" not in repr(action)


def test_logoff_ping_events_bytes():
    connection = AmiConnection()
    assert connection.send(ami.logoff("x")) == b"Action: Logoff\r\nActionID: x\r\n\r\n"
    assert connection.send(ami.ping("p")) == b"Action: Ping\r\nActionID: p\r\n\r\n"
    assert connection.send(ami.events("call,agi", "e")) == b"Action: Events\r\nActionID: e\r\nEventMask: call,agi\r\n\r\n"
    assert connection.send(Action("Ping")) == b"Action: Ping\r\n\r\n"


@pytest.mark.parametrize("action,words", [
    (Action("Originate", Fields([("Channel", "PJSIP/1\r\nAction: Hangup")])), "line break"),
    (Action("Ping", Fields([("ActionID", "x")])), "ActionID is set by"),
    (Action("Ping", Fields([("Bad Key:", "x")])), "cannot be an AMI key"),
    (Action("Ping", Fields([("Data", "x" * 2000)])), "Asterisk drops"),
    (Action(""), "needs a name"),
])
def test_local_protocol_errors_refuse_what_ami_cannot_carry(action, words):
    with pytest.raises(LocalProtocolError, match=words):
        AmiConnection().send(action)


def test_originate_helper_needs_one_destination():
    with pytest.raises(LocalProtocolError, match="either"):
        ami.originate("PJSIP/1@t", context="c", exten="s", application="AGI")
    with pytest.raises(LocalProtocolError, match="either"):
        ami.originate("PJSIP/1@t")
    with pytest.raises(LocalProtocolError, match="channel"):
        ami.originate("nochannel", context="c", exten="s")
    with pytest.raises(LocalProtocolError, match="variable name"):
        ami.originate("PJSIP/1@t", context="c", exten="s", variables=[("A=B", "1")])
    with pytest.raises(LocalProtocolError, match="application"):
        ami.originate("PJSIP/1@t", context="c", exten="s", data="x")
    with pytest.raises(LocalProtocolError, match="timeout"):
        ami.originate("PJSIP/1@t", context="c", exten="s", timeout_ms=0)


def test_variable_values_are_escaped_for_asterisks_comma_split():
    action = ami.originate("PJSIP/1@t", context="c", exten="s", variables={"NAME": 'Smith, "J" \\ co'})
    assert action.fields.get_all("Variable") == ['NAME=Smith\\, \\"J\\" \\\\ co']


# -- hypothesis round trips --------------------------------------------------------------------------------------
keys = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="-_"),
               min_size=1, max_size=12)
values = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40)
pairs = st.lists(st.tuples(keys, values), max_size=8)


@given(name=keys, body=pairs)
@settings(max_examples=150, deadline=None)
def test_round_trip_event(name, body):
    body = [(k, v) for k, v in body if k.lower() not in ("event", "response")]
    all_pairs = [("Event", name)] + body
    data = BANNER + ami.encode_message(all_pairs)
    event = parse_whole(data)[1]
    assert isinstance(event, Event) and event.name == name
    assert event.fields.pairs == tuple(all_pairs)


@given(status=st.sampled_from(["Success", "Error", "Goodbye"]), body=pairs, cuts=st.lists(st.integers(0, 400)))
@settings(max_examples=150, deadline=None)
def test_round_trip_response_in_any_chunks(status, body, cuts):
    body = [(k, v) for k, v in body if k.lower() not in ("event", "response")]
    all_pairs = [("Response", status)] + body
    data = BANNER + ami.encode_message(all_pairs) + ami.encode_message([("Event", "Tail")])
    items = parse_chunks(data, [c for c in cuts if c < len(data)])
    assert items[1].fields.pairs == tuple(all_pairs) and items[1].status == status
    assert items[2].name == "Tail"


@given(name=keys, body=pairs, action_id=st.one_of(st.none(), keys))
@settings(max_examples=100, deadline=None)
def test_round_trip_action_serialisation(name, body, action_id):
    body = [(k, v) for k, v in body if k.lower() not in ("action", "actionid")]
    data = AmiConnection().send(Action(name, Fields(body), action_id))
    lines = data.decode().split("\r\n")
    assert lines[-2:] == ["", ""]
    parsed = [(line.split(":", 1)[0], line.split(":", 1)[1][1:]) for line in lines[:-2]]
    expected = [("Action", name)] + ([("ActionID", action_id)] if action_id is not None else []) + body
    assert parsed == expected


@given(st.text(max_size=30))
def test_escaped_variable_reaches_asterisk_unchanged(value):
    from tests.fakes.fake_ami import asterisk_split_args   # Asterisk's splitting, as the fake does it
    value = value.replace("\r", "").replace("\n", "")
    escaped = ami.escape_variable_value(value)
    assert asterisk_split_args("X=" + escaped) == ["X=" + value]
