"""Calls through the server over TCP: routing and refusals, params and their precedence, records for every ending.

Each test runs the fake Asterisk (the ``--keys`` caller) against a live
``AgiServer`` on 127.0.0.1 and reads the call records back from its database.
"""

from __future__ import annotations

import logging

import pytest

from twisted.internet import task

from autocall.agi.server import ShiftedClock
from tests.fakes.fake_asterisk import FakeAsterisk, transcript_environment
from tests.server.helpers import (EVERYTHING, EVERYTHING_KEYS, HELLO, HeldAsterisk, campaign_attempt,
                                  database_bytes, open_database, write)

PARAMS = """\
dialogue params
param first
param second
param third = "default3"
param fourth = "default4"
start main

state main:
    answer
    result "{first}|{second}|{third}|{fourth}"
"""


def test_a_call_runs_its_script_and_leaves_a_record(serve, scripts):
    write(scripts, "hello.dlg", HELLO)
    running = serve(scripts)
    transcript = running.call(FakeAsterisk("hello", keys="1234", callerid="5550100", uniqueid="1795.1"))
    assert transcript.closed_by == "server"
    assert transcript.commands()[:3] == ["GET VARIABLE AUTOCALL_ATTEMPT", "ANSWER",
                                         'STREAM FILE tts/enter-your-pin "0123456789*#"']
    record = running.last()
    assert (record["call_id"], record["script"], record["caller"], record["ended_by"], record["result"]) == \
        ("1795.1", "hello", "5550100", "hangup", "ok")
    assert record["path"] == ["main"] and record["keys"] == "1234" and record["channel"].startswith("Local/")
    assert record["origin"] == "agi" and record["attempt_id"] is None
    assert record["ended_at"] >= record["started_at"]


def test_scripts_in_subfolders_and_a_trailing_dlg_are_routed(serve, scripts):
    write(scripts, "sales/hello.dlg", HELLO)
    running = serve(scripts)
    running.call(FakeAsterisk("sales/hello", keys="1234", uniqueid="a"))
    running.call(FakeAsterisk("sales/hello.dlg", keys="1111", uniqueid="b"))
    assert [(r["script"], r["result"]) for r in running.records()] == [("hello", "ok"), ("hello", "bad")]


def test_names_outside_the_scripts_folder_are_refused_logged_and_recorded(serve, scripts, tmp_path, caplog):
    write(scripts, "hello.dlg", HELLO)
    write(tmp_path, "secret.dlg", HELLO)
    (scripts / "link.dlg").symlink_to(tmp_path / "secret.dlg")
    running = serve(scripts)
    names = ["../secret", "/etc/passwd", "sales/../../secret", "link", "", "a//b", "./hello", "a\\b"]
    caplog.set_level(logging.WARNING, logger="autocall")
    for number, name in enumerate(names):
        transcript = running.call(FakeAsterisk(name, keys="1234", uniqueid=f"r{number}"))
        assert transcript.commands() == ["HANGUP"], name          # answered by hanging up, nothing run
    records = running.records()
    assert [r["ended_by"] for r in records] == ["error"] * len(names)
    assert all("refused" in r["error"] for r in records)
    refusals = [r for r in caplog.records if r.getMessage().startswith("script refused")]
    assert len(refusals) == len(names)
    assert all(r.fields["peer"].startswith("127.0.0.1:") for r in refusals)
    running.call(FakeAsterisk("hello", keys="1234", uniqueid="after"))
    assert running.last()["result"] == "ok"


def test_an_unknown_script_is_answered_by_hanging_up_with_an_error_record(serve, scripts):
    running = serve(scripts)
    transcript = running.call(FakeAsterisk("nosuch", uniqueid="u1"))
    assert transcript.commands() == ["HANGUP"]
    record = running.last()
    assert record["ended_by"] == "error" and "no script nosuch.dlg" in record["error"]
    assert record["script"] == "nosuch" and record["path"] == []


def test_a_script_that_never_compiled_fails_its_calls_with_the_reason(serve, scripts, caplog):
    write(scripts, "broken.dlg", "dialogue broken\nstart main\nstate main:\n    goto nowhere\n")
    running = serve(scripts)
    caplog.set_level(logging.ERROR, logger="autocall")
    running.call(FakeAsterisk("broken", uniqueid="b1"))
    record = running.last()
    assert record["ended_by"] == "error" and "does not compile" in record["error"] and "nowhere" in record["error"]
    logged = [r for r in caplog.records if "does not compile" in r.getMessage()]
    assert logged and "nowhere" in logged[0].fields["diagnostics"]


