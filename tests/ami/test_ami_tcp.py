"""The AMI client against the fake AMI server over real TCP on 127.0.0.1 (the global reactor, iterated)."""

from __future__ import annotations

import logging
import socket

import pytest
from twisted.internet import defer

from autocall.ami import protocol as ami
from autocall.ami.client import AmiClient, AmiLoginError, AmiUnreachable, Backoff, ClientState
from autocall.ami.originate import OriginateOutcome, build_originate_request
from tests.fakes.fake_ami import SILENT, FakeAmiServer

SECRET = "tcp-s3cret"


@pytest.fixture
def servers(reactor, run):
    started = []

    def make(**options) -> FakeAmiServer:
        server = FakeAmiServer(reactor, secret=SECRET, **options)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        run(server.stop())


@pytest.fixture
def clients(reactor, run):
    made = []

    def make(server: FakeAmiServer, **options) -> AmiClient:
        settings = dict(username="autocall", secret=SECRET, reactor=reactor, ping_interval_ms=None,
                        backoff=Backoff(initial_ms=20, factor=2, max_ms=200), originate_margin_ms=1_000)
        settings.update(options)
        client = AmiClient(server.endpoint, **settings)
        made.append(client)
        return client

    yield make
    for client in made:
        run(client.stop())


def request(number: str, attempt: int, **options):
    return build_originate_request("PJSIP/{number}@trunk", number, attempt_id=attempt, script="reminder",
                                   context="autocall-outbound", timeout_ms=options.pop("timeout_ms", 1_000),
                                   **options)


def test_originate_fields_reach_asterisk_as_it_expects_them(servers, clients, run):
    server = servers()
    client = clients(server)
    run(client.start())
    result = run(client.originate(request("5551234", 17, caller_id='"Acme" <5550100>',
                                          variables={"company": 'Smith, "J" & co\\x', "lang": "de"})))
    assert result.outcome is OriginateOutcome.ANSWERED
    login, originate = server.actions[0], server.originates[0]
    assert login.name == "Login" and login.get("Events") == "call"
    assert [key for key, _ in originate.fields] == ["Action", "ActionID", "Channel", "Async", "Timeout", "CallerID",
                                                    "Context", "Exten", "Priority"] + ["Variable"] * 5
    assert (originate.get("Channel"), originate.get("Async"), originate.get("Timeout"), originate.get("Context"),
            originate.get("Exten"), originate.get("Priority")) == (
        "PJSIP/5551234@trunk", "true", "1000", "autocall-outbound", "s", "1")
    # Split and unquoted as Asterisk does it: the values arrive exactly as given.
    assert originate.variables == {"AUTOCALL_ATTEMPT": "17", "AUTOCALL_SCRIPT": "reminder",
                                   "AUTOCALL_NUMBER": "5551234", "company": 'Smith, "J" & co\\x', "lang": "de"}
    assert result.action_id == originate.action_id


def test_each_reason_code_maps_to_its_outcome(servers, clients, run):
    outcomes = {"100": "answered", "101": "busy", "102": "congestion", "103": "noanswer", "104": "failed",
                "105": "hangup"}
    server = servers(outcomes=outcomes)
    client = clients(server)
    run(client.start())
    results = run(defer.gatherResults([client.originate(request(n, i)) for i, n in enumerate(outcomes)]))
    assert [(r.outcome.value, r.reason) for r in results] == [
        ("answered", 4), ("busy", 5), ("congestion", 8), ("noanswer", 3), ("failed", 0), ("failed", 1)]
    answered, *failures = results
    assert answered.uniqueid and answered.channel.startswith("PJSIP/100-") and answered.response == "Success"
    for result, number in zip(failures, list(outcomes)[1:]):
        assert result.uniqueid is None and result.channel == f"PJSIP/{number}@trunk"
        assert result.response == "Failure" and result.queued


def test_no_originate_response_ends_unknown_rather_than_hanging(servers, clients, run):
    server = servers(outcomes={"100": SILENT})
    client = clients(server, originate_margin_ms=200)
    run(client.start())
    result = run(client.originate(request("100", 1, timeout_ms=100)))
    assert result.outcome is OriginateOutcome.UNKNOWN and result.queued


def test_full_event_flood_and_event_before_reply(servers, clients, run):
    """Events: on, noise between everything, a foreign OriginateResponse, the event before the queued reply."""
    server = servers(flood=5, event_before_response=True, outcomes={"101": "busy"})
    client = clients(server, events="on")
    seen = []
    client.on_event(lambda event: seen.append(event.name))
    run(client.start())
    results = run(defer.gatherResults([client.originate(request(n, i)) for i, n in enumerate(["100", "101"] * 10)]))
    assert [r.outcome.value for r in results] == ["answered", "busy"] * 10
    assert {"Newexten", "VarSet", "AGIExecStart", "Hangup", "FullyBooted"} <= set(seen)
    assert seen.count("OriginateResponse") > 20     # ours and another dialer's
    assert len({r.action_id for r in results}) == 20


