"""The server's cheap per-call paths write exactly what the plain ones wrote.

- the log line: the formatter's one-regex path against a field-by-field
  reference; ``log_line`` straight to ``setup_logging``'s handler or, with any
  other set-up, through the logging module; lines held and written together,
  in order with every other line;
- call records: ``insert_calls`` (plain rows with the default columns left
  out, one statement per run) stores what ``save_call`` stores, in order;
- ``PlayableSounds.known``: a made prompt at once, without a Deferred.
"""

from __future__ import annotations

import io
import json
import logging
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import task

from autocall.agi.logs import _PLAIN, LogfmtFormatter, LogfmtHandler, log_line, logfmt_value, setup_logging
from autocall.agi.sounds import PlayableSounds
from autocall.engine.channel import FilePrompt, SoundPrompt, TtsPrompt
from autocall.engine.record import CallRecord
from autocall.store import calls as store
from autocall.store.db import connect
from tests.server.helpers import CountingSounds, Library

# --- the log line --------------------------------------------------------------------------------------


def reference_fields(fields: dict) -> str:
    """The fields as the formatter wrote them before: one value at a time."""
    return "".join(f" {key}={logfmt_value(value)}" for key, value in fields.items() if value is not None)


field_values = st.one_of(
    st.none(), st.integers(-10**6, 10**6), st.booleans(),
    st.text(alphabet="abc019-_./:@+,;*#%()[]<>!?~", min_size=0, max_size=8),   # plain (or empty)
    st.text(max_size=8),                                                       # anything, \x00 included
)


@settings(max_examples=400)
@given(st.dictionaries(st.text(alphabet="abcdefgh_", min_size=1, max_size=6), field_values, max_size=8))
def test_the_fields_are_written_as_one_at_a_time(fields):
    line = LogfmtFormatter().line(1_700_000_000.25, "INFO", "autocall.x", "call ended", fields)
    head = 'time=2023-11-14T22:13:20.250Z level=info logger=autocall.x msg="call ended"'
    assert line == head + reference_fields(fields)


def test_a_record_formats_as_its_line():
    record = logging.LogRecord("autocall.x", logging.WARNING, "", 0, "a %s", ("b c",), None)
    record.fields = {"call_id": "1.2", "n": 3, "none": None}
    line = LogfmtFormatter().format(record)
    assert line.endswith(' level=warning logger=autocall.x msg="a b c" call_id=1.2 n=3')


@pytest.fixture
def handler():
    """setup_logging's handler; ``alone(made)`` sets pytest's capture handlers aside in a test."""
    logger = logging.getLogger("autocall")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    stream = io.StringIO()
    made = setup_logging("info", stream)
    yield made, stream
    made.hold_lines(None)
    logger.handlers[:], logger.level, logger.propagate = saved


def alone(made: LogfmtHandler) -> None:
    """Make ``made`` the only handler of ``autocall`` (pytest adds its own at the start of each test)."""
    logging.getLogger("autocall").handlers[:] = [made]


def test_log_line_goes_straight_to_the_logfmt_handler(handler, monkeypatch):
    made, stream = handler
    alone(made)
    assert type(made) is LogfmtHandler
    monkeypatch.setattr(logging.Logger, "makeRecord", lambda *a, **k: pytest.fail("a LogRecord was made"))
    log_line(logging.getLogger("autocall.agi.server"), logging.INFO, "call ended", {"call_id": "7", "keys": "1 2"})
    assert stream.getvalue().endswith('msg="call ended" call_id=7 keys="1 2"\n')
    log_line(logging.getLogger("autocall.agi.server"), logging.DEBUG, "not shown", {})
    assert "not shown" not in stream.getvalue()


def test_log_line_with_any_other_set_up_is_an_ordinary_record(caplog):
    caplog.set_level(logging.INFO, logger="autocall")
    log_line(logging.getLogger("autocall.agi.server"), logging.INFO, "call ended", {"call_id": "8"})
    [record] = [r for r in caplog.records if r.getMessage() == "call ended"]
    assert record.fields == {"call_id": "8"} and record.levelno == logging.INFO


def test_a_filter_on_the_way_sends_the_line_through_logging(handler):
    made, stream = handler
    alone(made)
    made.addFilter(lambda record: False)
    try:
        log_line(logging.getLogger("autocall.agi.server"), logging.INFO, "call ended", {"call_id": "9"})
    finally:
        made.filters.clear()
    assert stream.getvalue() == ""


def test_held_lines_are_written_together_in_order_with_the_others(handler):
    made, stream = handler
    alone(made)
    clock = task.Clock()
    made.hold_lines(clock.callLater, 0.1)
    server = logging.getLogger("autocall.agi.server")
    log_line(server, logging.INFO, "call ended", {"call_id": "1"})
    log_line(server, logging.INFO, "call ended", {"call_id": "2"})
    assert stream.getvalue() == ""
    logging.getLogger("autocall.agi.service").warning("something else")     # writes the held ones first
    log_line(server, logging.INFO, "call ended", {"call_id": "3"})
    text = stream.getvalue()
    assert [line.split("msg=")[1] for line in text.splitlines()] == [
        '"call ended" call_id=1', '"call ended" call_id=2', '"something else"']
    clock.advance(0.1)
    assert stream.getvalue().splitlines()[-1].endswith("call_id=3") and clock.getDelayedCalls() == []
    log_line(server, logging.INFO, "call ended", {"call_id": "4"})
    made.flush()
    assert stream.getvalue().splitlines()[-1].endswith("call_id=4")
    log_line(server, logging.INFO, "call ended", {"call_id": "5"})
    made.hold_lines(None)                 # back to writing at once: what was held first
    assert stream.getvalue().splitlines()[-1].endswith("call_id=5") and clock.getDelayedCalls() == []
    log_line(server, logging.INFO, "call ended", {"call_id": "6"})
    assert stream.getvalue().splitlines()[-1].endswith("call_id=6")


