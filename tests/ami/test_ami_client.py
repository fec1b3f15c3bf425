"""The Twisted AMI client against a scripted peer: StringTransport for the bytes, task.Clock for time."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import error
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from ami_helpers import (SECRET, FakeEndpoint, field_of, fired, load_transcript, log_in, make_client, message,
                         transcripts_or_skip)
from autocall.ami import protocol as ami
from autocall.ami.client import (AmiConnectionLost, AmiLoginError, AmiNotConnected, AmiUnreachable, Backoff,
                                 ClientState)
from autocall.ami.originate import OriginateOutcome, OriginateRequest
from autocall.errors import UserError

REQUEST = OriginateRequest(channel="PJSIP/100@trunk", context="autocall-outbound", exten="s", timeout_ms=30_000)


def ready_client(clock, endpoint, **options):
    client = make_client(clock, endpoint, **options)
    started = fired(client.start())
    log_in(endpoint.link)
    assert started == [None] and client.state is ClientState.READY
    endpoint.link.new_actions()
    return client


def originate_response(action_id: str, reason: str, response: str | None = None, channel: str = "PJSIP/100-01",
                       uniqueid: str | None = None) -> bytes:
    response = response or ("Success" if reason == "4" else "Failure")
    uniqueid = uniqueid or ("1795685579.2" if reason == "4" else "<unknown>")
    return message(("Event", "OriginateResponse"), ("Privilege", "call,all"), ("ActionID", action_id),
                   ("Response", response), ("Channel", channel), ("Context", "autocall-outbound"), ("Exten", "s"),
                   ("Reason", reason), ("Uniqueid", uniqueid), ("CallerIDNum", "<unknown>"),
                   ("CallerIDName", "<unknown>"))


def queued(action_id: str) -> bytes:
    return message(("Response", "Success"), ("ActionID", action_id), ("Message", "Originate successfully queued"))


NOISE = message(("Event", "Newchannel"), ("Privilege", "call,all"), ("Channel", "PJSIP/100-01"),
                ("Uniqueid", "1795685579.2"))


# -- logging in ------------------------------------------------------------------------------------------
def test_login_sends_username_secret_and_an_events_filter(clock, endpoint):
    client = make_client(clock, endpoint)
    started = fired(client.start())
    assert client.state is ClientState.LOGGING_IN
    endpoint.link.say(b"Asterisk Call Manager/11.0.0\r\n")
    login = endpoint.link.new_actions()[0]
    assert [key for key, _ in login] == ["Action", "ActionID", "Username", "Secret", "Events"]
    assert (field_of(login, "Username"), field_of(login, "Secret"), field_of(login, "Events")) == (
        "autocall", SECRET, "call")
    assert started == []
    endpoint.link.say(message(("Response", "Success"), ("ActionID", field_of(login, "ActionID")),
                              ("Message", "Authentication accepted")))
    assert started == [None] and client.ready and client.banner.version == "11.0.0"
    assert fired(client.when_ready()) == [None]


def test_events_filter_must_let_originate_response_through(clock, endpoint):
    with pytest.raises(ValueError, match="call"):
        make_client(clock, endpoint, events="agi,dtmf")
    make_client(clock, endpoint, events="on")
    make_client(clock, endpoint, events="call,user")


def test_login_refused_is_one_line_naming_user_and_host_and_never_retried(clock, endpoint, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(clock, endpoint)
    started = fired(client.start())
    endpoint.link.say(b"Asterisk Call Manager/11.0.0\r\n")
    login = endpoint.link.new_actions()[0]
    endpoint.link.say(message(("Response", "Error"), ("ActionID", field_of(login, "ActionID")),
                              ("Message", "Authentication failed")))
    failure = started[0]
    assert isinstance(failure, Failure) and failure.check(AmiLoginError)
    text = str(failure.value)
    assert isinstance(failure.value, UserError)
    assert "\n" not in text and "'autocall'" in text and "pbx.example:5038" in text
    assert "Authentication failed" in text and SECRET not in text
    assert client.state is ClientState.FAILED and endpoint.link.dropped
    clock.advance(3600)
    assert len(endpoint.attempts) == 1, "a refused login is not retried"
    assert fired(client.when_ready())[0].check(AmiLoginError)
    assert SECRET not in caplog.text


def test_unreachable_host_is_one_line_and_fails_fast(clock, endpoint):
    endpoint.refusing = True
    client = make_client(clock, endpoint)
    failure = fired(client.start())[0]
    assert failure.check(AmiUnreachable) and isinstance(failure.value, UserError)
    text = str(failure.value)
    assert "\n" not in text and "pbx.example:5038" in text and "refused" in text
    clock.advance(3600)
    assert len(endpoint.attempts) == 1 and client.state is ClientState.FAILED


def test_peer_that_is_not_ami_is_reported_as_such(clock, endpoint):
    client = make_client(clock, endpoint)
    started = fired(client.start())
    endpoint.link.say(b"SSH-2.0-OpenSSH_9.6\r\n")
    assert endpoint.link.dropped
    endpoint.link.close()
    failure = started[0]
    assert failure.check(AmiUnreachable) and "does not speak AMI" in str(failure.value)


def test_silent_peer_times_out_during_login(clock, endpoint):
    client = make_client(clock, endpoint, login_timeout_ms=3_000)
    started = fired(client.start())
    clock.advance(3)
    assert endpoint.link.dropped
    endpoint.link.close(error.ConnectionAborted())
    assert started[0].check(AmiUnreachable) and "no banner or login reply within 3 s" in str(started[0].value)


def test_closed_during_login(clock, endpoint):
    client = make_client(clock, endpoint)
    started = fired(client.start())
    endpoint.link.say(b"Asterisk Call Manager/11.0.0\r\n")
    endpoint.link.close()
    assert started[0].check(AmiUnreachable) and "during the login" in str(started[0].value)


def test_secret_never_in_logs_reprs_or_errors(clock, endpoint, caplog):
    caplog.set_level(logging.DEBUG)
    client = ready_client(clock, endpoint)
    assert SECRET not in repr(client) and SECRET not in str(vars(client))
    endpoint.link.close(error.ConnectionLost())
    clock.advance(1)
    log_in(endpoint.link)
    client.stop()
    assert SECRET not in caplog.text
    for record in caplog.records:
        assert SECRET not in str(record.args)


# -- actions -------------------------------------------------------------------------------------------------
def test_send_action_matches_by_actionid_among_events_and_other_replies(clock, endpoint):
    client = ready_client(clock, endpoint)
    first = fired(client.send_action(ami.Action("Command", ami.Fields([("Command", "core show uptime")]))))
    second = fired(client.send_action(ami.ping()))
    sent = endpoint.link.new_actions()
    first_id, second_id = field_of(sent[0], "ActionID"), field_of(sent[1], "ActionID")
    assert first_id != second_id and first_id.startswith("t-")
    endpoint.link.say(NOISE + message(("Response", "Success"), ("ActionID", "someone-else"), ("Ping", "Pong"))
                      + message(("Response", "Success"), ("ActionID", second_id), ("Ping", "Pong")) + NOISE)
    assert first == [] and second[0].fields["Ping"] == "Pong"
    endpoint.link.say(message(("Response", "Error"), ("ActionID", first_id), ("Message", "Permission denied")))
    assert first[0].status == "Error" and first[0].message == "Permission denied"


def test_send_action_keeps_a_given_actionid_and_refuses_a_duplicate(clock, endpoint):
    client = ready_client(clock, endpoint)
    fired(client.send_action(ami.ping("mine")))
    assert field_of(endpoint.link.new_actions()[0], "ActionID") == "mine"
    with pytest.raises(ami.LocalProtocolError):
        client.send_action(ami.ping("mine"))


def test_list_action_collects_its_events(clock, endpoint):
    client = ready_client(clock, endpoint)
    result = fired(client.send_list_action(ami.Action("Status")))
    action_id = field_of(endpoint.link.new_actions()[0], "ActionID")
    endpoint.link.say(message(("Response", "Success"), ("ActionID", action_id), ("EventList", "start"),
                              ("Message", "Channel status will follow")))
    endpoint.link.say(message(("Event", "Status"), ("ActionID", action_id), ("Channel", "PJSIP/1")) + NOISE
                      + message(("Event", "Status"), ("ActionID", action_id), ("Channel", "PJSIP/2")))
    assert result == []
    endpoint.link.say(message(("Event", "StatusComplete"), ("ActionID", action_id), ("EventList", "Complete"),
                              ("ListItems", "2")))
    events = result[0]
    assert [e.fields["Channel"] for e in events.events] == ["PJSIP/1", "PJSIP/2"]
    assert events.complete.name == "StatusComplete"


def test_list_action_refused_fires_with_no_events(clock, endpoint):
    client = ready_client(clock, endpoint)
    result = fired(client.send_list_action(ami.Action("Status")))
    action_id = field_of(endpoint.link.new_actions()[0], "ActionID")
    endpoint.link.say(message(("Response", "Error"), ("ActionID", action_id), ("Message", "Permission denied")))
    assert result[0].events == () and not result[0].response.ok


def test_not_logged_in_fails_at_once_and_sends_nothing(clock, endpoint):
    client = make_client(clock, endpoint)
    assert fired(client.send_action(ami.ping()))[0].check(AmiNotConnected)
    assert fired(client.originate(REQUEST))[0].check(AmiNotConnected)
    assert endpoint.attempts == []


def test_event_subscribers_get_every_event_and_one_faulty_one_harms_nobody(clock, endpoint, caplog):
    client = ready_client(clock, endpoint)
    seen = []

    def broken(event):
        raise RuntimeError("bug in a subscriber")

    client.on_event(broken)
    unsubscribe = client.on_event(lambda event: seen.append(event.name))
    endpoint.link.say(NOISE + originate_response("elsewhere", "4") + NOISE)
    assert seen == ["Newchannel", "OriginateResponse", "Newchannel"]
    assert "bug in a subscriber" in caplog.text
    unsubscribe()
    endpoint.link.say(NOISE)
    assert len(seen) == 3 and client.ready


# -- originate --------------------------------------------------------------------------------------------------
def test_originate_sends_async_originate_with_a_fresh_actionid(clock, endpoint):
    client = ready_client(clock, endpoint)
    client.originate(REQUEST)
    client.originate(REQUEST)
    first, second = endpoint.link.new_actions()
    assert field_of(first, "Action") == "Originate" and field_of(first, "Async") == "true"
    assert field_of(first, "ActionID") != field_of(second, "ActionID")


@pytest.mark.parametrize("order", ["queued-first", "event-first"])
def test_originate_fires_once_with_the_event_whichever_comes_first(clock, endpoint, order):
    client = ready_client(clock, endpoint)
    result = fired(client.originate(REQUEST))
    action_id = field_of(endpoint.link.new_actions()[0], "ActionID")
    parts = [queued(action_id), NOISE, originate_response(action_id, "4")]
    if order == "event-first":
        parts.reverse()
    for part in parts:
        endpoint.link.say(part)
    assert len(result) == 1
    outcome = result[0]
    assert (outcome.outcome, outcome.uniqueid, outcome.channel, outcome.action_id) == (
        OriginateOutcome.ANSWERED, "1795685579.2", "PJSIP/100-01", action_id)
    assert outcome.queued is (order == "queued-first")
    assert client.originates_in_flight == 0 and clock.getDelayedCalls() != []


def test_originate_refused_by_asterisk_is_failed_not_queued(clock, endpoint):
    client = ready_client(clock, endpoint)
    result = fired(client.originate(REQUEST))
    action_id = field_of(endpoint.link.new_actions()[0], "ActionID")
    endpoint.link.say(message(("Response", "Error"), ("ActionID", action_id), ("Message", "Invalid channel")))
    assert result[0].outcome is OriginateOutcome.FAILED and not result[0].queued
    endpoint.link.say(originate_response(action_id, "4"))    # a stray late event changes nothing
    assert len(result) == 1


def test_originate_without_originate_response_ends_unknown_at_its_deadline(clock, endpoint):
    client = ready_client(clock, endpoint, originate_margin_ms=5_000)
    result = fired(client.originate(REQUEST))                  # Timeout 30 s + 5 s margin
    action_id = field_of(endpoint.link.new_actions()[0], "ActionID")
    endpoint.link.say(queued(action_id))
    clock.advance(34.9)
    assert result == []
    clock.advance(0.2)
    assert result[0].outcome is OriginateOutcome.UNKNOWN and result[0].queued
    assert "no OriginateResponse within 35 s" in result[0].detail
    endpoint.link.say(originate_response(action_id, "4"))      # too late: already reported
    assert len(result) == 1


def test_originate_timeout_can_be_given_per_call(clock, endpoint):
    client = ready_client(clock, endpoint)
    result = fired(client.originate(REQUEST, timeout_ms=1_000))
    clock.advance(1)
    assert result[0].outcome is OriginateOutcome.UNKNOWN and not result[0].queued


@given(reasons=st.lists(st.sampled_from(["4", "5", "8", "3", "0", "1"]), min_size=1, max_size=12),
       order=st.randoms(use_true_random=False), event_first=st.lists(st.booleans(), min_size=12, max_size=12))
@settings(max_examples=60, deadline=None)
def test_many_originates_in_flight_each_get_their_own_outcome(reasons, order, event_first):
    """Replies and events in any order, interleaved with noise: each attempt gets exactly its own Reason."""
    clock = Clock()
    endpoint = FakeEndpoint(clock)
    client = ready_client(clock, endpoint)
    results = [fired(client.originate(REQUEST)) for _ in reasons]
    ids = [field_of(action, "ActionID") for action in endpoint.link.new_actions()]
    chunks = []
    for index, (action_id, reason) in enumerate(zip(ids, reasons)):
        pair = [queued(action_id), originate_response(action_id, reason)]
        chunks.append(pair[::-1] if event_first[index] else pair)
    stream = []
    while any(chunks):
        chunk = order.choice([c for c in chunks if c])
        stream.append(chunk.pop(0))
        stream.append(NOISE)
    endpoint.link.say(b"".join(stream))
    expected = {"4": "answered", "5": "busy", "8": "congestion", "3": "noanswer", "0": "failed", "1": "failed"}
    assert [len(r) for r in results] == [1] * len(reasons)
    assert [r[0].outcome.value for r in results] == [expected[reason] for reason in reasons]
    assert [r[0].action_id for r in results] == ids


def test_foreign_originate_response_is_ignored(clock, endpoint):
    client = ready_client(clock, endpoint)
    result = fired(client.originate(REQUEST))
    action_id = field_of(endpoint.link.new_actions()[0], "ActionID")
    endpoint.link.say(originate_response("other-dialer-1", "5") + queued("other-dialer-1"))
    assert result == []
    endpoint.link.say(originate_response(action_id, "3"))
    assert result[0].outcome is OriginateOutcome.NOANSWER


# -- keep-alive, loss, reconnect ------------------------------------------------------------------------------------
def test_ping_every_interval_and_pong_keeps_the_link(clock, endpoint):
    client = ready_client(clock, endpoint, ping_interval_ms=20_000, ping_timeout_ms=5_000)
    for _ in range(3):
        clock.advance(20)
        ping = endpoint.link.new_actions()[0]
        assert field_of(ping, "Action") == "Ping"
        clock.advance(4)
        endpoint.link.say(message(("Response", "Success"), ("ActionID", field_of(ping, "ActionID")),
                                  ("Ping", "Pong"), ("Timestamp", "1795685579.123456")))
    assert not endpoint.link.dropped and client.ready


def test_ping_without_reply_drops_the_link_and_reconnects(clock, endpoint, caplog):
    client = ready_client(clock, endpoint, ping_interval_ms=20_000, ping_timeout_ms=5_000)
    clock.advance(20)
    assert field_of(endpoint.link.new_actions()[0], "Action") == "Ping"
    clock.advance(5)
    assert endpoint.link.dropped
    endpoint.link.close(error.ConnectionAborted())
    assert client.state is ClientState.RECONNECTING
    assert "no reply to Ping within 5 s" in caplog.text
    clock.advance(0.5)                                          # Backoff.initial_ms
    assert len(endpoint.links) == 2
    log_in(endpoint.link)
    assert client.ready


def test_backoff_schedule_is_exponential_and_capped(clock, endpoint):
    client = ready_client(clock, endpoint, backoff=Backoff(initial_ms=500, factor=2, max_ms=4_000),
                          ping_interval_ms=None)
    endpoint.refusing = True
    lost_at = clock.seconds()
    endpoint.link.close(error.ConnectionLost())
    for _ in range(200):
        clock.advance(0.25)
    delays = [round(b - a, 2) for a, b in zip([lost_at] + endpoint.attempts[1:], endpoint.attempts[1:])]
    assert delays[:6] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    endpoint.refusing = False
    clock.advance(4)
    log_in(endpoint.link)
    assert client.ready
    endpoint.link.close(error.ConnectionLost())                 # the backoff starts over after a good login
    attempts = len(endpoint.attempts)
    clock.advance(0.5)
    assert len(endpoint.attempts) == attempts + 1


def test_connection_loss_fails_pending_actions_but_keeps_originates(clock, endpoint):
    client = ready_client(clock, endpoint, ping_interval_ms=None)
    action = fired(client.send_action(ami.Action("Command", ami.Fields([("Command", "core show uptime")]))))
    lost_before_queued = fired(client.originate(REQUEST))
    queued_then_lost = fired(client.originate(REQUEST))
    resolved_after_relogin = fired(client.originate(REQUEST))
    ids = [field_of(a, "ActionID") for a in endpoint.link.new_actions()]
    endpoint.link.say(queued(ids[2]) + queued(ids[3]))
    endpoint.link.close(error.ConnectionLost())
    assert action[0].check(AmiConnectionLost) and "Command" in str(action[0].value)
    assert lost_before_queued == [] and queued_then_lost == [] and resolved_after_relogin == []
    assert client.originates_in_flight == 3 and client.state is ClientState.RECONNECTING
    assert fired(client.originate(REQUEST))[0].check(AmiNotConnected)
    ready = fired(client.when_ready())
    clock.advance(0.5)
    log_in(endpoint.link)
    assert ready == [None]
    # Asterisk broadcasts OriginateResponse to every session: it reaches the new one with our ActionID.
    endpoint.link.say(NOISE + originate_response(ids[3], "5"))
    assert resolved_after_relogin[0].outcome is OriginateOutcome.BUSY and resolved_after_relogin[0].queued
    clock.advance(35)
    for result, was_queued in ((lost_before_queued, False), (queued_then_lost, True)):
        assert len(result) == 1 and result[0].outcome is OriginateOutcome.UNKNOWN
        assert result[0].queued is was_queued and "link was lost" in result[0].detail
    assert client.originates_in_flight == 0


def test_login_refused_on_reconnect_gives_up_and_reports_in_flight_as_unknown(clock, endpoint):
    client = ready_client(clock, endpoint, ping_interval_ms=None)
    result = fired(client.originate(REQUEST))
    endpoint.link.close(error.ConnectionLost())
    ready = fired(client.when_ready())
    clock.advance(0.5)
    endpoint.link.say(b"Asterisk Call Manager/11.0.0\r\n")
    login = endpoint.link.new_actions()[0]
    endpoint.link.say(message(("Response", "Error"), ("ActionID", field_of(login, "ActionID")),
                              ("Message", "Authentication failed")))
    assert client.state is ClientState.FAILED and ready[0].check(AmiLoginError)
    assert result[0].outcome is OriginateOutcome.UNKNOWN and "gave up" in result[0].detail
    clock.advance(3600)
    assert len(endpoint.attempts) == 2


def test_stop_logs_off_and_reports_in_flight_as_unknown(clock, endpoint):
    client = ready_client(clock, endpoint)
    result = fired(client.originate(REQUEST))
    action_id = field_of(endpoint.link.new_actions()[0], "ActionID")
    endpoint.link.say(queued(action_id))
    stopped = fired(client.stop())
    logoff = endpoint.link.new_actions()[0]
    assert field_of(logoff, "Action") == "Logoff" and stopped == []
    endpoint.link.say(message(("Response", "Goodbye"), ("ActionID", field_of(logoff, "ActionID")),
                              ("Message", "Thanks for all the fish.")))
    assert endpoint.link.dropped
    endpoint.link.close()
    assert stopped == [None] and client.state is ClientState.STOPPED
    assert fired(client.stop()) == [None]
    assert result[0].outcome is OriginateOutcome.UNKNOWN and result[0].queued
    assert fired(client.when_ready())[0].check(AmiNotConnected)
    assert clock.getDelayedCalls() == []


def test_stop_when_logoff_gets_no_reply_still_closes(clock, endpoint):
    client = ready_client(clock, endpoint, login_timeout_ms=2_000)
    stopped = fired(client.stop())
    clock.advance(2)
    assert endpoint.link.dropped
    endpoint.link.close(error.ConnectionAborted())
    assert stopped == [None]


def test_stop_while_reconnecting_cancels_the_retry(clock, endpoint):
    client = ready_client(clock, endpoint)
    endpoint.link.close(error.ConnectionLost())
    assert fired(client.stop()) == [None]
    clock.advance(60)
    assert len(endpoint.links) == 1 and client.state is ClientState.STOPPED


def test_state_changes_are_observable(clock, endpoint):
    client = make_client(clock, endpoint)
    states = []
    client.on_state_change(states.append)
    client.start()
    log_in(endpoint.link)
    endpoint.link.close(error.ConnectionLost())
    clock.advance(0.5)
    log_in(endpoint.link)
    assert [s.value for s in states] == ["connecting", "logging-in", "ready", "reconnecting", "connecting",
                                         "logging-in", "ready"]


# -- the transcripts, replayed to the client -------------------------------------------------------------------------
@pytest.mark.parametrize("stem,outcome", [("ami-facts", "answered"), ("ami-fail-local", "failed"),
                                          ("ami-noagi", "answered"), ("ami-app", "answered")])
def test_transcript_replayed_to_the_client_resolves_the_originate(clock, endpoint, stem, outcome):
    """What Asterisk really sent, with our ActionIDs in place of the probe's, byte for byte otherwise."""
    transcript = load_transcript(next(p for p in transcripts_or_skip() if p.stem == stem))
    client = make_client(clock, endpoint, events="on", ping_interval_ms=None)
    started = fired(client.start())
    endpoint.link.say(transcript.received[0])
    login_id = field_of(endpoint.link.new_actions()[0], "ActionID")
    endpoint.link.say(transcript.received[1].replace(b"login-1", login_id.encode()))
    assert started == [None]
    sent = transcript.sent[1]
    request = OriginateRequest(
        channel=field_of(sent, "Channel"), context=field_of(sent, "Context"), exten=field_of(sent, "Exten"),
        application=field_of(sent, "Application"), data=field_of(sent, "Data"),
        caller_id=field_of(sent, "CallerID"),
        variables=tuple(tuple(v.split("=", 1)) for k, v in sent if k == "Variable"))
    result = fired(client.originate(request))
    originate = endpoint.link.new_actions()[0]
    action_id = field_of(originate, "ActionID")
    assert [line for line in originate if line[0] != "ActionID"] == [line for line in sent if line[0] != "ActionID"]
    rest = b"".join(transcript.received[2:]).replace(b"ActionID: orig-1", f"ActionID: {action_id}".encode())
    endpoint.link.say(rest)
    assert result[0].outcome.value == outcome and result[0].queued
