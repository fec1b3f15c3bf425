"""Each expectation against a call record: silent when met, else a Failure whose message points at the
first difference (with a caret under the path, the prompts heard, the inputs made)."""

from __future__ import annotations

from autocall.engine.record import CallRecord
from autocall.scenarios.checks import check


def record(**fields) -> CallRecord:
    base = dict(call_id="sim", script="shop", started_at=0.0, ended_by="hangup",
                path=["main", "login", "account", "bye"],
                prompts=[{"kind": "tts", "text": "Welcome to Acme."}, {"kind": "file", "file": "closed.wav"},
                         {"kind": "tts", "text": "Wrong PIN. Wrong PIN again."}, {"kind": "sound", "name": "beep"}],
                inputs=[{"state": "main", "op": "menu", "keys": "2", "outcome": "match"},
                        {"state": "login", "op": "gather", "keys": "1234", "outcome": "complete"}],
                transfers=[{"destination": "PJSIP/101", "dialstatus": "BUSY"}],
                result="voicemail", variables={"pin": "1234", "attempts": 2})
    base.update(fields)
    return CallRecord(**base)


def failures(expect: dict, **fields) -> list[tuple[str, str, list[str]]]:
    return [(f.key, f.message, f.details) for f in check(expect, record(**fields))]


def test_met_expectations_give_no_failures():
    assert failures({
        "expect_path": ["main", "login", "account", "bye"],
        "expect_visits": ["main", "bye"],
        "expect_not_visited": ["sales"],
        "expect_result": "voicemail",
        "expect_ended_by": "hangup",
        "expect_prompts": [("tts", "Welcome to Acme."), ("file", "closed.wav"),
                           ("tts", "Wrong PIN. Wrong PIN again."), ("sound", "beep")],
        "expect_heard": [("tts", "Acme"), ("tts", "Wrong PIN"), ("tts", "Wrong PIN"), ("sound", "beep")],
        "expect_not_heard": ["Goodbye"],
        "expect_inputs": [{"keys": "2"}, {"op": "gather", "outcome": "complete"}],
        "expect_variables": {"pin": 1234, "attempts": "2"},
        "expect_transfers": [{"destination": "PJSIP/101", "dialstatus": "BUSY"}],
        "expect_optout": False,
    }) == []


def test_path_difference_points_at_the_first_differing_state():
    [(key, message, details)] = failures({"expect_path": ["main", "sales", "bye"]})
    assert key == "expect_path"
    assert message == "path differs at step 2: expected 'sales', got 'login'"
    assert details == ["expected: main -> sales -> bye",
                       "actual:   main -> login -> account -> bye",
                       "                  ^^^^^"]


def test_a_shorter_or_longer_path_says_where_it_stopped():
    assert failures({"expect_path": ["main", "login"]})[0][1] == (
        "path is longer: after 'login' the call went on to 'account'")
    assert failures({"expect_path": ["main", "login", "account", "bye", "x"]})[0][1] == (
        "path is shorter: the call ended in 'bye', expected next 'x'")


def test_visits_must_come_in_order():
    assert failures({"expect_visits": ["account", "login"]})[0][1] == "never entered 'login' after 'account'"


def test_a_forbidden_state_entered_is_named():
    assert failures({"expect_not_visited": ["sales", "account"]})[0][1] == (
        "entered 'account', which this scenario says it must not")


def test_result_false_means_no_result_ran():
    assert failures({"expect_result": False}, result=None) == []
    assert failures({"expect_result": False})[0][1] == "expected no result, got 'voicemail'"
    assert failures({"expect_result": "ok"}, result=None)[0][1] == (
        "expected result 'ok', got no result (no `result` statement ran)")


def test_prompts_are_compared_whole_and_in_full():
    message = failures({"expect_prompts": [("tts", "Welcome to Acme."), ("file", "open.wav")]})[0][1]
    assert message == "prompt 2 differs: expected file open.wav, got file closed.wav"
    [(_, message, details)] = failures({"expect_prompts": [("tts", "Welcome to Acme.")]})
    assert message == "expected 1 prompt, heard 4; the first extra is file closed.wav"
    assert details[:3] == ["heard:", '    1. "Welcome to Acme."', " >  2. file closed.wav"]


def test_heard_parts_are_found_in_order_as_a_stream():
    # Two parts of one prompt, in order, both match; the same text twice must be heard twice.
    assert failures({"expect_heard": [("tts", "Wrong PIN."), ("tts", "again")]}) == []
    message = failures({"expect_heard": [("tts", "again"), ("tts", "Wrong PIN")]})[0][1]
    assert message == ('never heard "Wrong PIN" after prompt 3 (it was heard earlier: check the order, or how '
                       'many times it is expected)')
    assert failures({"expect_heard": [("tts", "Welcome")] * 2})[0][1].startswith(
        'never heard "Welcome" after prompt 1 (it was heard earlier')


def test_heard_files_and_sounds_match_exactly():
    assert failures({"expect_heard": [("file", "closed")]})[0][1] == "never heard file closed"


def test_not_heard_names_the_prompt_that_said_it():
    assert failures({"expect_not_heard": ["again"]})[0][1] == (
        'heard "again" (prompt 3), which this scenario says it must not')


def test_inputs_compare_only_the_fields_given_but_every_input():
    assert failures({"expect_inputs": [{"keys": "3"}, {}]})[0][1] == (
        "input 1 differs: expected {keys = '3'}, got {state = 'main', op = 'menu', keys = '2', outcome = 'match'}")
    assert failures({"expect_inputs": [{"keys": "2"}]})[0][1] == "expected 1 input, got 2"


def test_variables_use_the_languages_equality():
    assert failures({"expect_variables": {"pin": 1234}}) == []   # a digit string equals the number it spells
    assert failures({"expect_variables": {"pin": "01234"}}) != []  # two strings compare as text
    assert failures({"expect_variables": {"pin": "4321"}})[0][1] == "variable 'pin': expected '4321', got '1234'"


def test_transfers_compare_destination_and_status():
    assert failures({"expect_transfers": [{"destination": "PJSIP/101"}]}) == []
    assert failures({"expect_transfers": [{"destination": "PJSIP/101", "dialstatus": "ANSWER"}]})[0][1] == (
        "transfer 1 differs: expected {destination = 'PJSIP/101', dialstatus = 'ANSWER'}, "
        "got {destination = 'PJSIP/101', dialstatus = 'BUSY'}")


def test_an_unexpected_error_fails_even_a_scenario_that_did_not_mention_it():
    [(key, message, _)] = failures({}, ended_by="error", error="shop.dlg:9: cannot use the text \"x\" as a number")
    assert key == "error" and message.startswith("the call ended with an error: shop.dlg:9:")


def test_an_expected_error_is_matched_by_a_part_of_its_message():
    assert failures({"expect_error": "as a number"}, ended_by="error", error="cannot use \"x\" as a number") == []
    assert failures({"expect_error": "as a number"})[0][1] == (
        "expected an error containing 'as a number', got no error (it ended by hangup)")


def test_ended_by_names_how_it_really_ended():
    assert failures({"expect_ended_by": "caller_hangup"})[0][1] == (
        "expected the call to end by caller_hangup, it ended by hangup")


def test_optout_both_ways():
    assert failures({"expect_optout": True})[0][1] == "expected the caller to opt out, no `optout` ran"
    assert failures({"expect_optout": False}, optout=True)[0][1] == (
        "the caller was opted out (`optout` ran), the scenario says not")
