"""One test per rule of the language's semantics (docs/language.md), run in the simulator."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from autocall.engine.channel import FilePrompt, SoundPrompt, TtsPrompt
from autocall.errors import UserError
from autocall.sim.caller import ScriptedCaller
from autocall.sim.channel import SimChannel, SimClock, run_sync
from autocall.sim.runner import parse_settings, simulate
from autocall.engine.interpreter import Call
from tests.fakes.agi_fixtures import run_on_agi
from tests.language.conftest import HEADER


@pytest.fixture(params=["simulator", "agi"])
def runtime(request):
    """Each rule is checked on both runtimes: the simulator, and an AgiChannel against the fake Asterisk."""
    return simulate if request.param == "simulator" else run_on_agi


def _caller(program, runtime):
    def run(body: str, keys: str = "", now: datetime | None = None, header: str = HEADER, **values):
        compiled = program(body, header)
        return runtime(compiled, keys=keys, settings=parse_settings(compiled, values), now=now)
    return run


@pytest.fixture
def call(program, runtime):
    """Compile ``body`` and run one call; keyword arguments are ``--set`` values."""
    return _caller(program, runtime)


@pytest.fixture
def sim_call(program):
    """``call`` in the simulator only: for rules about time passing (the fake Asterisk answers a wait at once,
    so time passes only in the simulator's clock) and about loops longer than the in-memory pump allows."""
    return _caller(program, simulate)


def tts(record) -> list[str]:
    return [p["text"] for p in record.prompts if p["kind"] == "tts"]


# -- lexical rules ----------------------------------------------------------------------------------

def test_hash_starts_a_comment_outside_strings_but_not_inside(call):
    record = call('state main:\n    say "Press # to finish" # a comment\n')
    assert tts(record) == ["Press # to finish"]


def test_string_escapes_quote_and_backslash(call):
    record = call('state main:\n    say "She said \\"hi\\" \\\\ done"\n')
    assert tts(record) == ['She said "hi" \\ done']


def test_interpolation_digits_format_and_literal_braces(call):
    record = call('var code = "1234"\nstate main:\n    say "Code {code}, spelled {code|digits}, {{braces}}."\n')
    assert tts(record) == ["Code 1234, spelled 1 2 3 4, {braces}."]


def test_keys_hash_and_star_written_as_words_or_quoted(call):
    body = ('state main:\n    menu "x":\n        star -> a\n        "#" -> b\n        failure -> a\n'
            'state a:\n    result "star"\nstate b:\n    result "hash"\n')
    assert call(body, keys="*").result == "star"
    assert call(body, keys="#").result == "hash"


def test_durations_in_ms_seconds_and_minutes(sim_call):
    call = sim_call
    start = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    body = ('hours late = "daily 09:02-23:00" in "UTC"\nstate main:\n    wait 500ms\n    wait 1s\n    wait 2m\n'
            '    if within(late):\n        result "after"\n    else:\n        result "before"\n')
    assert call(body, now=start).result == "after"


# -- declarations -----------------------------------------------------------------------------------

def test_dialogue_name_is_the_script_name(call):
    assert call("state main:\n    hangup\n").script == "t"


def test_voice_and_rate_reach_the_channel_with_every_tts_prompt(program):
    compiled = program('voice "en-us"\nrate 150\nstate main:\n    say "Hi"\n')
    seen = []

    class Recording(SimChannel):
        async def play(self, prompt, interrupt_keys=""):
            seen.append(prompt)
            return await super().play(prompt, interrupt_keys)

    clock = SimClock(0)
    run_sync(Call(compiled, Recording(ScriptedCaller(""), clock), clock, call_id="x").run())
    assert seen == [TtsPrompt("Hi", "en-us", 150)]


def test_param_default_and_override(call):
    body = 'param company = "Acme"\nstate main:\n    say "Welcome to {company}."\n'
    assert tts(call(body)) == ["Welcome to Acme."]
    assert tts(call(body, company="Globex")) == ["Welcome to Globex."]


def test_required_param_must_be_supplied(program):
    compiled = program('param name\nstate main:\n    say "Hi {name}"\n')
    with pytest.raises(UserError, match="param 'name'.*required"):
        parse_settings(compiled, {})
    record = simulate(compiled, settings=parse_settings(compiled, {"name": "Ann"}))
    assert tts(record) == ["Hi Ann"]


def test_var_has_its_initial_value_and_can_be_set(call):
    record = call('var n = 2 + 3\nstate main:\n    set n = n * 2\n    result n\n')
    assert record.result == "10"
    assert record.variables == {"n": 10}


def test_prompt_kinds_appear_in_the_trace(call, tmp_path, monkeypatch):
    from tests.language.audio_fixtures import write_wav
    write_wav(tmp_path / "hello.wav")
    body = ('prompt hi = "Hello"\nprompt clip = file "hello.wav"\nprompt tone = sound "beep"\n'
            'state main:\n    play hi\n    play clip\n    play tone\n    play file "hello.wav"\n    play sound "x"\n')
    record = call(body)
    assert record.prompts == [{"kind": "tts", "text": "Hello"}, {"kind": "file", "file": "hello.wav"},
                              {"kind": "sound", "name": "beep"}, {"kind": "file", "file": "hello.wav"},
                              {"kind": "sound", "name": "x"}]


def test_hours_with_time_zone_and_within(call):
    body = ('hours office = "mon-fri 09:00-18:00, sat 10:00-13:00" in "Europe/Rome"\n'
            'state main:\n    if within(office):\n        result "open"\n    else:\n        result "closed"\n')
    thursday_10_rome = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
    thursday_19_rome = datetime(2026, 11, 26, 18, 0, tzinfo=timezone.utc)
    saturday_12_rome = datetime(2026, 11, 28, 11, 0, tzinfo=timezone.utc)
    sunday_12_rome = datetime(2026, 11, 29, 11, 0, tzinfo=timezone.utc)
    assert call(body, now=thursday_10_rome).result == "open"
    assert call(body, now=thursday_19_rome).result == "closed"
    assert call(body, now=saturday_12_rome).result == "open"
    assert call(body, now=sunday_12_rome).result == "closed"


def test_start_names_the_first_state(call):
    record = call("state other:\n    hangup\nstate main:\n    goto other\n")
    assert record.path == ["main", "other"]


# -- statements ---------------------------------------------------------------------------------------

def test_answer_is_harmless_twice(call):
    assert call("state main:\n    answer\n    answer\n").ended_by == "hangup"


def test_say_is_not_interruptible_keys_wait_for_the_next_input(call):
    body = 'state main:\n    say "Long message"\n    menu "Choose":\n        1 -> main\n        failure -> main\n'
    record = call(body.replace("1 -> main", "1 -> done") + "state done:\n    result \"got 1\"\n", keys="1")
    assert record.result == "got 1"
    assert tts(record) == ["Long message", "Choose"]


def test_falling_off_a_state_ends_the_call_like_hangup(call):
    record = call('state main:\n    say "bye"\n')
    assert record.ended_by == "hangup" and record.path == ["main"]


def test_hangup_ends_the_call(call):
    record = call('state main:\n    hangup\n')
    assert record.ended_by == "hangup"


def test_goto_ends_the_current_state_and_path_lists_repeats(call):
    body = ('var n = 0\nstate main:\n    set n = n + 1\n    if n < 3:\n        wait 1s\n        goto main\n'
            '    result "{n}"\n')
    record = call(body)
    assert record.path == ["main", "main", "main"] and record.result == "3"


def test_if_elif_else_take_the_first_true_branch(call):
    body = ('param x\nstate main:\n    if x == 1:\n        result "one"\n    elif x == 2:\n        result "two"\n'
            '    else:\n        result "other"\n')
    assert [call(body, x=v).result for v in ("1", "2", "9")] == ["one", "two", "other"]


def test_result_is_null_when_no_result_ran(call):
    assert call("state main:\n    hangup\n").result is None


def test_log_lines_go_to_the_call_log(call):
    record = call('var n = 4\nstate main:\n    log "n is {n}"\n')
    assert [entry["message"] for entry in record.log] == ["n is 4"]
    assert record.log[0]["line"] == 5


def test_optout_marks_the_record_and_calls_the_hook(program):
    compiled = program('state main:\n    optout\n    say "You will not be called again."\n')
    calls = []
    clock = SimClock(0)
    record = run_sync(Call(compiled, SimChannel(ScriptedCaller(""), clock), clock, call_id="c1",
                           builtins={"caller": "5550100"}, on_optout=lambda c: calls.append(c.env["caller"])).run())
    assert record.optout is True and calls == ["5550100"]


def test_record_stores_the_recording_name_in_its_variable(call):
    record = call('state main:\n    record message max 30s silence 3s beep\n    result message\n')
    assert record.result.endswith("-message.wav") and record.recordings == [record.result]


def test_record_stops_on_its_terminator_key_and_keeps_the_rest(call):
    body = ('state main:\n    record memo terminator "*"\n    gather x digits 1\n    result x\n')
    assert call(body, keys="*5").result == "5"


def test_caller_hanging_up_during_a_recording_keeps_the_message(call):
    record = call('state main:\n    record message\n    say "thanks"\n', keys="h")
    assert record.ended_by == "caller_hangup" and record.recordings and record.variables["message"]


def test_wait_is_silence(call):
    record = call("state main:\n    wait 2s\n")
    assert record.prompts == [] and record.ended_by == "hangup"


# -- transfer -------------------------------------------------------------------------------------------

TRANSFER = 'state main:\n    transfer "PJSIP/101" timeout 20s\n    say "Nobody answered: {dialstatus}."\n'


def test_transfer_in_simulation_returns_noanswer_and_the_next_statement_runs(call):
    record = call(TRANSFER)
    assert record.transfers == [{"destination": "PJSIP/101", "dialstatus": "NOANSWER"}]
    assert tts(record) == ["Nobody answered: NOANSWER."]


def test_transfer_answered_ends_the_call_with_hangup(call):
    record = call(TRANSFER, dialstatus="ANSWER")
    assert record.ended_by == "hangup" and tts(record) == []
    assert record.transfers == [{"destination": "PJSIP/101", "dialstatus": "ANSWER"}]


def test_transfer_busy_sets_dialstatus(call):
    assert tts(call(TRANSFER, dialstatus="BUSY")) == ["Nobody answered: BUSY."]


def test_transfer_destination_is_an_expression(call):
    record = call('param ext = "42"\nstate main:\n    transfer "PJSIP/" + ext callerid "Acme <100>"\n')
    assert record.transfers[0]["destination"] == "PJSIP/42"


# -- ring groups, announcements, recorded conversations, queues ------------------------------------------

GROUP = ('state main:\n    transfer "PJSIP/101", "PJSIP/102", "PJSIP/103"{options}\n'
         '    say "Nobody answered: {{dialstatus}}."\n')


def entries(record) -> list[tuple[str, str]]:
    return [(t["destination"], t["dialstatus"]) for t in record.transfers]


def test_ring_all_is_the_default_and_lists_every_destination_rung(call):
    record = call(GROUP.format(options=" timeout 20s"))
    assert entries(record) == [("PJSIP/101", "NOANSWER"), ("PJSIP/102", "NOANSWER"), ("PJSIP/103", "NOANSWER")]
    assert tts(record) == ["Nobody answered: NOANSWER."]


def test_ring_all_answered_by_the_first_ends_the_call(call):
    record = call(GROUP.format(options=" ring all"), dialstatus="ANSWER")
    assert record.ended_by == "hangup" and tts(record) == []
    assert entries(record) == [("PJSIP/101", "ANSWER"), ("PJSIP/102", "NOANSWER"), ("PJSIP/103", "NOANSWER")]


def test_ring_in_order_tries_each_destination_and_keeps_the_last_status(call):
    record = call(GROUP.format(options=" ring in order timeout 15s"), dialstatus="BUSY")
    assert entries(record) == [("PJSIP/101", "BUSY"), ("PJSIP/102", "BUSY"), ("PJSIP/103", "BUSY")]
    assert tts(record) == ["Nobody answered: BUSY."]


def test_ring_in_order_stops_at_the_first_answer(call):
    record = call(GROUP.format(options=" ring in order"), dialstatus="ANSWER")
    assert entries(record) == [("PJSIP/101", "ANSWER")] and record.ended_by == "hangup"


@pytest.mark.parametrize("value", ["1&PJSIP/666", "1,,A(x)", "1|2", "1(x)", "1\nx", ""])
def test_a_value_with_dial_metacharacters_refuses_the_whole_group(call, value):
    body = ('param ext\nstate main:\n    transfer "PJSIP/200", "PJSIP/" + ext ring in order\n'
            '    result dialstatus\n')
    record = call(body, ext=value) if value else call(body.replace('"PJSIP/" + ext', 'ext'), ext=value)
    assert record.result == "INVALIDARGS" and record.ended_by == "hangup"
    assert [status for _d, status in entries(record)] == ["INVALIDARGS", "INVALIDARGS"]
    assert "transfer not attempted" in record.log[0]["message"]


def test_a_ring_group_destination_built_from_a_secret_is_shown_masked(call):
    body = ('state main:\n    gather pin digits 4 secret\n    transfer "PJSIP/100", "PJSIP/" + pin ring in order\n')
    record = call(body, keys="4739")
    assert entries(record) == [("PJSIP/100", "NOANSWER"), ("PJSIP/***", "NOANSWER")]


def test_a_caller_id_with_dial_metacharacters_is_refused_too(call):
    body = 'param who\nstate main:\n    transfer "PJSIP/200" callerid who\n    result dialstatus\n'
    record = call(body, who="Eve <1>,,A(x)")
    assert record.result == "INVALIDARGS" and "'who'" in record.log[0]["message"]


def test_recorded_transfer_lists_the_conversation_when_answered(call):
    body = ('state main:\n    transfer "PJSIP/101" record\n    transfer "PJSIP/102", "PJSIP/103" announce "Boilers." '
            'record\n')
    unanswered = call(body)
    assert unanswered.recordings == []
    answered = call(body, dialstatus="ANSWER")
    assert len(answered.recordings) == 1 and answered.recordings[0].endswith("-transfer-1.wav")


def test_every_option_works_with_one_destination(call):
    record = call('state main:\n    transfer "PJSIP/101" ring in order timeout 5s announce "Hi" record\n',
                  dialstatus="ANSWER")
    assert entries(record) == [("PJSIP/101", "ANSWER")] and len(record.recordings) == 1


def test_a_dialogue_compiled_by_the_previous_version_still_transfers(program):
    import json

    from autocall.engine.ir import Program
    data = json.loads(program('state main:\n    transfer "PJSIP/101"\n    result dialstatus\n').to_json())
    data["version"] = 2
    op = data["states"]["main"]["code"][0]
    op["dest"] = op.pop("dests")[0]
    for key in ("ring", "announce", "record"):
        del op[key]
    record = simulate(Program.from_json(json.dumps(data)), settings=None)
    assert record.transfers == [{"destination": "PJSIP/101", "dialstatus": "NOANSWER"}]


QUEUE = ('state main:\n    queue "support" timeout 5m announce "A customer from the website."\n'
         '    say "No agent: {queuestatus}."\n')


def test_queue_not_answered_sets_queuestatus_timeout_by_default(call):
    record = call(QUEUE)
    assert tts(record) == ["No agent: TIMEOUT."]
    assert entries(record) == [("queue:support", "TIMEOUT")]


@pytest.mark.parametrize("status", ["FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL"])
def test_queue_status_says_why_no_agent_took_the_call(call, status):
    assert tts(call(QUEUE, queuestatus=status)) == [f"No agent: {status}."]


def test_queue_answered_ends_the_call_like_an_answered_transfer(call):
    record = call(QUEUE, queuestatus="ANSWER")
    assert record.ended_by == "hangup" and tts(record) == []
    assert entries(record) == [("queue:support", "ANSWER")]


def test_a_queue_name_with_metacharacters_is_not_joined(call):
    record = call('param q\nstate main:\n    queue q\n    result queuestatus\n', q="support,,,x")
    assert record.result == "INVALIDARGS" and "queue not joined" in record.log[0]["message"]


def test_queuestatus_set_to_something_else_is_refused(program):
    compiled = program(QUEUE)
    with pytest.raises(UserError, match="not a queue status"):
        parse_settings(compiled, {"queuestatus": "MAYBE"})


# -- menu -------------------------------------------------------------------------------------------------

MENU = ('state main:\n    menu "For sales press 1. For support press 2." timeout 4s tries 3:\n'
        '        1 -> sales\n        2 -> support\n        star -> repeat\n'
        '        invalid say "Not valid."\n        timeout say "Please choose."\n        failure -> goodbye\n'
        'state sales:\n    say "Sales."\n    result "sales {choice}"\nstate support:\n    result "support"\n'
        'state goodbye:\n    result "failed"\n')


def test_menu_match_goes_to_the_target_and_sets_choice(call):
    record = call(MENU, keys="1")
    assert record.path == ["main", "sales"] and record.result == "sales 1"
    assert record.inputs == [{"state": "main", "op": "menu", "keys": "1", "outcome": "match"}]


def test_menu_prompt_is_interruptible_barge_in(call):
    record = call(MENU, keys="2")
    assert tts(record) == ["For sales press 1. For support press 2."] and record.result == "support"


def test_menu_timeout_runs_the_handler_and_tries_again(call):
    record = call(MENU, keys="w1")
    assert [i["outcome"] for i in record.inputs] == ["timeout", "match"]
    assert tts(record)[:3] == ["For sales press 1. For support press 2.", "Please choose.",
                               "For sales press 1. For support press 2."]


def test_menu_invalid_key_runs_the_handler_and_tries_again(call):
    record = call(MENU, keys="91")
    assert [(i["keys"], i["outcome"]) for i in record.inputs] == [("9", "invalid"), ("1", "match")]
    assert "Not valid." in tts(record)


def test_menu_goes_to_failure_after_tries_failures(call):
    record = call(MENU, keys="9w9")
    assert record.path == ["main", "goodbye"] and record.result == "failed"
    assert len(record.inputs) == 3


def test_menu_repeat_plays_again_and_is_not_a_failure(call):
    record = call(MENU, keys="***991")
    assert record.result == "sales 1"
    assert [i["outcome"] for i in record.inputs] == ["match"] * 3 + ["invalid", "invalid", "match"]


def test_menu_without_failure_hangs_up_after_its_tries(call):
    body = 'state main:\n    menu "x" tries 2:\n        1 -> main\n'
    record = call(body, keys="")
    assert record.ended_by == "hangup" and len(record.inputs) == 2


def test_menu_handler_jump_goes_at_once(call):
    body = ('state main:\n    menu "x":\n        1 -> main\n        invalid -> help\n        failure -> main\n'
            'state help:\n    result "help"\n')
    record = call(body, keys="5")
    assert record.path == ["main", "help"] and len(record.inputs) == 1


def test_menu_defaults_come_from_the_declarations(call):
    body = 'state main:\n    menu "x":\n        1 -> main\n        failure -> out\nstate out:\n    result "out"\n'
    record = call(body, header="dialogue t\nstart main\ntries 2\n")
    assert len(record.inputs) == 2 and record.result == "out"
    assert call(body).inputs.__len__() == 3


def test_menu_default_timeout_is_five_seconds(program):
    compiled = program('state main:\n    menu "x":\n        1 -> main\n        failure -> main_end\n'
                       'state main_end:\n    say "done"\n')
    assert simulate(compiled, max_duration_ms=16_000).ended_by == "hangup"
    assert simulate(compiled, max_duration_ms=14_000).ended_by == "error"


MULTI = ('state main:\n    menu "Dial an extension" interdigit 2s:\n        1 -> one\n        "101" -> one_oh_one\n'
         '        "102" -> one_oh_two\n        failure -> main_out\n'
         'state one:\n    result "1"\nstate one_oh_one:\n    result "101"\nstate one_oh_two:\n    result "102"\n'
         'state main_out:\n    result "failed"\n')


def test_multi_digit_choice_is_taken_when_no_longer_choice_begins_with_it(call):
    assert call(MULTI, keys="101").result == "101"
    assert call(MULTI, keys="102").inputs[0] == {"state": "main", "op": "menu", "keys": "102", "outcome": "match"}


def test_lone_prefix_key_is_taken_after_the_interdigit_wait(call):
    assert call(MULTI, keys="1w").result == "1"
    assert call(MULTI, keys="1").result == "1"


def test_keys_that_can_begin_no_choice_are_invalid_at_once(call):
    record = call(MULTI, keys="12" + "1w")
    assert record.inputs[0] == {"state": "main", "op": "menu", "keys": "12", "outcome": "invalid"}
    assert record.result == "1"


def test_partial_keys_that_are_not_a_choice_are_invalid_after_interdigit(call):
    body = 'state main:\n    menu "x":\n        "12" -> a\n        failure -> a\nstate a:\n    result "{choice}"\n'
    record = call(body, keys="1w")
    assert record.inputs[0]["outcome"] == "invalid" and record.inputs[0]["keys"] == "1"


# -- gather -------------------------------------------------------------------------------------------------

def test_gather_digits_completes_at_the_count_and_leaves_extra_keys(call):
    body = 'state main:\n    gather pin digits 4 prompt "PIN?"\n    gather more digits 1\n    result pin + more\n'
    record = call(body, keys="12345")
    assert record.result == "12345"
    assert record.inputs[0] == {"state": "main", "op": "gather", "keys": "1234", "outcome": "complete"}


def test_gather_terminator_ends_it_and_is_not_part_of_the_value(call):
    record = call('state main:\n    gather amount max 6\n    result amount\n', keys="250#")
    assert record.result == "250" and record.inputs[0]["outcome"] == "terminated"


def test_gather_max_completes_at_max_keys(call):
    record = call('state main:\n    gather amount max 3\n    result amount\n', keys="12345")
    assert record.result == "123" and record.inputs[0]["outcome"] == "complete"


def test_gather_custom_terminator(call):
    record = call('state main:\n    gather code digits 6 terminator star\n    result code\n', keys="12*")
    assert record.result == "12" and record.inputs[0]["outcome"] == "terminated"


def test_gather_timeout_after_some_keys_keeps_them(call):
    record = call('state main:\n    gather code digits 4\n    result code\n', keys="12w")
    assert record.result == "12" and record.inputs[0]["outcome"] == "timeout"


def test_gather_with_nothing_is_offered_again_up_to_tries_then_empty(call):
    body = 'state main:\n    gather pin digits 4 prompt "PIN?" tries 3\n    result "[" + pin + "]"\n'
    record = call(body, keys="ww")
    assert tts(record) == ["PIN?", "PIN?", "PIN?"]
    assert record.result == "[]" and record.inputs == [{"state": "main", "op": "gather", "keys": "", "outcome": "empty"}]
    retried = call(body, keys="w1234")
    assert retried.result == "[1234]" and tts(retried) == ["PIN?", "PIN?"]


def test_gather_default_is_one_try(call):
    record = call('state main:\n    gather pin digits 4 prompt "PIN?"\n', keys="")
    assert tts(record) == ["PIN?"] and record.inputs[0]["outcome"] == "empty"


def test_gather_prompt_is_interruptible(call):
    record = call('state main:\n    gather pin digits 2 prompt "Enter"\n    result pin\n', keys="42")
    assert record.result == "42" and tts(record) == ["Enter"]


def test_gather_secret_masks_keys_everywhere_but_keeps_the_value(call):
    body = ('state main:\n    gather pin digits 4 secret\n    say "You typed {pin}."\n    log "pin {pin}"\n'
            '    if pin == 1234:\n        result "ok " + pin\n')
    record = call(body, keys="1234")
    assert record.inputs[0]["keys"] == "***"
    assert record.variables["pin"] == "***"
    assert tts(record) == ["You typed ***."]
    assert record.log[0]["message"] == "pin ***"
    assert record.result == "ok ***"
    assert "1234" not in repr(record.simulate_json()) and "1234" not in record.keys


# -- expressions ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("expression, expected", [
    ("7 / 2", "3"), ("0 - 7 / 2", "-3"), ("2 + 3 * 4", "14"), ("(2 + 3) * 4", "20"), ("-3 + 1", "-2"),
    ('"ab" + "cd"', "abcd"), ('"12" + 1', "13"), ('"1234" == 1234', "1"), ('"" == 1234', "0"),
    ('"abc" < 5', "0"), ('"10" < "9"', "1"), ("10 < 9", "0"), ('"12" > 9', "1"),
    ("1 and 0", "0"), ("1 or 0", "1"), ("not 0", "1"), ('not "" == 1', "1"), ("not 1 == 1", "0"),
    ('len("hello")', "5"), ("len(12345)", "5"), ('1 + 1 == 2 and "a" != "b"', "1"),
])
def test_expression_values(call, expression, expected):
    assert call(f"state main:\n    result {expression}\n").result == expected


