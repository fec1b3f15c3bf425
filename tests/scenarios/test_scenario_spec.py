"""Reading SCRIPT.test.toml strictly: every problem found at once, each naming file, line, scenario and key,
with a did-you-mean for misspelt keys, states, variables and values; [defaults] merged into each scenario."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from autocall.scenarios.spec import load_scenario_file, scenario_path
from tests.scenarios.helpers import OPEN, write_script


@pytest.fixture
def load(tmp_path, compiler):
    def run(text: str):
        script = write_script(tmp_path, text)
        program = compiler.compile_file(str(script)).program
        assert program is not None
        return load_scenario_file(scenario_path(str(script)), program)
    return run


def problems(loaded) -> list[str]:
    found = [p.render("shop.test.toml") for p in loaded.problems]
    for scenario in loaded.scenarios:
        found += [p.render("shop.test.toml") for p in scenario.problems]
    return found


def test_a_valid_file_gives_scenarios_with_defaults_merged(load):
    loaded = load(f"""
        [defaults]
        now = {OPEN}
        set = {{ customer = "Ann", company = "Initech" }}

        [[scenario]]
        name = "sales"
        keys = "1"
        set = {{ company = "Acme", dialstatus = "BUSY" }}
        expect_path = ["main", "sales", "bye"]
        expect_result = "sales"

        [[scenario]]
        name = "later"
        now = 2026-03-02T20:00:00+01:00
        skip = "waiting for the new menu"
        """)
    assert problems(loaded) == []
    first, second = loaded.scenarios
    assert (first.name, first.number, first.line, first.keys) == ("sales", 1, 6, "1")
    assert first.settings == {"customer": "Ann", "company": "Acme", "dialstatus": "BUSY"}
    assert first.now == datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    assert first.expect == {"expect_path": ["main", "sales", "bye"], "expect_result": "sales"}
    assert second.settings == {"customer": "Ann", "company": "Initech"}
    assert second.skip == "waiting for the new menu" and second.now.hour == 20


def test_unknown_keys_are_named_with_a_suggestion(load):
    loaded = load(f"""
        [[scenario]]
        name = "typo"
        now = {OPEN}
        set = {{ customer = "Ann" }}
        expect_paht = ["main"]
        """)
    assert problems(loaded) == [
        "shop.test.toml:6: scenario 'typo': expect_paht: unknown key (did you mean 'expect_path'?)"]


def test_every_problem_of_a_scenario_is_reported_in_line_order(load):
    loaded = load("""
        [[scenario]]
        name = "many"
        keys = "12x"
        now = 2026-03-02T10:00:00
        set = { custmer = "Ann" }
        expect_visits = ["login", "sale"]
        expect_ended_by = "hung_up"
        expect_variables = { attempt = 1 }
        """)
    assert problems(loaded) == [
        "shop.test.toml:4: scenario 'many': keys: 'x' at position 3 is not a key; use 0-9, *, #, w (stay silent) "
        "and h (hang up)",
        "shop.test.toml:5: scenario 'many': now: give the offset (2026-03-02T10:30:00+01:00) or a timezone = "
        "\"Europe/Rome\", so the scenario gives the same result on every machine",
        "shop.test.toml:6: scenario 'many': set: 'custmer' is not a param, variable or settable built-in of "
        "'shop' (did you mean 'customer'?)",
        "shop.test.toml:7: scenario 'many': expect_visits: 'shop' has no state 'sale' (did you mean 'sales'?)",
        "shop.test.toml:8: scenario 'many': expect_ended_by: 'hung_up' is not a way a call ends; use 'hangup', "
        "'caller_hangup', 'error'",
        "shop.test.toml:9: scenario 'many': expect_variables: 'attempt' is not a variable of 'shop' "
        "(did you mean 'attempts'?)",
    ]


def test_a_local_time_is_read_in_the_given_timezone(load):
    loaded = load("""
        [defaults]
        timezone = "Europe/Rome"
        set = { customer = "Ann" }

        [[scenario]]
        name = "rome"
        now = 2026-03-02T10:00:00
        """)
    assert problems(loaded) == []
    assert loaded.scenarios[0].now.utcoffset() == timedelta(hours=1)


def test_a_time_string_is_accepted_like_a_toml_date_time(load):
    loaded = load('[[scenario]]\nname = "s"\nnow = "2026-03-02T10:00+01:00"\nset = { customer = "A" }\n')
    assert problems(loaded) == [] and loaded.scenarios[0].now.hour == 10


@pytest.mark.parametrize("value, message", [
    ("2026-03-02", "give a date and a time of day"),
    ('"yesterday"', "'yesterday' is not a date and time"),
    ("10:00:00", "give a date and a time of day"),
])
def test_bad_times_are_refused(load, value, message):
    loaded = load(f'[[scenario]]\nname = "s"\nnow = {value}\nset = {{ customer = "A" }}\n')
    assert message in problems(loaded)[0]


def test_an_unknown_timezone_is_refused(load):
    loaded = load('[[scenario]]\nname = "s"\ntimezone = "Mars/Olympus"\nnow = 2026-03-02T10:00:00\n'
                  'set = { customer = "A" }\n')
    assert "timezone: unknown time zone 'Mars/Olympus'" in problems(loaded)[0]


def test_a_dialogue_that_checks_hours_needs_a_time(load):
    loaded = load('[[scenario]]\nname = "s"\nset = { customer = "A" }\n')
    assert problems(loaded) == [
        "shop.test.toml:1: scenario 's': now: this dialogue checks its hours (within), so the result depends on "
        "the time: give one, e.g. now = 2026-03-02T10:30:00+01:00 (here or in [defaults])"]


def test_a_required_param_must_be_set(load):
    loaded = load(f'[[scenario]]\nname = "s"\nnow = {OPEN}\n')
    assert problems(loaded) == [
        "shop.test.toml:1: scenario 's': set: the param 'customer' of 'shop' is required; add "
        "set = { customer = \"...\" } here or in [defaults]"]


@pytest.mark.parametrize("setting, message", [
    ("{ caller_id = 5 }", "'caller_id' is not a param"),
    ("{ choice = \"1\" }", "'choice' is read-only"),
    ("{ customer = true }", "customer: write a string or a whole number, not true/false"),
    ("{ dialstatus = \"RINGING\" }", "dialstatus 'RINGING' is not a dial status"),
    ('"customer=Ann"', 'write set = { name = "value", ... }'),
])
def test_bad_settings_are_refused(load, setting, message):
    loaded = load(f'[[scenario]]\nname = "s"\nnow = {OPEN}\nset = {setting}\n')
    assert message in problems(loaded)[0]


@pytest.mark.parametrize("key, value, message", [
    ("expect_path", '"main"', 'write a list of state names in quotes'),
    ("expect_result", "1", 'write the label'),
    ("expect_prompts", '[{ text = "x" }]', "item 1: write \"text\""),
    ("expect_heard", '"x"', "write a list"),
    ("expect_inputs", '[{ op = "menu", key = "1" }]', "item 1: unknown field 'key' (did you mean 'keys'?)"),
    ("expect_inputs", '[{ outcome = "matched" }]', "item 1: outcome 'matched' is not one of"),
    ("expect_inputs", '[{ state = "mian" }]', "item 1: 'shop' has no state 'mian' (did you mean 'main'?)"),
    ("expect_transfers", '[{ destination = "PJSIP/1", status = "BUSY" }]', 'item 1: write "PJSIP/101"'),
    ("expect_error", '""', "write a part of the error message"),
    ("expect_optout", '"yes"', "write true or false"),
    ("expect_variables", '{ pin = 1.5 }', "pin: write a string or a whole number, not a decimal number"),
    ("skip", '""', 'write skip = true or skip = "the reason"'),
    ("keys", "12", 'write the keys as a string'),
])
def test_values_of_the_wrong_shape_are_refused(load, key, value, message):
    loaded = load(f'[[scenario]]\nname = "s"\nnow = {OPEN}\nset = {{ customer = "A" }}\n{key} = {value}\n')
    found = problems(loaded)
    assert len(found) == 1 and message in found[0], found


def test_a_scenario_without_a_name_is_refused_and_shown_by_number(load):
    loaded = load(f'[[scenario]]\nnow = {OPEN}\nset = {{ customer = "A" }}\n')
    assert problems(loaded) == ["shop.test.toml:1: scenario '#1': name: every scenario needs a name = \"...\" "
                                "(what the call is about)"]


def test_duplicate_names_are_refused_on_the_second(load):
    body = f'now = {OPEN}\nset = {{ customer = "A" }}\n'
    loaded = load(f'[[scenario]]\nname = "same"\n{body}\n[[scenario]]\nname = "same"\n{body}')
    assert problems(loaded) == ["shop.test.toml:7: scenario 'same': name: 'same' is already the name of "
                                "scenario #1 (line 1); give each scenario its own name"]


def test_invalid_toml_is_reported_with_line_and_column(load):
    loaded = load('[[scenario]]\nname = "s"\nkeys = "1\n')
    [problem] = loaded.problems
    assert problem.render("shop.test.toml").startswith("shop.test.toml:3:")
    assert "not valid TOML" in problem.message and loaded.scenarios == []


def test_a_file_without_scenarios_says_how_to_write_one(load):
    loaded = load('[defaults]\nnow = 2026-03-02T10:00:00+01:00\n')
    assert "no scenarios; add one: [[scenario]]" in loaded.problems[0].message


def test_unknown_top_level_keys_and_defaults_keys_are_refused(load):
    loaded = load('senario = 1\n[defaults]\nkeys = "1"\n[[scenario]]\nname = "s"\n')
    assert [p.render("f") for p in loaded.problems] == [
        "f: unknown top-level key 'senario' (did you mean 'scenario'?); a scenario file has [defaults] and "
        "[[scenario]] tables",
        "f:3: [defaults] keys: not a [defaults] key; [defaults] may set set, now, timezone, reply"]


def test_a_missing_file_is_a_file_problem(compiler, tmp_path):
    script = write_script(tmp_path, "")
    program = compiler.compile_file(str(script)).program
    loaded = load_scenario_file(str(tmp_path / "none.test.toml"), program)
    assert [p.message for p in loaded.problems] == ["no such file"]


def test_scenario_files_sit_beside_their_script():
    assert scenario_path("dir/support.dlg") == "dir/support.test.toml"
