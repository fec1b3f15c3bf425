"""The server's pure parts and small machines, without sockets: routing, params, log lines, the record
writer (batches, locks held by another process, a bad record), the prompt-name memo."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import time

import pytest
from hypothesis import given, strategies as st
from twisted.internet import defer, task

from autocall.agi.logs import CallLog, LogfmtFormatter, logfmt_value, setup_logging
from autocall.agi.params import environment_builtins, request_params
from autocall.agi.protocol import Environment
from autocall.agi.records import RecordWriter
from autocall.agi.routing import RouteRefused, ScriptRouter
from autocall.agi.service import endpoint_description
from autocall.agi.sounds import PlayableSounds
from autocall.engine.channel import ChannelFailure, FilePrompt, SoundPrompt, TtsPrompt
from autocall.engine.ir import Program
from autocall.engine.record import CallRecord
from autocall.errors import UserError
from tests.server.helpers import CountingSounds, Library


def env(script: str, *args: str, **fields: str) -> Environment:
    data = {"agi_network_script": script, **{f"agi_{k}": v for k, v in fields.items()}}
    data.update({f"agi_arg_{n}": value for n, value in enumerate(args, start=1)})
    return Environment(data)


def program(*params: tuple[str, str | None]) -> Program:
    return Program({"dialogue": "t", "params": [{"name": n, "default": d} for n, d in params]})


# --- routing ------------------------------------------------------------------------------------

@pytest.mark.parametrize("requested, expected", [
    ("support", "support"), ("support?company=Acme", "support"), ("sales/reminder", "sales/reminder"),
    ("support.dlg", "support"), ("sales%2Freminder", "sales/reminder"),
])
def test_names_inside_the_folder_resolve(tmp_path, requested, expected):
    route = ScriptRouter(str(tmp_path)).resolve(env(requested))
    assert route.name == expected and route.path == str(tmp_path.resolve() / f"{expected}.dlg")


@pytest.mark.parametrize("requested", [
    "", "..", "../x", "a/../../x", "/etc/passwd", "%2Fetc%2Fpasswd", "..%2Fx", "a//b", "./a", "a\\b", "a\x00b",
    ".dlg", "sales/.dlg", "?x=1",
])
def test_names_escaping_the_folder_are_refused(tmp_path, requested):
    with pytest.raises(RouteRefused):
        ScriptRouter(str(tmp_path)).resolve(env(requested))


def test_a_link_out_of_the_folder_is_refused_and_a_link_inside_is_followed(tmp_path):
    scripts = tmp_path / "scripts"
    (scripts / "real").mkdir(parents=True)
    (scripts / "real" / "x.dlg").write_text("")
    (scripts / "inside.dlg").symlink_to(scripts / "real" / "x.dlg")
    (scripts / "out").symlink_to(tmp_path)
    router = ScriptRouter(str(scripts))
    assert router.resolve(env("inside")).path == str(scripts / "real" / "x.dlg")
    with pytest.raises(RouteRefused, match="symbolic link"):
        router.resolve(env("out/anything"))


@given(st.text(alphabet="ab./\\%?=\x00", max_size=12))
def test_no_request_name_resolves_outside_the_folder(tmp_path_factory, name):
    root = tmp_path_factory.getbasetemp() / "routing-root"
    root.mkdir(exist_ok=True)
    router = ScriptRouter(str(root))
    try:
        route = router.resolve(env(name))
    except RouteRefused:
        return
    assert route.path.startswith(str(root.resolve()) + "/")


# --- params -------------------------------------------------------------------------------------

def test_query_beats_named_arguments_and_positionals_fill_nothing():
    given_params, notes = request_params(program(("a", None), ("b", None), ("c", "3"), ("d", None)),
                                         env("s?a=Q&zzz=1", "b=N", "a=lost", "P1", "P2", "P3"))
    assert given_params == {"a": "Q", "b": "N"}
    assert any("zzz" in note for note in notes)
    assert any("3 positional AGI argument(s) ignored" in note for note in notes)


def test_an_argument_whose_name_is_no_param_fills_nothing():
    given_params, notes = request_params(program(("a", None), ("b", None)), env("s", "x=1", "a=b=c"))
    assert given_params == {"a": "b=c"}
    assert any("'x'" in note for note in notes) and not any("1" in note for note in notes)


def test_no_params_still_notes_positional_arguments():
    assert request_params(program(), env("s?x=1", "y")) == (
        {}, ["1 positional AGI argument(s) ignored: only NAME=VALUE arguments and the query string fill params"])


def test_builtins_from_the_environment():
    assert environment_builtins(env("s", callerid="unknown", calleridname="", dnid="unknown", extension="s",
                                    channel="SIP/x")) == \
        {"caller": "", "caller_name": "", "called": "s", "channel": "SIP/x", "attempt": 1}
    assert environment_builtins(env("s", callerid="+3906", calleridname="Ann", dnid="200", extension="s"))[
        "called"] == "200"


# --- logs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, shown", [
    ("plain", "plain"), ("a b", '"a b"'), ("", '""'), ("x=1", '"x=1"'), ('say "hi"', '"say \\"hi\\""'),
    ("two\nlines", '"two\\nlines"'), (42, "42"), ("main>login", "main>login"),
])
def test_logfmt_values(value, shown):
    assert logfmt_value(value) == shown


def test_a_call_log_line_carries_the_call_id_and_splits_back():
    stream = io.StringIO()
    handler = setup_logging("debug", stream)
    try:
        call_log = CallLog(logging.getLogger("autocall.agi.test"), {"call_id": "1795.1"})
        call_log.warning("sound 'x y' is missing", fields={"script": "support", "error": None})
    finally:
        logging.getLogger("autocall").removeHandler(handler)
    line = stream.getvalue().strip()
    assert "\n" not in line and line.startswith("time=") and line.endswith("call_id=1795.1 script=support")
    assert 'msg="sound \'x y\' is missing"' in line and "level=warning" in line


def test_exceptions_stay_on_one_line():
    record = logging.LogRecord("autocall.x", logging.ERROR, "", 0, "boom", (), None)
    try:
        raise ValueError("bad")
    except ValueError:
        import sys
        record.exc_info = sys.exc_info()
    line = LogfmtFormatter().format(record)
    assert "\n" not in line and "traceback=" in line and "ValueError: bad" in line


def test_an_unknown_level_is_a_user_error():
    with pytest.raises(UserError, match="not a level"):
        setup_logging("loud")


def test_endpoint_strings_escape_ipv6_colons():
    assert endpoint_description("127.0.0.1", 4573) == "tcp:4573:interface=127.0.0.1:backlog=4096"
    assert endpoint_description("::1", 0, 10) == "tcp:0:interface=\\:\\:1:backlog=10"


# --- the record writer ----------------------------------------------------------------------------

def record(call_id: str, **fields) -> CallRecord:
    made = CallRecord(call_id=call_id, script="s", started_at=1000.0, ended_by="hangup", ended_at=1001.0)
    for key, value in fields.items():
        setattr(made, key, value)
    return made


@pytest.fixture
def writer(tmp_path):
    clock = task.Clock()
    made = RecordWriter(str(tmp_path / "w.db"), clock=clock, batch_delay=0.1, chunk=3, checkpoint_every=3600)
    made.open()
    yield made, clock, str(tmp_path / "w.db")
    made.close()


def rows(path: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT call_id FROM calls ORDER BY rowid")]
    finally:
        conn.close()


def test_records_are_batched_and_written_in_chunks(writer):
    made, clock, path = writer
    statements = []
    made._conn.set_trace_callback(statements.append)
    for n in range(7):
        made.save(record(f"c{n}"))
    clock.advance(0.05)
    assert rows(path) == []                                    # waiting for the batch to gather
    flushed = made.flush()
    clock.advance(0)
    assert rows(path) == [f"c{n}" for n in range(7)] and flushed.called and made.written == 7
    assert statements.count("COMMIT") == 3                     # chunks of 3: 3 + 3 + 1


def test_a_database_locked_by_another_process_delays_but_loses_nothing(writer, caplog):
    made, clock, path = writer
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")                              # the dialer holds the write lock
    made.save(record("locked"))
    made.add_dnc("+15550100", "optout")
    clock.advance(0.1)
    assert made.pending == 2
    caplog.set_level(logging.WARNING, logger="autocall")
    for _ in range(220):
        clock.advance(0.05)
    assert any("locked by another process" in r.getMessage() for r in caplog.records)
    other.execute("COMMIT")
    clock.advance(0.05)
    assert made.pending == 0 and rows(path) == ["locked"]
    other.close()


def test_one_bad_record_costs_only_itself(writer, caplog):
    made, clock, path = writer
    made.save(record("good1"))
    made.save(record("bad", variables={"x": object()}))      # not JSON: save_call fails for this one
    made.save(record("good2"))
    caplog.set_level(logging.WARNING, logger="autocall")
    clock.advance(0.1)
    assert rows(path) == ["good1", "bad", "good2"] and made.failed == 0 and made.salvaged == 1
    stored = sqlite3.connect(path).execute("SELECT variables, error FROM calls WHERE call_id = 'bad'").fetchone()
    assert stored[0] == "{}" and "left out: variables" in stored[1]
    logged = [r for r in caplog.records if getattr(r, "fields", {}).get("call_id") == "bad"]
    assert logged and '"call_id": "bad"' in logged[0].fields["record"]        # kept in the log, in full


def test_a_record_that_cannot_be_written_never_costs_the_rest_of_its_batch(tmp_path, caplog):
    """A value JSON cannot write (a 5,000-digit number) and a text SQLite cannot take (a lone surrogate from
    a peer) each cost only their own record, which is still stored, without the part that failed."""
    clock = task.Clock()
    made = RecordWriter(str(tmp_path / "b.db"), clock=clock, batch_delay=0.1, chunk=64, checkpoint_every=3600)
    made.open()
    caplog.set_level(logging.WARNING, logger="autocall")
    for n in range(41):
        fields = {}
        if n == 7:
            fields = {"variables": {"n": 10 ** 5000}}
        if n == 30:
            fields = {"caller": "555\udc80"}
        made.save(record(f"b{n}", **fields))
    clock.advance(0.1)
    made.close()
    assert rows(str(tmp_path / "b.db")) == [f"b{n}" for n in range(41)]
    assert made.failed == 0 and made.salvaged == 2


def test_a_full_disk_keeps_the_records_queued_and_retries_them(tmp_path, caplog):
    """SQLITE_FULL (the database at its size limit stands in for a full disk) is transient: one clear line
    naming the file and what to do, the records wait, and they are written once there is room."""
    path = str(tmp_path / "full.db")
    made = RecordWriter(path, clock=(clock := task.Clock()), batch_delay=0.1, chunk=64, checkpoint_every=3600)
    made.open()
    pages = made._conn.execute("PRAGMA page_count").fetchone()[0]
    made._conn.execute(f"PRAGMA max_page_count = {pages}")
    caplog.set_level(logging.WARNING, logger="autocall")
    for n in range(50):
        made.save(record(f"f{n}", variables={"pad": "x" * 2000}))
    clock.advance(0.1)
    assert made.pending == 50 and made.failed == 0 and rows(path) == []
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 1 and path in lines[0] and "disk" in lines[0] and "full" in lines[0]
    assert "free space" in lines[0] and "Traceback" not in lines[0]
    for _ in range(5):
        clock.advance(1.0)                         # still full: retried, never given up, no line per try
    assert made.pending == 50 and len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    made._conn.execute("PRAGMA max_page_count = 1073741823")      # space freed
    clock.advance(1.0)
    for _ in range(3):
        clock.advance(0)
    assert made.pending == 0 and len(rows(path)) == 50
    made.close()


def test_a_database_the_server_cannot_write_is_refused_at_open(tmp_path):
    """A read-only database (SQLite's own read-only mode: the tests run as root, where file modes do not
    stop a write) is a one-line UserError at open, not records lost later."""
    from autocall.errors import UserError
    from autocall.store.db import connect
    path = str(tmp_path / "ro.db")
    connect(path).close()

    def read_only(database):
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        return conn

    made = RecordWriter(path, clock=task.Clock(), connect=read_only)
    with pytest.raises(UserError) as refused:
        made.open()
    message = str(refused.value)
    assert message.startswith(path) and "read-only" in message and "\n" not in message
    assert not made.running


def test_a_damaged_database_is_one_line_naming_the_file_and_the_fix(tmp_path):
    from autocall.errors import UserError
    from autocall.store.db import connect
    path = tmp_path / "damaged.db"
    path.write_bytes(b"this is not SQLite" * 400)
    with pytest.raises(UserError) as refused:
        connect(str(path))
    message = str(refused.value)
    assert message.startswith(str(path)) and "damaged" in message and "backup" in message


def test_close_writes_everything_still_queued(tmp_path):
    made = RecordWriter(str(tmp_path / "c.db"), clock=task.Clock(), batch_delay=10)
    made.open()
    for n in range(100):
        made.save(record(f"q{n}"))
    made.close()
    assert len(rows(str(tmp_path / "c.db"))) == 100


def test_queries_run_on_the_same_connection(writer):
    made, _, _ = writer
    result = []
    made.query(lambda conn, x: conn.execute("SELECT ?", (x,)).fetchone()[0], 7).addCallback(result.append)
    assert result == [7]


# --- prompt names ----------------------------------------------------------------------------------

def resolved(d: defer.Deferred):
    out = []
    d.addBoth(out.append)
    return out[0]


def test_tts_names_are_remembered_and_given_as_absolute_paths():
    inner = CountingSounds()
    sounds = PlayableSounds(inner, Library())
    prompt = TtsPrompt("Hello.")
    assert resolved(sounds.sound_for(prompt)) == "/srv/sounds/tts/abc"
    assert resolved(sounds.sound_for(TtsPrompt("Hello."))) == "/srv/sounds/tts/abc"
    assert len(inner.asked) == 1
    assert resolved(sounds.sound_for(SoundPrompt("beep"))) == "beep" and len(inner.asked) == 1


def test_a_file_prompt_is_looked_at_again_when_the_file_changes(tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"one")
    inner = CountingSounds()
    sounds = PlayableSounds(inner, Library())
    prompt = FilePrompt("a.wav", str(audio))
    resolved(sounds.sound_for(prompt))
    resolved(sounds.sound_for(prompt))
    assert len(inner.asked) == 1
    audio.write_bytes(b"longer")
    resolved(sounds.sound_for(prompt))
    assert len(inner.asked) == 2


def test_a_prompt_that_cannot_be_made_is_a_channel_failure_without_its_text():
    from autocall.audio.errors import AudioError
    sounds = PlayableSounds(CountingSounds(AudioError("'your pin is 4739'", "espeak failed")), Library())
    failure = resolved(sounds.sound_for(TtsPrompt("your pin is 4739")))
    assert failure.check(ChannelFailure) and "espeak failed" in str(failure.value)
    assert "4739" not in str(failure.value)
    json.dumps(str(failure.value))


def test_the_wal_checkpointer_never_stops_silently(tmp_path, caplog):
    """Checkpoints that fail (here: the database cannot be opened for a while) are logged once with the
    file and tried again; when they work again it says so and the checkpoints go on."""
    import threading
    from autocall.agi.records import _Checkpointer
    from autocall.store.db import connect
    path = str(tmp_path / "wal.db")
    connect(path).close()
    broken = threading.Event()
    broken.set()

    def flaky(database):
        if broken.is_set():
            raise sqlite3.OperationalError("unable to open database file")
        return connect(database)

    caplog.set_level(logging.WARNING, logger="autocall")
    keeper = _Checkpointer(flaky, path, every=0.005)
    keeper.start()
    try:
        deadline = time.monotonic() + 10
        while keeper.failures < 3 and time.monotonic() < deadline:
            time.sleep(0.005)          # a real thread on an Event's timeout: nothing to inject a clock into
        broken.clear()
        while keeper.checkpoints < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        keeper.stop()
    assert keeper.failures >= 3 and keeper.checkpoints >= 3
    lines = [r.getMessage() for r in caplog.records]
    failed = [line for line in lines if "WAL checkpoint failed" in line]
    assert len(failed) == 1 and path in failed[0] and "tried again" in failed[0]
    assert "WAL checkpoints work again" in lines