def test_params_come_from_the_query_then_arguments_then_channel_variables_then_defaults(serve, scripts):
    write(scripts, "params.dlg", PARAMS)
    running = serve(scripts)
    # query: first; named argument second=; a positional fills nothing (third: GET VARIABLE, then its
    # default); GET VARIABLE fills fourth; a repeated name in the arguments loses to the query.
    fake = FakeAsterisk("params?first=Q%201", args=["first=ignored", "second=N2", "P3"],
                        variables={"fourth": "V4", "first": "not-asked"}, uniqueid="p1")
    transcript = running.call(fake)
    assert running.last()["result"] == "Q 1|N2|default3|V4"
    assert "GET VARIABLE fourth" in transcript.commands() and "GET VARIABLE third" in transcript.commands()
    assert "GET VARIABLE first" not in transcript.commands()        # given: never asked


def test_a_required_param_still_missing_ends_the_call_with_an_error(serve, scripts, caplog):
    write(scripts, "params.dlg", PARAMS)
    running = serve(scripts)
    caplog.set_level(logging.INFO, logger="autocall")
    transcript = running.call(FakeAsterisk("params?first=x", uniqueid="m1"))
    record = running.last()
    assert record["ended_by"] == "error" and "required param 'second'" in record["error"]
    assert "ANSWER" not in transcript.commands() and transcript.commands()[-1] == "HANGUP"
    assert any("required param 'second'" in r.getMessage() and r.fields.get("call_id") == "m1"
               for r in caplog.records)


def test_builtins_come_from_the_environment(serve, scripts):
    write(scripts, "who.dlg", 'dialogue who\nstart main\nstate main:\n'
                              '    result "{caller}|{caller_name}|{called}|{channel}|{attempt}|{call_id}"\n')
    running = serve(scripts)
    environment = transcript_environment("who", callerid="unknown", calleridname="unknown", uniqueid="w1",
                                         extra={"agi_dnid": "5559999", "agi_channel": "PJSIP/trunk-01"})
    running.call(FakeAsterisk(environment=environment))
    assert running.last()["result"] == "||5559999|PJSIP/trunk-01|1|w1"
    running.call(FakeAsterisk(environment=transcript_environment("who", uniqueid="w2", extension="200")))
    assert running.last()["result"] == "5550100|Probe|200|Local/200@ivr-00000000;2|1|w2"


def test_a_channel_running_agi_twice_gets_two_records(serve, scripts):
    write(scripts, "hello.dlg", HELLO)
    running = serve(scripts)
    running.call(FakeAsterisk("hello", keys="1234", uniqueid="same"))
    running.call(FakeAsterisk("hello", keys="1111", uniqueid="same"))
    assert [(r["call_id"], r["result"]) for r in running.records()] == [("same", "ok"), ("same-2", "bad")]


def test_a_uniqueid_already_in_the_database_is_not_overwritten(serve, scripts, tmp_path):
    write(scripts, "hello.dlg", HELLO)
    database = str(tmp_path / "shared.db")
    first = serve(scripts, database=database)
    first.call(FakeAsterisk("hello", keys="1234", uniqueid="again"))
    first.stop()
    second = serve(scripts, database=database)           # a restarted server: no memory of the first
    second.call(FakeAsterisk("hello", keys="1111", uniqueid="again"))
    assert [(r["call_id"], r["result"]) for r in second.records()] == [("again", "ok"), ("again-2", "bad")]


def test_a_campaign_call_takes_its_values_from_the_attempt(serve, scripts):
    write(scripts, "params.dlg", PARAMS.replace('result "', 'result "{caller}|{attempt}|{amd}|'))
    running = serve(scripts)
    conn = open_database(running.database)
    attempt = campaign_attempt(conn, script="params", number="+15550142", amd=True,
                               params={"first": "F", "second": "S", "unknown": "x"})
    conn.close()
    fake = FakeAsterisk("params?third=T", uniqueid="c1",
                        variables={"AUTOCALL_ATTEMPT": attempt.token, "AMDSTATUS": "machine", "fourth": "V"})
    running.call(fake)
    record = running.last()
    assert record["result"] == "+15550142|1|MACHINE|F|S|T|V"
    assert record["attempt_id"] == attempt.attempt_id and record["origin"] == "campaign"
    conn = open_database(running.database)
    assert conn.execute("SELECT amd FROM attempts WHERE id = ?", (attempt.attempt_id,)).fetchone()[0] == "MACHINE"