@pytest.mark.parametrize("expression, message", [
    ('"abc" - 1', 'cannot use the text "abc" as a number'),
    ("1 / 0", "division by zero"),
    ('"x" + 1', "cannot use the text \"x\" as a number"),
])
def test_runtime_errors_end_the_call_naming_the_line(call, expression, message):
    record = call(f'state main:\n    say "before"\n    result {expression}\n    say "after"\n')
    assert record.ended_by == "error"
    assert message in record.error and "t.dlg:5" in record.error.replace("test.dlg:5", "t.dlg:5")
    assert tts(record) == ["before"]
    assert record.log and record.log[-1]["message"] == record.error


def test_comparisons_never_fail_at_run_time(call):
    record = call('param p = ""\nstate main:\n    if p == 1234 or p < 3 or "x" >= 2:\n        result "t"\n')
    assert record.ended_by == "hangup"


# -- built-ins ------------------------------------------------------------------------------------------------

def test_builtins_have_their_defaults_and_can_be_set_in_simulation(call):
    body = 'state main:\n    result "{caller}|{called}|{amd}|{dialstatus}|{attempt}"\n'
    assert call(body).result == "|||" + "|1"
    assert call(body, caller="5550100", called="200", amd="MACHINE", attempt="2").result == "5550100|200|MACHINE||2"


