"""service, fetch, send, notify and dotted reply paths, run in the simulator with canned replies."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from autocall.engine import web as W
from autocall.engine.interpreter import Call
from autocall.engine.record import ENDED_ERROR, ENDED_HANGUP
from autocall.errors import UserError
from autocall.sim.caller import ScriptedCaller
from autocall.sim.channel import SimChannel, SimClock, run_sync
from autocall.sim.runner import parse_settings, simulate
from autocall.sim.web import CannedWeb, load_replies, parse_replies

HEADER = 'dialogue t\nservice crm = "https://crm.example.com/api"\nparam x = ""\nstart main\n\nstate main:\n'
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def run(compile_text):
    def call(body: str, replies: list[dict] = (), keys: str = "", **values):
        result = compile_text(HEADER + body)
        assert result.ok, result.render()
        program = result.program
        record = simulate(program, keys=keys, settings=parse_settings(program, values), now=NOW,
                          replies=parse_replies(list(replies), "test"))
        return record
    return call


def said(record) -> list[str]:
    return [p["text"] for p in record.prompts if p["kind"] == "tts"]


ACCOUNT = {"service": "crm", "method": "GET", "path": "/accounts/5550100",
           "json": {"id": 7, "name": "Ada", "balance": "42.50", "vip": True, "closed": False, "note": None,
                    "items": [{"name": "gold"}, {"name": "silver"}], "owner": {"city": "Rome"}}}


def test_every_field_reads_empty_before_the_statement_runs(run):
    record = run('    say "[{a.ok}][{a.status}][{a.error}][{a.data.x}]"\n'
                 '    fetch a from crm "/x"\n', [])
    assert said(record) == ["[][][][]"]


def test_dotted_paths_read_json_by_the_language_rules(run):
    record = run('    fetch a from crm "/accounts/{caller}"\n'
                 '    say "{a.ok} {a.status} [{a.error}] {a.data.id} {a.data.name} {a.data.balance}"\n'
                 '    say "{a.data.vip} {a.data.closed} [{a.data.note}] [{a.data.missing.deeper}] [{a.data.owner}]"\n'
                 '    say "{a.data.items.0.name} {a.data.items.1.name} [{a.data.items.2.name}] {a.data.owner.city}"\n'
                 '    if a.data.id + 1 == 8 and a.data.vip and len(a.data.items) == 2 and len(a.data.owner) == 1:\n'
                 '        say "numbers, flags and counts"\n'
                 '    if len(a.data.name) == 3 and len(a.data.missing) == 0:\n'
                 '        say "text length"\n',
                 [ACCOUNT], caller="5550100")
    assert said(record) == ["1 200 [] 7 Ada 42.50", "1 0 [] [] []", "gold silver [] Rome",
                            "numbers, flags and counts", "text length"]


def test_path_values_are_one_encoded_segment_and_with_pairs_are_the_query(run):
    record = run('    fetch a from crm "/accounts/{caller}/{x}" with q = caller, n = 5\n',
                 [], caller="../x", x="..")
    assert record.requests[0]["path"] == "/accounts/..%2Fx/%2E%2E"
    assert record.requests[0]["query"] == {"q": "../x", "n": "5"}
    assert record.requests[0]["error"] == "no reply for GET crm /accounts/..%2Fx/%2E%2E"
    assert record.requests[0]["status"] == 0 and record.requests[0]["ok"] == 0


def test_send_posts_a_json_object_and_secret_values_show_as_stars(run):
    record = run('    gather pin digits 4 secret\n'
                 '    send crm "/checks/{pin}" with pin = pin, n = 5, t = "five", both = "{pin}!" into c\n'
                 '    if c.data.valid:\n'
                 '        say "valid"\n',
                 [{"service": "crm", "method": "POST", "path_prefix": "/checks/", "json": {"valid": True}}],
                 keys="1234")
    assert said(record) == ["valid"]
    entry = record.requests[0]
    assert entry["path"] == "/checks/***" and entry["method"] == "POST"
    assert entry["body"] == {"pin": "***", "n": 5, "t": "five", "both": "***"}
    assert "1234" not in json.dumps(record.simulate_json()) + json.dumps(record.log)


def test_faults_give_ok_0_with_a_clear_error_and_the_call_goes_on(run):
    replies = [{"service": "crm", "path": "/500", "status": 500, "json": {}},
               {"service": "crm", "path": "/html", "body": "<html>down</html>"},
               {"service": "crm", "path": "/empty", "body": ""},
               {"service": "crm", "path": "/refused", "error": "connection refused"},
               {"service": "crm", "path": "/slow", "delay": "4s", "json": {}},
               {"service": "crm", "path": "/late", "delay": "1s", "json": {"x": 1}}]
    body = "".join(f'    fetch r{n} from crm "/{name}"\n    say "{name}: {{r{n}.ok}} {{r{n}.status}} {{r{n}.error}}"\n'
                   for n, name in enumerate(["500", "html", "empty", "refused", "slow", "late"]))
    record = run(body + '    result "went on"\n', replies)
    assert said(record) == ["500: 0 500 HTTP 500", "html: 0 200 reply is not JSON", "empty: 1 200 ",
                            "refused: 0 0 connection refused", "slow: 0 0 timeout after 3s", "late: 1 200 "]
    assert record.result == "went on" and record.ended_by == ENDED_HANGUP
    assert record.duration == pytest.approx(4.0)          # the 3 s timeout and the 1 s delay, on the clock


def test_first_matching_reply_wins_and_method_filters(run):
    replies = [{"service": "crm", "method": "POST", "path": "/a", "json": {"v": "post"}},
               {"service": "crm", "path_prefix": "/a", "json": {"v": "prefix"}},
               {"service": "crm", "path": "/a", "json": {"v": "exact"}}]
    record = run('    fetch a from crm "/a"\n    say "{a.data.v}"\n', replies)
    assert said(record) == ["prefix"]


def test_notify_is_listed_with_its_body_and_does_not_wait(run):
    record = run('    notify crm "/events/{caller}" with kind = "done", n = 2\n    say "after"\n', caller="5550100")
    assert record.notifications == [{"service": "crm", "path": "/events/5550100", "body": {"kind": "done", "n": 2}}]
    assert said(record) == ["after"] and record.requests == []


def test_a_notify_that_cannot_be_queued_ends_the_call_in_error(compile_text):
    program = compile_text(HEADER + '    notify crm "/e"\n    say "never"\n').program

    class Refusing(CannedWeb):
        async def notify(self, notice):
            raise W.NotifyFailed("database is read-only")

    clock = SimClock(NOW.timestamp())
    call = Call(program, SimChannel(ScriptedCaller(""), clock), clock, call_id="n", web=Refusing([], clock))
    record = run_sync(call.run())
    assert record.ended_by == ENDED_ERROR and "notify to crm could not be queued (database is read-only)" in record.error
    assert record.prompts == []


def test_the_engine_without_a_web_port_answers_nothing(compile_text):
    program = compile_text(HEADER + '    fetch a from crm "/x"\n    say "{a.error}"\n').program
    clock = SimClock(NOW.timestamp())
    record = run_sync(Call(program, SimChannel(ScriptedCaller(""), clock), clock, call_id="x").run())
    assert said(record) == ["no reply for GET crm /x"]


def test_a_request_is_in_the_call_log_without_query_or_body(run):
    record = run('    fetch a from crm "/accounts/{caller}" with q = "private"\n', [ACCOUNT], caller="5550100")
    [entry] = [line for line in record.log if "request" in line]
    assert entry["request"] == {"method": "GET", "service": "crm", "path": "/accounts/5550100", "status": 200,
                                "ok": 1, "error": "", "ms": 0.0}
    assert entry["message"] == "GET crm /accounts/5550100: 200 (0 ms)" and "private" not in json.dumps(entry)


# -- canned reply files ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ('[[reply]]\nservice = "crm"\nstauts = 200\n', "reply 1: unknown key 'stauts' (did you mean 'status'?)"),
    ('[[reply]]\nmethod = "GET"\n', "reply 1: 'service' is missing"),
    ('[[reply]]\nservice = "crm"\nmethod = "PUT"\n', "reply 1: method = 'PUT'; write \"GET\" (fetch) or \"POST\""),
    ('[[reply]]\nservice = "crm"\npath = "x"\n', "reply 1: path = 'x'; a path starts with '/'"),
    ('[[reply]]\nservice = "crm"\npath = "/x"\npath_prefix = "/"\n', "give 'path' or 'path_prefix', not both"),
    ('[[reply]]\nservice = "crm"\nstatus = 99\n', "status = 99; an HTTP status is a number from 100 to 599"),
    ('[[reply]]\nservice = "crm"\njson = {}\nbody = ""\n', "give 'json' or 'body', not both"),
    ('[[reply]]\nservice = "crm"\ndelay = "4"\n', "reply 1: delay"),
    ('[[replies]]\nservice = "crm"\n', "unknown table 'replies'"),
    ('[[reply]\n', "not valid TOML"),
])
def test_a_bad_replies_file_is_one_clear_line(tmp_path, text, message):
    path = tmp_path / "replies.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as caught:
        load_replies(str(path))
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_a_missing_replies_file_is_named():
    with pytest.raises(UserError, match="no such file"):
        load_replies("/nonexistent/replies.toml")


# -- random replies never break a call ------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20)
segments = st.text(alphabet="abcxyz0123_", min_size=1, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=json_values, paths=st.lists(st.lists(segments, min_size=1, max_size=4), min_size=1, max_size=5))
def test_random_json_replies_never_crash_a_call_and_every_path_reads_a_value(compile_text, data, paths):
    reads = "".join(f'    say "[{{a.data.{".".join(p)}}}]"\n    if len(a.data.{".".join(p)}) >= 0:\n'
                    f'        log a.data.{".".join(p)}\n' for p in paths)
    result = compile_text(HEADER + '    fetch a from crm "/x"\n' + reads)
    assert result.ok, result.render()
    body = json.dumps(data).encode()
    reply = W.reply_from_http(200, body, method="GET", service="crm", shown_path="/x", elapsed_ms=0)
    for path in paths:
        value = reply.read(["data", *path])
        assert type(value) in (str, int)
    record = simulate(result.program, now=NOW, replies=parse_replies(
        [{"service": "crm", "body": body.decode()}], "test"))
    assert record.ended_by == ENDED_HANGUP, record.error
    assert len(said(record)) == len(paths)
