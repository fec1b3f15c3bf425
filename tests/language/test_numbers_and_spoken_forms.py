"""Numbers (exact decimals, texts that read as numbers, round/abs) and the spoken forms {x|money},
{x|date}, {x|time} in English and Italian: the spec's table row by row, on both runtimes."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from autocall.config import load_config
from autocall.engine import values as V
from autocall.engine.ir import Program
from autocall.engine.spoken import SpeechDefaults, language_of, render
from autocall.errors import ConfigError
from autocall.sim.runner import parse_settings, simulate
from tests.fakes.agi_fixtures import run_on_agi
from tests.language.conftest import HEADER


@pytest.fixture(params=["simulator", "agi"])
def call(program, request):
    runtime = simulate if request.param == "simulator" else run_on_agi

    def run(body: str, header: str = HEADER, **values):
        compiled = program(body, header)
        return runtime(compiled, keys="", settings=parse_settings(compiled, values))
    return run


def logged(record) -> list[str]:
    return [entry["message"] for entry in record.log]


def said(record) -> list[str]:
    return [p["text"] for p in record.prompts if p["kind"] == "tts"]


# -- numbers ------------------------------------------------------------------------------------------

EXPRESSIONS = [
    ("0.1 + 0.2 == 0.3", "1"), ("0.1 + 0.2", "0.3"), ("7 / 2", "3"), ("-7 / 2", "-3"), ("7 / -2", "-3"),
    ("7.0 / 2", "3.5"), ("1 / 3.0", "0.333333"), ("2 / 3.0", "0.666667"), ("0.0000005 / 1.0", "0"),
    ("0.0000015 / 1.0", "0.000002"), ("12.05 * 3", "36.15"), ("-1.5 + 1.5", "0.0"), ("-3", "-3"),
    ("round(2.675, 2)", "2.68"), ("round(2.665, 2)", "2.66"), ("round(2.5)", "2"), ("round(3.5, 0)", "4"),
    ("round(7, 2)", "7"), ("abs(-12.50)", "12.50"), ("abs(3)", "3"),
    ('"-1205" + 0', "-1205"), ('"42.50" + 1', "43.50"), ('"-1205" < 0', "1"), ('"42.50" == 42.5', "1"),
    ('"1234" == 1234', "1"), ('"" == 1234', "0"), ('"abc" < 3', "0"), ('"10" < "9"', "1"), ("10 < 9", "0"),
    ('"a" + "b"', "ab"),
]


@pytest.mark.parametrize("expression, shown", EXPRESSIONS)
def test_numbers_are_exact_and_texts_that_read_as_numbers_compute(program, expression, shown):
    record = simulate(program(f"state main:\n    log {expression}\n"))
    assert record.ended_by == "hangup", record.error
    assert logged(record) == [shown]


@pytest.mark.parametrize("expression", ['"abc" - 1', '"12,5" * 2', '"1e3" + 1', "round(1.5, 10 * 3)",
                                        "round(2.5, 0.5 * 3)", "1.5 / 0"])
def test_arithmetic_on_a_text_that_is_not_a_number_ends_the_call_naming_the_line(program, expression):
    record = simulate(program(f"state main:\n    answer\n    log {expression}\n"))
    assert record.ended_by == "error"
    assert record.error.startswith("test.dlg:5: ")


def test_a_negative_balance_computes_instead_of_ending_the_call(call):
    record = call('param balance = "0"\nvar owed = 0\nstate main:\n    set owed = 0 - balance\n'
                  '    if balance < 0:\n        say "Overdrawn by {owed}."\n', balance="-1205.40")
    assert record.ended_by == "hangup", record.error
    assert said(record) == ["Overdrawn by 1205.40."]
    assert record.variables["owed"] == "1205.40"


def test_decimals_stay_exact_through_the_compiled_json_and_the_record(program):
    compiled = program("var price = 0.1\nvar total = 0\nstate main:\n    set total = price + 0.2\n")
    text = compiled.to_json()
    assert '"0.1"' in text and "0.30000000000000004" not in text
    record = simulate(Program.from_json(text))
    assert record.variables == {"price": "0.1", "total": "0.3"}
    assert json.loads(json.dumps(record.to_dict()))["variables"]["total"] == "0.3"


def test_value_helpers_keep_ints_whole_and_decimals_decimal():
    assert V.add(2, 3) == 5 and type(V.add(2, 3)) is int
    assert V.add(Decimal("0.1"), "0.2") == Decimal("0.3")
    assert V.to_text(Decimal("12.50")) == "12.50"
    assert V.negate(Decimal("0.0")) == 0 and V.to_text(V.negate(Decimal("0.0"))) == "0.0"
    with pytest.raises(V.ScriptError, match="grew past the limit"):
        V.multiply(Decimal("1." + "1" * 600), Decimal("1." + "1" * 600))


def test_round_and_abs_are_checked_when_compiled(compile_text):
    result = compile_text(HEADER + "state main:\n    log round(1, 2, 3)\n    log abs()\n    log round(1.5, 21)\n")
    assert [d.message for d in result.errors] == [
        "round() takes 1 or 2 arguments, not 3", "abs() takes 1 argument, not 0",
        "round() takes a whole number of places from 0 to 20"]


# -- spoken forms: the spec's table, row by row ---------------------------------------------------------

TABLE = [
    ("money", "12.05", "12 euros and 5 cents", "12 euro e 5 centesimi"),
    ("money", "-3", "minus 3 euros", "meno 3 euro"),
    ("money", '"1250.5"', "1250 euros and 50 cents", "1250 euro e 50 centesimi"),
    ("date", '"2026-03-02"', "Monday, March 2", "lunedì 2 marzo"),
    ("time", '"14:30"', "2:30 PM", "14 e 30"),
    ("time", '"09:05"', "9:05 AM", "9 e 5"),
]


@pytest.mark.parametrize("form, value, english, italian", TABLE)
def test_spoken_forms_in_english_and_italian(call, form, value, english, italian):
    for voice, words in (("en-us", english), ("it", italian)):
        record = call(f'var x = {value}\nstate main:\n    say "{{x|{form}}}"\n', header=f'{HEADER}voice "{voice}"\n')
        assert said(record) == [words]


@pytest.mark.parametrize("voice, words", [("en-us", "12 dollars and 1 cent"), ("it", "12 dollari e 1 centesimo")])
def test_the_currency_declaration_names_the_currency_in_the_voice_language(call, voice, words):
    record = call('var x = 12.01\nstate main:\n    say "{x|money}"\n',
                  header=f'{HEADER}voice "{voice}"\ncurrency "USD"\n')
    assert said(record) == [words]


def test_the_currency_setting_is_the_default_and_a_script_declaration_wins(program, tmp_path):
    config = tmp_path / "autocall.toml"
    config.write_text('currency = "usd"\n')
    assert load_config(str(config)).currency == "USD"
    assert load_config(environ={}, cwd=str(tmp_path)).currency == "USD"
    assert load_config(environ={"AUTOCALL_CURRENCY": "chf"}, cwd=str(tmp_path)).currency == "CHF"
    config.write_text('currency = "EURO"\n')
    with pytest.raises(ConfigError, match="currency = 'EURO' is not a currency"):
        load_config(str(config))
    plain = program('var x = 2\nstate main:\n    say "{x|money}"\n')
    assert said(simulate(plain, speech=SpeechDefaults("it", "USD"))) == ["2 dollari"]
    assert said(simulate(plain)) == ["2 euros"]
    declared = program('currency "GBP"\nvar x = 2\nstate main:\n    say "{x|money}"\n')
    assert said(simulate(declared, speech=SpeechDefaults("en-us", "USD"))) == ["2 British pounds"]


def test_a_value_that_is_not_an_amount_date_or_time_is_spoken_as_it_is_and_logged(call):
    record = call('var x = "soon"\nstate main:\n    say "{x|money}, {x|date}, {x|time}."\n    hangup\n')
    assert record.ended_by == "hangup"
    assert said(record) == ["soon, soon, soon."]
    assert logged(record) == ["{x|money}: the value is not an amount; spoken as it is",
                              "{x|date}: the value is not a date (YYYY-MM-DD); spoken as it is",
                              "{x|time}: the value is not a time (HH:MM); spoken as it is"]


def test_a_bad_currency_code_is_a_compile_error(compile_text):
    result = compile_text(HEADER + 'currency "eur"\nstate main:\n    hangup\n')
    assert [d.message for d in result.errors] == [
        "'eur' is not a currency code (write \"EUR\"); write an ISO 4217 code such as \"EUR\" or \"USD\""]


def test_languages_and_amounts_beyond_the_table():
    assert language_of("gmw/en-us") == "en" and language_of("roa/it") == "it" and language_of("xx-yy") == "en"
    assert render("money", Decimal("0.01"), "0.01", "en", "EUR") == "1 cent"
    assert render("money", 1, "1", "it", "EUR") == "1 euro"
    assert render("money", Decimal("2.345"), "2.345", "en", "EUR") == "2 euros and 34 cents"
    assert render("money", 5, "5", "de", "EUR") == "5 euros"            # no joining words: English
    assert render("date", "2026-03-02", "2026-03-02", "de", "EUR") == "Montag, 2. März"
    assert render("time", "24:00", "24:00", "en", "EUR") is None


def test_a_decimal_computed_from_a_secret_stays_secret(program):
    compiled = program('var fee = 0\nstate main:\n    gather pin digits 4 secret\n    set fee = pin * 0.5\n'
                       '    say "Fee {fee|money}, {fee}."\n    log fee\n')
    record = simulate(compiled, keys="1234")
    assert record.ended_by == "hangup", record.error
    assert record.variables["fee"] == "***"
    assert said(record) == ["Fee ***, ***."] and logged(record) == ["***"]
    assert "617" not in json.dumps(record.to_dict())