def test_call_id_builtin(program):
    compiled = program('state main:\n    result call_id\n')
    assert simulate(compiled, call_id="abc-1").result == "abc-1"


# -- guard rails ----------------------------------------------------------------------------------------------

def test_ten_thousand_statement_guard_ends_the_call_with_error(sim_call):
    call = sim_call
    body = ('var n = 0\nstate main:\n    set n = n + 1\n    set n = n + 1\n    wait 1ms\n    goto main\n')
    record = call(body)
    assert record.ended_by == "error" and "10,000 statements" in record.error
    assert record.statements == 10_001


def test_maximum_duration_guard_ends_the_call_with_error(program):
    compiled = program('state main:\n    wait 30m\n    wait 30m\n    wait 30m\n    say "late"\n')
    record = simulate(compiled, max_duration_ms=3_600_000)
    assert record.ended_by == "error" and "maximum" in record.error
    assert record.prompts == []


@pytest.mark.parametrize("keys, where", [("h", "main"), ("1h", "sales"), ("w h", "main")])
def test_caller_hangup_at_any_point_ends_cleanly_with_a_record(call, keys, where):
    record = call(MENU, keys=keys)
    assert record.ended_by == "caller_hangup" and record.path[-1] == where
    assert record.ended_at is not None


def test_caller_hangup_mid_gather(call):
    record = call('state main:\n    gather pin digits 4\n    result pin\n', keys="12h")
    assert record.ended_by == "caller_hangup" and record.result is None


