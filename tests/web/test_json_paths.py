"""Reading JSON replies: the value rules, path building, and (hypothesis) no JSON value or path ever fails a read."""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from autocall.engine.json_paths import count_items, parse_json, read_path
from autocall.engine.web import Reply, build_path, encode_segment, split_template, timed_out

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5),
    max_leaves=15)
SEGMENT = st.one_of(st.sampled_from(["0", "1", "items", "name", "", "-1", "01", "x.y"]), st.text(max_size=4))


def test_the_value_rules():
    data = parse_json(b'{"t": "x", "w": 42, "f": 42.50, "e": 1e3, "yes": true, "no": false, "nil": null,'
                      b' "o": {"a": 1}, "l": [10, {"name": "Ann"}], "big": ' + b"9" * 1200 + b"}")
    assert [read_path(data, p) for p in ("t", "w", "f", "e", "yes", "no", "nil", "o", "l", "l.0", "l.1.name",
                                         "l.2", "missing", "t.x", "o.a.b")] == \
        ["x", 42, "42.50", "1e3", 1, 0, "", "", "", 10, "Ann", "", "", "", ""]
    assert read_path(data, "big") == "9" * 1200             # past the engine's number bound: text as written
    assert count_items(data["o"]) == 1 and count_items(data["l"]) == 2 and count_items(data["t"]) is None


def test_bodies_that_are_not_json():
    for body in (b"<html>", b"{", b"NaN", b"[1, Infinity]", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000):
        try:
            parse_json(body)
        except ValueError:
            continue
        raise AssertionError(body[:20])
    assert parse_json(b"") == "" and parse_json(b"\xef\xbb\xbf[1]") == [1]


def test_reply_fields_and_paths():
    reply = Reply(1, 200, "", {"items": [{"name": "Ann"}], "n": 3}, "GET", "crm", "/a", 12.0)
    assert reply.read("ok") == 1 and reply.read("status") == 200 and reply.read("error") == ""
    assert reply.read("data.items.0.name") == "Ann" and reply.read("data") == "" and reply.read("ok.x") == ""
    assert reply.count("data.items") == 1 and reply.count("data") == 2 and reply.count("data.n") is None
    assert reply.entry() == {"method": "GET", "service": "crm", "path": "/a", "status": 200, "ok": 1, "error": "",
                             "ms": 12.0}


def test_path_values_are_one_segment_each():
    assert build_path(["/accounts/", ""], ["../x"])[0] == "/accounts/..%2Fx"
    assert build_path(["/a/", "/b/", ""], [".", ".."])[0] == "/a/%2E/b/%2E%2E"
    assert encode_segment("a b?c#d/é") == "a%20b%3Fc%23d%2F%C3%A9" and encode_segment(5550100) == "5550100"
    assert build_path(["/pins/", ""], ["1234"], is_secret=lambda v: True) == ("/pins/1234", "/pins/***")
    assert split_template("/accounts/{caller}/x") == (["/accounts/", "/x"], ["caller"])
    assert timed_out(3) == "timeout after 3s" and timed_out(2.5) == "timeout after 2.5s"


@settings(max_examples=100, deadline=None)
@given(JSON, st.lists(SEGMENT, max_size=5))
def test_any_json_reply_reads_as_a_value_or_empty(value, segments):
    data = parse_json(json.dumps(value).encode())
    result = read_path(data, segments)
    assert isinstance(result, (str, int)) and not isinstance(result, bool)
    reply = Reply(1, 200, "", data)
    assert reply.read(["data", *segments]) == result
    count = reply.count(["data", *segments])
    assert count is None or count >= 0


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_no_value_leaves_its_segment(value):
    path, _ = build_path(["/a/", "/b"], [value])
    segment = path[len("/a/"):-len("/b")]
    assert "/" not in segment and "?" not in segment and "#" not in segment and segment not in (".", "..")