def test_an_attempt_id_unknown_to_the_database_runs_as_an_inbound_call(serve, scripts, caplog):
    write(scripts, "hello.dlg", HELLO)
    running = serve(scripts)
    caplog.set_level(logging.WARNING, logger="autocall")
    running.call(FakeAsterisk("hello", keys="1234", uniqueid="i1", variables={"AUTOCALL_ATTEMPT": "99999"}))
    record = running.last()
    assert record["result"] == "ok" and record["attempt_id"] is None
    assert any("AUTOCALL_ATTEMPT refused" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("forge", ["guessed id", "other number", "replayed"])
def test_a_forged_or_replayed_attempt_token_is_refused_and_logged(serve, scripts, caplog, forge):
    """The token is an HMAC bound to the attempt's number, good once: a peer cannot settle an attempt."""
    from autocall.store import campaigns
    write(scripts, "hello.dlg", HELLO)
    running = serve(scripts)
    conn = open_database(running.database)
    attempt = campaign_attempt(conn, script="hello", number="+15550142", params={})
    other = campaign_attempt(conn, script="hello", number="+15550143", params={})
    conn.close()
    caplog.set_level(logging.WARNING, logger="autocall")
    if forge == "guessed id":
        token = str(attempt.attempt_id)
    elif forge == "other number":      # another attempt's valid MAC under this attempt's id
        token = f"{attempt.attempt_id}.{other.token.partition('.')[2]}"
    else:
        running.call(FakeAsterisk("hello", keys="1234", uniqueid="first", variables={"AUTOCALL_ATTEMPT": attempt.token}))
        assert running.last()["attempt_id"] == attempt.attempt_id
        token = attempt.token
    running.call(FakeAsterisk("hello", keys="1234", uniqueid="forged", variables={"AUTOCALL_ATTEMPT": token}))
    record = running.last()
    assert record["call_id"] == "forged" and record["attempt_id"] is None and record["origin"] != "campaign"
    refusals = [r.getMessage() for r in caplog.records if "AUTOCALL_ATTEMPT refused" in r.getMessage()]
    assert refusals and ("replayed" if forge == "replayed" else "forged") in refusals[-1]
    assert token.partition(".")[2] == "" or token.partition(".")[2] not in refusals[-1]
    with pytest.raises(campaigns.AttemptRefused):
        campaigns.claim_attempt(open_database(running.database), token, 0)


def test_a_campaign_call_sees_called_as_the_campaign_caller_id(serve, scripts):
    """``called`` is the caller-id number the campaign sends, as on the simulated PBX (not Asterisk's ``s``)."""
    write(scripts, "who.dlg", 'dialogue who\nstart main\nstate main:\n    result "{called}"\n')
    running = serve(scripts)
    conn = open_database(running.database)
    attempt = campaign_attempt(conn, script="who", number="+15550142", params={}, caller_id="Acme <5551234>")
    conn.close()
    running.call(FakeAsterisk("who", uniqueid="w1", variables={"AUTOCALL_ATTEMPT": attempt.token}))
    assert running.last()["result"] == "5551234"


def test_optout_puts_the_normalised_caller_number_on_the_do_not_call_list(serve, scripts):
    write(scripts, "stop.dlg", "dialogue stop\nstart main\nstate main:\n    optout\n    say \"Done.\"\n")
    running = serve(scripts)
    running.call(FakeAsterisk("stop", callerid="+39 06 555-1234", uniqueid="o1"))
    record = running.last()
    assert record["optout"] is True
    conn = open_database(running.database)
    assert [row[0] for row in conn.execute("SELECT number FROM dnc")] == ["+39065551234"]


def test_secret_keys_are_never_stored(serve, scripts, caplog):
    write(scripts, "pin.dlg", 'dialogue pin\nstart main\nstate main:\n'
                              '    gather pin digits 4 secret prompt "PIN?"\n'
                              '    log "the pin was {pin}"\n'
                              '    result "got {pin}"\n')
    running = serve(scripts)
    caplog.set_level(logging.DEBUG, logger="autocall")
    running.call(FakeAsterisk("pin", keys="4739", uniqueid="s1"))
    record = running.last()
    assert record["keys"] == "***" and record["result"] == "got ***"
    assert record["variables"] == {"pin": "***"}
    running.writer.close()
    running.writer = None
    assert b"4739" not in database_bytes(running.database)
    assert not any("4739" in r.getMessage() or "4739" in str(getattr(r, "fields", "")) for r in caplog.records)


def test_a_script_error_and_every_other_ending_leave_records(serve, scripts):
    write(scripts, "hello.dlg", HELLO)
    write(scripts, "oops.dlg", 'dialogue oops\nvar n = 0\nstart main\nstate main:\n    answer\n'
                               '    set n = "abc" - 1\n')
    running = serve(scripts)
    running.call(FakeAsterisk("hello", keys="1234", uniqueid="e1"))
    running.call(FakeAsterisk("hello", keys="12h", uniqueid="e2"))
    running.call(FakeAsterisk("oops", uniqueid="e3"))
    running.call(FakeAsterisk("../x", uniqueid="e4"))
    running.call(FakeAsterisk("missing", uniqueid="e5"))
    endings = {r["call_id"]: r["ended_by"] for r in running.records()}
    assert endings == {"e1": "hangup", "e2": "caller_hangup", "e3": "error", "e4": "error", "e5": "error"}
    assert "oops.dlg:6" in running.records()[2]["error"]


def test_a_command_that_never_returns_is_cut_at_the_maximum_call_duration(serve, scripts):
    write(scripts, "hello.dlg", HELLO)
    clock = task.Clock()
    running = serve(scripts, clock=clock, max_call_duration_ms=60_000,
                    command_margin_ms=3_600_000)   # the call guard, not the command guard
    held = running.start(HeldAsterisk(FakeAsterisk("hello", uniqueid="d1"), hold_at="WAIT FOR DIGIT"))
    running.live.run(held.reached)
    clock.advance(59)
    assert running.server.active
    clock.advance(2)
    running.live.run(held.finished)
    running.live.settle(running.server.factory)
    record = running.last()
    assert record["ended_by"] == "error" and "longer than the maximum of 60 s" in record["error"]
    running.call(FakeAsterisk("hello", keys="1234", uniqueid="d2"))
    assert running.last()["result"] == "ok"


def test_the_engine_clock_sets_the_calls_wall_time(serve, scripts):
    write(scripts, "open.dlg", 'dialogue open\nhours office = "mon-fri 09:00-18:00" in "UTC"\nstart main\n'
                               'state main:\n    if within(office):\n        result "open"\n'
                               '    else:\n        result "closed"\n')
    running = serve(scripts)
    running.server.engine_clock = ShiftedClock(running.live.reactor, 1772445600.0)    # Mon 2026-03-02 10:00 UTC
    running.call(FakeAsterisk("open", uniqueid="t1"))
    running.server.engine_clock = ShiftedClock(running.live.reactor, 1772953200.0)    # Sun 2026-03-08 07:00 UTC
    running.call(FakeAsterisk("open", uniqueid="t2"))
    assert [r["result"] for r in running.records()] == ["open", "closed"]


def test_everything_script_runs_end_to_end(serve, scripts):
    write(scripts, "everything.dlg", EVERYTHING)
    running = serve(scripts)
    transcript = running.call(FakeAsterisk("everything", keys=EVERYTHING_KEYS, uniqueid="all"))
    record = running.last()
    assert record["result"] == "done 12" and record["path"] == ["main", "more", "bye"]
    assert transcript.dialled == ["PJSIP/100,5"] and transcript.variables["CALLERID(all)"] == "Acme <100>"
    assert transcript.recordings == ["/var/spool/autocall/all-message.wav"]


def test_the_text_one_call_may_render_is_capped_and_the_cut_logged(serve, scripts, caplog):
    """One call's 15 KB ``say`` cannot hold the TTS worker for everyone: a call renders at most
    ``tts_max_chars`` (cut at a word's end, logged with the lengths, never the text); past that, prompts
    that need rendering are skipped, logged too."""
    import logging
    from tests.server.helpers import CountingSounds
    write(scripts, "speak.dlg", 'dialogue speak\nparam text = ""\nstart main\n\nstate main:\n    answer\n'
                                '    say "{text}"\n    say "Then {text}"\n    result "said"\n')
    sounds = CountingSounds()
    running = serve(scripts, sounds=sounds)
    caplog.set_level(logging.WARNING, logger="autocall")
    running.call(FakeAsterisk("speak?text=" + "word+" * 3000, uniqueid="long1"))
    record = running.last()
    assert (record["ended_by"], record["result"]) == ("hangup", "said")
    [spoken] = [prompt.text for prompt in sounds.asked if prompt.text.startswith("word")]
    assert 2990 <= len(spoken) <= 3000 and spoken.endswith("word")
    lines = [r.getMessage() for r in caplog.records]
    assert any("cut from 15000 to 2999 characters" in line for line in lines), lines
    assert any("was skipped" in line and "tts_max_chars" in line for line in lines)
    assert not any("word word" in line for line in lines)


def test_optout_reads_a_national_caller_id_with_the_configured_country(serve, scripts):
    """The do-not-call list holds E.164, as campaigns compare it: ``06 5551234`` from an Italian trunk."""
    write(scripts, "stop.dlg", "dialogue stop\nstart main\nstate main:\n    optout\n    say \"Done.\"\n")
    running = serve(scripts, country="IT")
    running.call(FakeAsterisk("stop", callerid="06 5551234", uniqueid="o2"))
    conn = open_database(running.database)
    assert [row[0] for row in conn.execute("SELECT number FROM dnc")] == ["+39065551234"]
