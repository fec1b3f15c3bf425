"""What broke the peers, at the server level: each costs only the call it happens on.

panoramisk froze on a connect-and-close; starpy took a multi-line 520 reply
and an unprompted ``HANGUP`` line for replies to later commands. Here each
case is played against a live server, then a normal call must go through.
Peers that are not Asterisk (garbage, an endless line, silence) are dropped
without a call record: they never were calls.
"""

from __future__ import annotations

import logging

from twisted.internet import defer, task

from tests.fakes.fake_asterisk import FakeAsterisk, connect_raw
from tests.server.helpers import HELLO, HeldAsterisk, write

USAGE_520 = ["520-Invalid command syntax.  Proper usage follows:",
             "Usage: WAIT FOR DIGIT <timeout>", "  Waits up to 'timeout' milliseconds.",
             "520 End of proper usage."]


def normal_call(running, uniqueid: str) -> None:
    running.call(FakeAsterisk("hello", keys="1234", uniqueid=uniqueid))
    record = running.last()
    assert (record["call_id"], record["ended_by"], record["result"]) == (uniqueid, "hangup", "ok")


def raw(running, send: bytes = b"", close: bool = False):
    return running.live.run(connect_raw(running.live.reactor, running.host, running.port, send=send, close=close))


def test_health_checks_cost_nothing(serve, scripts, caplog):
    write(scripts, "hello.dlg", HELLO)
    running = serve(scripts)
    caplog.set_level(logging.INFO, logger="autocall")
    for _ in range(20):
        running.live.run(raw(running, close=True).finished)
    running.live.settle(running.server.factory)
    normal_call(running, "after-health")
    assert len(running.records()) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_multiline_520_mid_call_ends_only_that_call(serve, scripts):
    write(scripts, "hello.dlg", HELLO)
    running = serve(scripts)
    # command 4 is the first WAIT FOR DIGIT (GET VARIABLE, ANSWER, STREAM FILE, WAIT FOR DIGIT)
    transcript = running.call(FakeAsterisk("hello", keys="1234", uniqueid="u520", replies={4: USAGE_520}))
    record = running.last()
    assert record["ended_by"] == "error" and "520" in record["error"] and "WAIT FOR DIGIT" in record["error"]
    # The usage block was one reply: the HANGUP that followed got its own reply, nothing out of step.
    assert transcript.commands()[-1] == "HANGUP" and transcript.after_environment()[-1] == ("<<", "HANGUP")
    normal_call(running, "after-520")


def test_an_unprompted_hangup_while_the_server_thinks_is_not_a_reply(serve, scripts):
    write(scripts, "hello.dlg", HELLO)
    running = serve(scripts)
    for index in (1, 2, 3, 4, 5):
        transcript = running.call(FakeAsterisk("hello", keys="1234", uniqueid=f"t{index}",
                                               hangup_after_reply=index))
        record = running.last()
        assert record["ended_by"] == "caller_hangup" and record["error"] is None, transcript.render()
        # Keys only ever come from real replies: the ones the caller pressed before hanging up.
        assert "1234".startswith(record["keys"])
    normal_call(running, "after-thinking")


def test_garbage_instead_of_an_environment_is_dropped(serve, scripts, caplog):
    write(scripts, "hello.dlg", HELLO)
    running = serve(scripts)
    caplog.set_level(logging.WARNING, logger="autocall")
    for junk in (b"GET / HTTP/1.1\r\nHost: example\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",
                 b"\n\n", b"agi_network yes\n"):
        peer = raw(running, send=junk)
        running.live.run(peer.finished)
    running.live.settle(running.server.factory)
    assert not running.records()
    assert sum("dropped" in r.getMessage() for r in caplog.records) == 4
    normal_call(running, "after-garbage")


def test_an_endless_line_is_dropped(serve, scripts):
    write(scripts, "hello.dlg", HELLO)
    running = serve(scripts, max_line_length=1024)
    peer = raw(running, send=b"agi_network: yes\nagi_network_script: " + b"x" * 5000)
    running.live.run(peer.finished)
    mid_call = running.start(HeldAsterisk(FakeAsterisk("hello", uniqueid="long"), hold_at="WAIT FOR DIGIT"))
    running.live.run(mid_call.reached)
    mid_call.transport.write(b"200 result=" + b"9" * 5000)        # an endless reply, mid-call
    running.live.run(mid_call.finished)
    running.live.settle(running.server.factory)
    record = running.last()
    assert record["call_id"] == "long" and record["ended_by"] == "error" and "longer than 1024" in record["error"]
    normal_call(running, "after-endless")


def test_a_silent_peer_is_dropped_after_the_environment_timeout(serve, scripts):
    write(scripts, "hello.dlg", HELLO)
    clock = task.Clock()
    running = serve(scripts, clock=clock, env_timeout_ms=10_000)
    silent = raw(running)
    running.live.spin_until(lambda: running.server.factory.connections)
    clock.advance(9.9)
    assert not silent.finished.called
    clock.advance(0.2)
    running.live.run(silent.finished)
    assert not running.records()
    normal_call(running, "after-silence")


