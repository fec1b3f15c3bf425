"""Over real TCP on 127.0.0.1 (port 0): the fake Asterisk against FastAgiFactory + AgiChannel.

Each peer-breaking case costs only its own connection: after it, a normal
call on the same server still goes through. The reactor is spun in-test by
``LiveReactor`` (tests/fakes/README.md).
"""

from __future__ import annotations

import logging
from twisted.internet import task

from autocall.engine.channel import ALL_KEYS
from tests.agi.agi_calls import FULL_CALL, GOLDEN, HELLO, KNOWN, REC, USAGE_520
from tests.fakes.agi_fixtures import LiveReactor, Outcome, live_reactor, script_driver  # noqa: F401
from tests.fakes.fake_asterisk import FakeAsterisk, connect_raw, transcript_environment

SHORT_CALL = [lambda ch: ch.answer(), lambda ch: ch.play(HELLO, ALL_KEYS), lambda ch: ch.wait_for_digit(1000)]


def serve(live: LiveReactor, steps, outcomes: list, **options):
    from autocall.agi.connection import FastAgiFactory
    factory = FastAgiFactory(script_driver(steps, outcomes, recordings_dir=REC), clock=options.pop("clock", None)
                             or live.reactor, **options)
    host, port = live.listen(factory)
    return factory, host, port


def still_serving(live: LiveReactor, host: str, port: int, outcomes: list) -> None:
    """A normal call after the misbehaving peer: the server is fine."""
    before = len(outcomes)
    transcript = live.run(FakeAsterisk(keys="5 6", known_sounds=KNOWN).call(live.reactor, host, port))
    assert transcript.closed_by == "server"
    assert outcomes[before].ended_by == "hangup" and outcomes[before].returns[0] is None


def test_a_whole_call_over_tcp_gives_the_golden_transcript(live_reactor):
    outcomes: list[Outcome] = []
    _, host, port = serve(live_reactor, FULL_CALL, outcomes)
    fake = FakeAsterisk(keys="1 0 w #", known_sounds=KNOWN)
    transcript = live_reactor.run(fake.call(live_reactor.reactor, host, port))
    assert outcomes[0].ended_by == "hangup"
    assert transcript.render() == (GOLDEN / "full-call.log").read_text()


def test_many_calls_at_once_each_get_their_own_keys(live_reactor):
    outcomes: list[Outcome] = []
    factory, host, port = serve(live_reactor, SHORT_CALL, outcomes)
    keys = [f"{i % 10} {(i * 7) % 10}" for i in range(30)] + ["h"] * 5
    calls = [FakeAsterisk(keys=k, uniqueid=f"1795.{n}", known_sounds=KNOWN, env_chunk=7)
             .call(live_reactor.reactor, host, port) for n, k in enumerate(keys)]
    from twisted.internet.defer import gatherResults
    transcripts = live_reactor.run(gatherResults(calls))
    live_reactor.settle(factory)
    assert len(transcripts) == 35
    ended = sorted(o.ended_by for o in outcomes)
    assert ended == ["caller_hangup"] * 5 + ["hangup"] * 30
    pressed = sorted("".join(t.pressed) for t in transcripts)
    assert pressed == sorted(k.replace(" ", "").replace("h", "") for k in keys)


def test_environment_written_one_byte_at_a_time(live_reactor):
    outcomes: list[Outcome] = []
    _, host, port = serve(live_reactor, SHORT_CALL, outcomes)
    live_reactor.run(FakeAsterisk(keys="3 4", known_sounds=KNOWN, env_chunk=1).call(live_reactor.reactor, host, port))
    assert outcomes[0].returns == [None, "3", "4"]