def test_keys_run_out_every_further_input_times_out(call):
    record = call(MENU, keys="")
    assert [i["outcome"] for i in record.inputs] == ["timeout"] * 3 and record.result == "failed"


def test_spaces_in_keys_are_ignored(call):
    assert call(MULTI, keys=" 1 0 1 ").result == "101"


def test_bad_key_character_is_a_user_error(program):
    compiled = program(MULTI)
    with pytest.raises(UserError, match="'x' at position 2 is not a key"):
        simulate(compiled, keys="1x")


def test_unknown_set_name_is_a_user_error_with_a_suggestion(program):
    compiled = program('param company = "A"\nstate main:\n    hangup\n')
    with pytest.raises(UserError, match="did you mean 'company'"):
        parse_settings(compiled, {"compnay": "B"})


def test_file_and_sound_prompts_reach_the_channel_as_such(program, tmp_path):
    from tests.language.audio_fixtures import write_wav
    seen = []
    write_wav(tmp_path / "clip.wav")
    compiled = program('state main:\n    play file "clip.wav"\n    play sound "beep"\n')

    class Recording(SimChannel):
        async def play(self, prompt, interrupt_keys=""):
            seen.append(prompt)
            return None

    clock = SimClock(0)
    run_sync(Call(compiled, Recording(ScriptedCaller(""), clock), clock, call_id="x").run())
    assert isinstance(seen[0], FilePrompt) and seen[0].resolved == str(tmp_path / "clip.wav")
    assert seen[1] == SoundPrompt("beep")