def test_a_slow_call_never_stalls_the_others(serve, scripts):
    write(scripts, "hello.dlg", HELLO)
    running = serve(scripts)
    slow = running.start(HeldAsterisk(FakeAsterisk("hello", keys="1234", uniqueid="slow"), hold_at="WAIT"))
    running.live.run(slow.reached)
    others = [FakeAsterisk("hello", keys="1234", uniqueid=f"o{n}").call(running.live.reactor, running.host,
                                                                          running.port) for n in range(10)]
    running.live.run(defer.gatherResults(others))
    assert len(running.records()) == 10 and running.server.active
    slow.release()
    running.live.run(slow.finished)
    running.live.settle(running.server.factory)
    records = {record["call_id"]: record for record in running.records()}
    assert len(records) == 11 and records["slow"]["result"] == "ok"


def test_the_servers_own_commands_map_replies_as_the_channel_does(serve, scripts):
    """One mapping from AGI replies to errors: a 511 (dead channel) to the server's GET VARIABLE is the
    caller's hangup, as it is for any command of the dialogue; a 510 is a fault of ours."""
    write(scripts, "hello.dlg", HELLO)
    running = serve(scripts)
    dead = "511 Command Not Permitted on a dead channel or intercept routine"
    running.call(FakeAsterisk("hello", keys="1234", uniqueid="u511", replies={1: [dead]}))
    record = running.last()
    assert (record["call_id"], record["ended_by"], record["error"]) == ("u511", "caller_hangup", None)
    running.call(FakeAsterisk("hello", keys="1234", uniqueid="u510", replies={1: ["510 Invalid or unknown command"]}))
    record = running.last()
    assert record["ended_by"] == "error" and "(ours)" in record["error"] and "(510)" in record["error"]
    normal_call(running, "after-511")


def test_a_5000_digit_result_is_a_protocol_error_of_that_call_with_its_record(serve, scripts, caplog):
    write(scripts, "hello.dlg", HELLO)
    running = serve(scripts)
    caplog.set_level(logging.INFO)
    huge = "200 result=" + "9" * 5000
    # command 3 is the prompt's STREAM FILE (GET VARIABLE, ANSWER, STREAM FILE)
    running.call(FakeAsterisk("hello", keys="1234", uniqueid="u5000", replies={3: [huge]}))
    record = running.last()
    assert (record["call_id"], record["ended_by"], record["path"]) == ("u5000", "error", ["main"])
    assert "protocol fault (Asterisk's)" in record["error"] and len(record["error"]) < 400
    assert not [r for r in caplog.records if r.exc_info or "Unhandled" in r.getMessage()]
    running.call(FakeAsterisk("hello", keys="1234", uniqueid="u-big", replies={3: ["200 result=" + "9" * 200]}))
    record = running.last()
    assert record["ended_by"] == "error" and "unexpected reply" in record["error"] and len(record["error"]) < 400
    normal_call(running, "after-5000")


def test_an_environment_of_endless_distinct_fields_is_dropped(serve, scripts):
    """75 MB of distinct ``agi_*`` lines grew the server by 500 MB: past the field count or size the peer is
    dropped, without a call record (it never was a call)."""
    from autocall.agi.protocol import MAX_ENV_BYTES, MAX_ENV_FIELDS
    write(scripts, "hello.dlg", HELLO)
    running = serve(scripts, clock=task.Clock())         # the environment timeout never comes
    many = b"".join(b"agi_x%d: 1\n" % n for n in range(MAX_ENV_FIELDS + 1))
    big = b"".join(b"agi_y%d: %s\n" % (n, b"v" * 1000) for n in range(MAX_ENV_BYTES // 1000 + 1))
    for flood in (many, big):
        peer = raw(running, send=flood)
        running.live.run(peer.finished, timeout=3)     # dropped as soon as the cap is passed
        assert running.server.calls_started == 0
    normal_call(running, "after-flood")


def silent_at(running, command: str, uniqueid: str, script: str = "hello", keys: str = "1234") -> HeldAsterisk:
    held = running.start(HeldAsterisk(FakeAsterisk(script, keys=keys, uniqueid=uniqueid), hold_at=command))
    running.live.run(held.reached)
    return held


def test_a_peer_that_stops_answering_holds_its_call_no_longer_than_the_command_could_take(serve, scripts):
    """WAIT FOR DIGIT 2000 may take 2 s: with the 10 s margin, a peer silent for longer loses the call,
    logged and recorded as an error; it no longer holds it for the whole maximum call duration."""
    write(scripts, "hello.dlg", HELLO)
    clock = task.Clock()
    running = serve(scripts, clock=clock)
    held = silent_at(running, "WAIT FOR DIGIT", "silent1")
    for _ in range(11):
        clock.advance(1)
    assert not held.finished.called
    for _ in range(2):
        clock.advance(1)
    running.live.run(held.finished)
    running.live.spin_until(lambda: running.server.calls_ended == 1)
    record = running.last()
    assert record["call_id"] == "silent1" and record["ended_by"] == "error"
    assert "did not answer WAIT FOR DIGIT within 12 s" in record["error"]


def test_a_bridged_dial_may_last_long(serve, scripts):
    write(scripts, "dial.dlg", 'dialogue dial\nstart main\n\nstate main:\n    transfer "PJSIP/100"\n'
                               '    result "back"\n')
    clock = task.Clock()
    running = serve(scripts, clock=clock)
    held = silent_at(running, "EXEC Dial", "dial1", script="dial", keys="")
    for _ in range(600):
        clock.advance(1)                               # ten minutes on the phone with the agent
    assert not held.finished.called
    held.release()
    running.live.run(held.finished)
    running.live.spin_until(lambda: running.server.calls_ended == 1)
    assert running.last()["error"] is None