def test_health_check_connect_and_close_costs_only_itself(live_reactor, caplog):
    """panoramisk's whole server froze on a TCP connect and immediate close."""
    outcomes: list[Outcome] = []
    factory, host, port = serve(live_reactor, SHORT_CALL, outcomes)
    for _ in range(5):
        peer = live_reactor.run(connect_raw(live_reactor.reactor, host, port, close=True))
        live_reactor.run(peer.finished)
    still_serving(live_reactor, host, port, outcomes)
    assert len(outcomes) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_garbage_instead_of_an_environment_is_dropped(live_reactor, caplog):
    outcomes: list[Outcome] = []
    _, host, port = serve(live_reactor, SHORT_CALL, outcomes)
    peer = live_reactor.run(connect_raw(live_reactor.reactor, host, port, send=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    live_reactor.run(peer.finished)
    assert peer.received == b"" and outcomes == []
    assert "garbage instead of an AGI environment" in caplog.text
    still_serving(live_reactor, host, port, outcomes)


def test_an_endless_line_is_dropped(live_reactor, caplog):
    outcomes: list[Outcome] = []
    _, host, port = serve(live_reactor, SHORT_CALL, outcomes, max_line_length=4096)
    peer = live_reactor.run(connect_raw(live_reactor.reactor, host, port, send=b"agi_network: " + b"y" * 100_000))
    live_reactor.run(peer.finished)
    assert "longer than 4096 bytes" in caplog.text
    still_serving(live_reactor, host, port, outcomes)


def test_a_silent_peer_is_dropped_after_env_timeout_while_others_are_served(live_reactor, caplog):
    outcomes: list[Outcome] = []
    clock = task.Clock()                           # only the environment timer runs on it
    factory, host, port = serve(live_reactor, SHORT_CALL, outcomes, clock=clock, env_timeout_ms=10_000)
    silent = live_reactor.run(connect_raw(live_reactor.reactor, host, port))
    still_serving(live_reactor, host, port, outcomes)
    assert not silent.finished.called
    clock.advance(10)
    live_reactor.run(silent.finished)
    assert "no environment within 10000 ms" in caplog.text
    still_serving(live_reactor, host, port, outcomes)


def test_caller_gone_during_the_environment(live_reactor):
    outcomes: list[Outcome] = []
    _, host, port = serve(live_reactor, SHORT_CALL, outcomes)
    half = transcript_environment().to_bytes()[:200]
    peer = live_reactor.run(connect_raw(live_reactor.reactor, host, port, send=half, close=True))
    live_reactor.run(peer.finished)
    assert outcomes == []
    still_serving(live_reactor, host, port, outcomes)


def test_path_traversal_is_refused_and_logged(live_reactor, caplog):
    """A stand-in for the server's routing: ``Environment.safe_script`` refuses what escapes the folder."""
    from autocall.agi.connection import FastAgiFactory
    refused = []

    def on_call(connection):
        if connection.environment.safe_script is None:
            logging.getLogger("autocall.agi").warning("refused script %r", connection.environment.network_script)
            refused.append(connection.environment.network_script)

    host, port = live_reactor.listen(FastAgiFactory(on_call, clock=live_reactor.reactor))
    for script in ("../../etc/passwd", "/etc/passwd", "%2e%2e/x?a=1"):
        transcript = live_reactor.run(FakeAsterisk(script).call(live_reactor.reactor, host, port))
        assert transcript.commands() == [] and transcript.closed_by == "server"
    assert refused == ["../../etc/passwd", "/etc/passwd", "%2e%2e/x?a=1"]
    assert "refused script '../../etc/passwd'" in caplog.text


def test_multi_line_520_mid_call_costs_only_that_call(live_reactor):
    outcomes: list[Outcome] = []
    _, host, port = serve(live_reactor, SHORT_CALL, outcomes)
    live_reactor.run(FakeAsterisk(keys="1", known_sounds=KNOWN, replies={2: USAGE_520})
                     .call(live_reactor.reactor, host, port))
    assert outcomes[0].ended_by == "error" and "(ours)" in outcomes[0].error and "520" in outcomes[0].error
    still_serving(live_reactor, host, port, outcomes)


def test_unprompted_hangup_while_the_server_thinks(live_reactor):
    outcomes: list[Outcome] = []
    think = [lambda ch: ch.answer(), lambda ch: task.deferLater(live_reactor.reactor, 0, lambda: "thought"),
             lambda ch: ch.play(HELLO, "1")]
    _, host, port = serve(live_reactor, think, outcomes)
    transcript = live_reactor.run(FakeAsterisk(hangup_after_reply=1, known_sounds=KNOWN)
                                  .call(live_reactor.reactor, host, port))
    assert outcomes[0].ended_by == "caller_hangup" and outcomes[0].returns == [None, "thought"]
    assert transcript.commands() == ["ANSWER"]
    still_serving(live_reactor, host, port, outcomes)


def test_agiexitonhangup_closes_the_socket_mid_call(live_reactor):
    outcomes: list[Outcome] = []
    factory, host, port = serve(live_reactor, SHORT_CALL, outcomes)
    transcript = live_reactor.run(FakeAsterisk(keys="5 h", known_sounds=KNOWN, exit_on_hangup=True,
                                               hangup_notice="immediate").call(live_reactor.reactor, host, port))
    live_reactor.settle(factory)             # Asterisk closed first: let the server finish reading
    assert outcomes[0].ended_by == "caller_hangup" and transcript.closed_by == "asterisk"
    assert transcript.after_environment()[-3:] == [("<<", "200 result=-1"), ("<<", "HANGUP"), ("<<", "HANGUP")]
    still_serving(live_reactor, host, port, outcomes)