def test_held_lines_keep_the_time_they_were_logged_at(handler, monkeypatch):
    made, stream = handler
    alone(made)
    clock = task.Clock()
    made.hold_lines(clock.callLater, 0.1)
    monkeypatch.setattr("autocall.agi.logs.time.time", lambda: 1_700_000_000.5)
    log_line(logging.getLogger("autocall.agi.server"), logging.INFO, "call ended", {"call_id": "1"})
    monkeypatch.setattr("autocall.agi.logs.time.time", lambda: 1_700_000_009.0)
    clock.advance(0.1)
    assert stream.getvalue().startswith("time=2023-11-14T22:13:20.500Z ")


def test_lines_from_another_thread_are_written_at_once(handler):
    import threading
    made, stream = handler
    alone(made)
    made.hold_lines(task.Clock().callLater, 0.1)
    worker = threading.Thread(target=log_line, args=(logging.getLogger("autocall.x"), logging.INFO, "from a thread",
                                                     {}))
    worker.start()
    worker.join()
    assert "from a thread" in stream.getvalue()


# --- call records -------------------------------------------------------------------------------------

def full_record(call_id: str, **fields) -> CallRecord:
    made = CallRecord(call_id, "bench", 1000.25, "5550100", "unknown")
    made.path = ["main", "welcome"]
    made.prompts = [{"kind": "tts", "text": "Jos\u00e9 said \"hi\"\n"}]
    made.inputs = [{"state": "main", "op": "gather", "keys": "1234", "outcome": "complete"}]
    made.variables = {"code": "1234", "n": 2}
    made.result, made.ended_by, made.ended_at = "ok", "hangup", 1001.5
    for key, value in fields.items():
        setattr(made, key, value)
    return made


SHAPES = [
    {},                                                          # the plain shape: defaults left out
    {"error": "channel failure: x"},
    {"transfers": [{"destination": "PJSIP/1", "dialstatus": "BUSY"}]},
    {"recordings": ["/r/1.wav"]},
    {"log": [{"at": 0.1, "line": 3, "message": "m"}]},
    {"optout": True},
    {"path": [], "prompts": [], "inputs": [], "variables": {}, "result": None, "ended_at": None},
]


def stored(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM calls ORDER BY rowid").fetchall()
    finally:
        conn.close()


def test_insert_calls_stores_what_save_call_stores_in_the_same_order(tmp_path):
    items = []
    for number, shape in enumerate(SHAPES * 2):
        attempt = 7 if number == 3 else None
        items.append((full_record(f"c{number}", **shape), "Local/s@ivr-1;2", attempt, "agi" if attempt is None
                      else "campaign"))
    saved, inserted = connect(str(tmp_path / "a.db")), connect(str(tmp_path / "b.db"))
    for record, channel, attempt, origin in items:
        store.save_call(saved, record, channel=channel, attempt_id=attempt, origin=origin)
    inserted.execute("BEGIN")
    store.insert_calls(inserted, items)
    inserted.execute("COMMIT")
    saved.close()
    inserted.close()
    assert stored(tmp_path / "b.db") == stored(tmp_path / "a.db")
    assert [row[0] for row in stored(tmp_path / "b.db")] == [f"c{n}" for n in range(len(items))]


def test_insert_calls_never_overwrites_a_stored_call(tmp_path):
    conn = connect(str(tmp_path / "c.db"))
    store.insert_calls(conn, [(full_record("same"), "", None, "agi")])
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_calls(conn, [(full_record("other"), "", None, "agi"), (full_record("same"), "", None, "agi")])
    assert store.call_by_id(conn, "same")["result"] == "ok"
    conn.close()


def test_the_json_columns_are_what_json_dumps_writes():
    record = full_record("j")
    row = store.call_row(record, "ch", None, "agi")
    assert row[12:19] == tuple(json.dumps(getattr(record, column), ensure_ascii=False)
                               for column in ("path", "prompts", "inputs", "transfers", "recordings", "variables",
                                              "log"))
    with pytest.raises(TypeError, match="not JSON serializable"):
        store.call_row(full_record("bad", variables={"x": object()}))


# --- sounds --------------------------------------------------------------------------------------------

def test_known_gives_a_made_prompt_at_once():
    sounds = PlayableSounds(CountingSounds(), Library())
    prompt = TtsPrompt("Hello.")
    assert sounds.known(prompt) is None                         # not made yet: sound_for
    sounds.sound_for(prompt)
    assert sounds.known(prompt) == "/srv/sounds/tts/abc"
    assert sounds.known(TtsPrompt("Hello.")) == "/srv/sounds/tts/abc"     # an equal prompt
    assert sounds.known(prompt) == "/srv/sounds/tts/abc"        # the same object again (by identity)
    assert sounds.known(TtsPrompt("Other.")) is None
    assert sounds.known(SoundPrompt("beep")) == "beep"
    assert sounds.known(FilePrompt("a.wav", "/nowhere/a.wav")) is None   # files are looked at by sound_for


def test_plain_values_are_recognised():
    assert _PLAIN.fullmatch("main>welcome") and not _PLAIN.fullmatch("a b")
