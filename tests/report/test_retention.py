"""Retention and erasure: ``purge --before``, ``forget NUMBER`` (the do-not-call entry stays), the server's
daily retention run on a ``task.Clock``, and the ``retention`` setting."""

from __future__ import annotations

import pytest
from twisted.internet import defer, task

from autocall.agi.retention import EVERY_S, RetentionJob
from autocall.cli.main import main
from autocall.config import load_config
from autocall.engine.record import CallRecord
from autocall.errors import ConfigError
from autocall.store.calls import add_dnc, save_call
from autocall.store.db import connect
from tests.server.helpers import campaign_attempt

DAY = 86_400
MARCH_1 = 1_772_323_200.0            # 2026-03-01 00:00 UTC


@pytest.fixture
def setup(tmp_path, monkeypatch):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    monkeypatch.setenv("AUTOCALL_DATABASE", str(tmp_path / "calls.db"))
    monkeypatch.setenv("AUTOCALL_RECORDINGS_DIR", str(recordings))
    monkeypatch.setenv("TZ", "UTC")
    conn = connect(str(tmp_path / "calls.db"))
    yield conn, recordings
    conn.close()


def call(conn, call_id: str, started: float, caller: str = "5550100", recordings=(), attempt_id=None,
         path=("main", "bye")) -> None:
    record = CallRecord(call_id, "lines", started, caller=caller, called="5550000")
    record.path = list(path)
    record.inputs = [{"state": "main", "op": "menu", "keys": "1", "outcome": "match"}]
    record.input_notes = [{"failure": False}]
    record.transfers = [{"destination": "PJSIP/100", "dialstatus": "NOANSWER"}]
    record.transfer_states = ["main"]
    record.recordings = [str(file) for file in recordings]
    record.ended_by, record.ended_at = "hangup", started + 20
    save_call(conn, record, attempt_id=attempt_id)


def count(conn, table: str) -> int:
    return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_purge_deletes_older_records_their_rows_and_recordings(setup, tmp_path, capsys):
    conn, recordings = setup
    old_file, new_file, outside = recordings / "old-msg.wav", recordings / "new-msg.wav", tmp_path / "keep.wav"
    for file in (old_file, new_file, outside):
        file.write_bytes(b"RIFF")
    call(conn, "old", MARCH_1 - 10 * DAY, recordings=[old_file, outside])
    call(conn, "older", MARCH_1 - 400 * DAY)
    call(conn, "new", MARCH_1 + DAY, recordings=[new_file])
    assert main(["purge", "--before", "2026-03-01T00:00+00:00"]) == 0
    assert "2 call records, 1 recordings" in capsys.readouterr().out
    assert [row[0] for row in conn.execute("SELECT call_id FROM calls")] == ["new"]
    assert count(conn, "call_states") == 2 and count(conn, "call_inputs") == 1 and count(conn, "call_transfers") == 1
    assert not old_file.exists() and new_file.exists() and outside.exists()     # never a file outside the folder


def test_purge_deletes_old_campaign_attempts_but_not_open_ones(setup, capsys):
    conn, _ = setup
    attempt = campaign_attempt(conn, script="lines", number="+390655512000", params={}).attempt_id
    conn.execute("UPDATE attempts SET started_at = ?", (MARCH_1 - DAY,))
    assert main(["purge", "--before", "2026-03-01T00:00+00:00"]) == 0
    assert count(conn, "attempts") == 1                        # still dialling: the dialer needs it
    conn.execute("UPDATE attempts SET state = 'done', outcome = 'busy' WHERE id = ?", (attempt,))
    assert main(["purge", "--before", "30d"]) == 0
    assert count(conn, "attempts") == 0 and "1 campaign attempts" in capsys.readouterr().out


def test_forget_deletes_everything_about_a_number_but_its_do_not_call_entry(setup, capsys):
    conn, recordings = setup
    message = recordings / "x-msg.wav"
    message.write_bytes(b"RIFF")
    attempt = campaign_attempt(conn, script="lines", number="+390655512000", params={"name": "Ada"}).attempt_id
    call(conn, "outbound", MARCH_1, caller="+390655512000", attempt_id=attempt, recordings=[message])
    call(conn, "inbound", MARCH_1, caller="390655512000")
    call(conn, "someone-else", MARCH_1, caller="+390655599999")
    add_dnc(conn, "+390655512000", source="optout")
    conn.execute("INSERT INTO campaign_rejects (campaign_id, line, number, reason) SELECT id, 9, '+390655512000',"
                 " 'duplicate' FROM campaigns")
    assert main(["forget", "+39 06 5551 2000"]) == 0
    out = capsys.readouterr().out
    assert "2 call records, 1 recordings, 1 campaign contacts, 1 attempts, 1 rejected rows" in out
    assert "stays on the do-not-call list" in out
    assert [row[0] for row in conn.execute("SELECT call_id FROM calls")] == ["someone-else"]
    assert count(conn, "contacts") == 0 and count(conn, "attempts") == 0 and count(conn, "campaign_rejects") == 0
    assert count(conn, "call_states") == 2 and not message.exists()
    assert [row[0] for row in conn.execute("SELECT number FROM dnc")] == ["+390655512000"]


def test_forget_refuses_what_is_not_a_number(setup, capsys):
    assert main(["forget", "alice"]) == 1
    assert "not a phone number" in capsys.readouterr().err


def test_the_server_purges_at_start_and_then_every_day(setup, tmp_path):
    conn, recordings = setup
    call(conn, "ancient", MARCH_1 - 400 * DAY)
    call(conn, "recent", MARCH_1 - 10 * DAY)
    clock, now = task.Clock(), [MARCH_1]
    job = RetentionJob(str(tmp_path / "calls.db"), 365 * DAY * 1000, str(recordings), reactor=None, clock=clock,
                       now=lambda: now[0], run_in_thread=lambda f, *a: defer.maybeDeferred(f, *a))
    job.start()
    assert job.runs == 1 and [row[0] for row in conn.execute("SELECT call_id FROM calls")] == ["recent"]
    now[0] += 400 * DAY
    clock.advance(EVERY_S - 1)
    assert job.runs == 1
    clock.advance(1)
    assert job.runs == 2 and count(conn, "calls") == 0
    job.stop()
    clock.advance(EVERY_S)
    assert job.runs == 2


@pytest.mark.parametrize("value, expected", [("365d", 365 * DAY * 1000), ("2w", 14 * DAY * 1000), ("", 0)])
def test_the_retention_setting(value, expected):
    assert load_config(environ={"AUTOCALL_RETENTION": value}).retention == expected


@pytest.mark.parametrize("value, message", [("12h", "less than a day"), ("soon", "write an age such as")])
def test_a_bad_retention_setting_is_a_clear_error(value, message):
    with pytest.raises(ConfigError, match=message):
        load_config(environ={"AUTOCALL_RETENTION": value})


def test_purge_with_a_bad_date_is_a_clear_error(setup, capsys):
    assert main(["purge", "--before", "last tuesday"]) == 1
    err = capsys.readouterr().err
    assert "--before 'last tuesday': not a date or an age" in err and err.count("\n") == 1