def test_events_call_filter_limits_the_flood(servers, clients, run):
    server = servers(flood=5)
    client = clients(server)
    seen = []
    client.on_event(lambda event: seen.append(event.name))
    run(client.start())
    run(client.originate(request("100", 1)))
    assert "VarSet" not in seen and "AGIExecStart" not in seen and "OriginateResponse" in seen


def test_on_answer_hook_sees_the_attempt_variables(servers, clients, run):
    answered = []
    server = servers(on_answer=lambda action: answered.append(action.variables["AUTOCALL_ATTEMPT"]),
                     outcomes={"200": "busy"})
    client = clients(server)
    run(client.start())
    run(defer.gatherResults([client.originate(request("100", 41)), client.originate(request("200", 42))]))
    assert answered == ["41"]


def test_dropped_mid_campaign_every_originate_resolved_exactly_once(servers, clients, run, caplog):
    """The link drops after 6 of 10 originates; reconnect, re-login: nothing lost, nothing twice.

    Calls 1-6 were queued by Asterisk: call 1 finishes while the link is down (its event is lost: unknown
    at its deadline), calls 2-6 finish after the re-login (their events reach the new session). Calls
    7-10 never reached Asterisk (unknown at their deadline, not queued).
    """
    caplog.set_level(logging.DEBUG)
    outcomes = {str(300 + i): reason for i, reason in enumerate(["busy", "answered", "noanswer", "congestion",
                                                                  "failed", "answered"])}
    server = servers(outcomes=outcomes, drop_after_originates=6)
    server.hold_calls()
    client = clients(server, originate_margin_ms=1_500, backoff=Backoff(initial_ms=200))
    link_down = defer.Deferred()
    client.on_state_change(lambda state: state is ClientState.RECONNECTING and link_down.callback(None))
    run(client.start())
    counts: dict[int, int] = {}
    results: dict[int, object] = {}

    def record(result, index):
        counts[index] = counts.get(index, 0) + 1
        results[index] = result

    deferreds = []
    for index in range(10):
        d = client.originate(request(str(300 + index), index, timeout_ms=1_000))
        d.addCallback(record, index)
        deferreds.append(d)
    run(link_down)
    server.release_calls(1)                       # finishes while no session is logged in: the event is lost
    run(server.when(lambda: server.logins == 2))
    run(client.when_ready())
    server.release_calls()
    run(defer.DeferredList(deferreds), timeout=15)
    assert counts == {index: 1 for index in range(10)}
    outcome = {index: results[index].outcome.value for index in range(10)}
    assert outcome == {0: "unknown", 1: "answered", 2: "noanswer", 3: "congestion", 4: "failed", 5: "answered",
                       6: "unknown", 7: "unknown", 8: "unknown", 9: "unknown"}
    assert results[0].queued and not any(results[i].queued for i in range(6, 10))
    assert len(server.originates) == 6 and server.logins == 2
    assert client.originates_in_flight == 0
    assert SECRET not in caplog.text


def test_login_refused_over_tcp(servers, clients, run):
    server = servers()
    client = clients(server, secret="wrong-secret")
    with pytest.raises(AmiLoginError) as caught:
        run(client.start())
    text = str(caught.value)
    assert "\n" not in text and f"127.0.0.1:{server.port}" in text and "'autocall'" in text
    assert "wrong-secret" not in text and server.failed_logins == 1


def test_unreachable_host_over_tcp(reactor, run):
    with socket.socket() as probe:          # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = AmiClient(host="127.0.0.1", port=port, username="autocall", secret=SECRET, reactor=reactor)
    with pytest.raises(AmiUnreachable) as caught:
        run(client.start())
    text = str(caught.value)
    assert "\n" not in text and f"127.0.0.1:{port}" in text and SECRET not in text


def test_ping_keepalive_and_logoff_over_tcp(servers, clients, run, reactor):
    server = servers()
    client = clients(server, ping_interval_ms=50)
    run(client.start())
    pong = run(client.send_action(ami.ping()))
    assert pong.fields["Ping"] == "Pong"
    run(server.when(lambda: [a.name for a in server.actions].count("Ping") >= 3))
    assert client.ready
    run(client.stop())
    assert server.actions[-1].name == "Logoff" and client.state is ClientState.STOPPED


def test_ping_unanswered_over_tcp_reconnects(servers, clients, run):
    server = servers(answer_pings=False)
    client = clients(server, ping_interval_ms=30, ping_timeout_ms=60)
    run(client.start())
    run(server.when(lambda: server.logins >= 2))
    run(client.when_ready())
    assert client.ready


def test_status_event_list_over_tcp(servers, clients, run):
    server = servers()
    server.hold_calls()
    client = clients(server)
    run(client.start())
    client.originate(request("100", 1))
    client.originate(request("101", 2))
    run(server.when(lambda: len(server.calls) == 2))
    status = run(client.send_list_action(ami.Action("Status")))
    assert len(status.events) == 2 and status.complete.fields["ListItems"] == "2"
    server.release_calls()
