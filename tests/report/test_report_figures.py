"""``autocall report --json`` over simulated calls with a known mix of keys: every figure, exactly."""

from __future__ import annotations

from datetime import datetime

import numpy
import pytest

from autocall.store.calls import recent_calls
from autocall.store.db import connect
from tests.report.report_helpers import LINES, report_json, simulate_into, utc

MIX = ([("1", "")] * 3 + [("1", "ANSWER")] + [("2 1234", "")] * 2 + [("2 9999", "")]
       + [("3 5550#", "")] * 2 + [("3 123456", "")] + [("9 w", ""), ("h", "")])
DAY = ["--since", "2026-03-02T00:00+00:00", "--until", "2026-03-03T00:00+00:00"]
OTHER = """\
dialogue other
start main

state main:
    answer
    result "other"
"""


@pytest.fixture
def database(database_url, tmp_path, compile_text, monkeypatch):
    """The calls of MIX, on each engine (every figure is computed in SQL)."""
    path = database_url
    monkeypatch.setenv("AUTOCALL_DATABASE", path)
    monkeypatch.chdir(tmp_path)
    conn = connect(path)
    simulate_into(conn, compile_text(LINES, "lines.dlg").program, MIX, utc(2026, 3, 2, 10, 0))
    yield conn
    conn.close()


def test_totals_results_transfers_and_containment(database, capsys):
    report = report_json(capsys, *DAY)
    assert report["calls"] == 12
    assert report["ended_by"] == {"hangup": 11, "caller_hangup": 1, "error": 0}
    assert report["results"] == {"sales": 4, "callback": 3, "ok": 2, "(none)": 2, "bad": 1}
    assert report["transfers"] == {"total": 4, "answered": 1, "by_destination": {"PJSIP/100": {"ANSWER": 1,
                                                                                              "NOANSWER": 3}}}
    assert report["containment"] == {"contained": 11, "share": round(11 / 12, 4)}
    assert report["not_recorded"] is None
    assert set(report) >= {"period", "calls", "ended_by", "results", "duration_s", "transfers", "states",
                           "inputs", "by_hour", "campaigns"}


def test_durations_are_the_average_median_and_90th_percentile(database, capsys):
    durations = [call["duration"] for call in recent_calls(database, 100)]
    report = report_json(capsys, *DAY)["duration_s"]
    assert report["average"] == pytest.approx(sum(durations) / len(durations), abs=1e-3)
    assert report["median"] == pytest.approx(float(numpy.percentile(durations, 50)), abs=1e-3)
    assert report["p90"] == pytest.approx(float(numpy.percentile(durations, 90)), abs=1e-3)
    assert sum(count for _, count in report["histogram"]) == 12


def test_the_funnel_counts_entries_and_exits_of_each_state(database, capsys):
    states = report_json(capsys, *DAY)["states"]
    assert {name: (entry["entered"], entry["exits"]) for name, entry in states.items()} == {
        "main": (12, {"sales": 4, "account": 3, "callback": 3, "(hangup)": 1, "bye": 1}),
        "sales": (4, {"bye": 3, "(end)": 1}),
        "account": (3, {"bye": 3}),
        "callback": (3, {"bye": 3}),
        "bye": (10, {"(end)": 10}),
    }
    assert states["main"]["hangup_share"] == round(1 / 12, 4)


def test_menus_count_keys_invalid_timeout_and_failure_and_secret_gathers_only_outcomes(database, capsys):
    inputs = {(item["state"], item["op"], item["name"]): item for item in report_json(capsys, *DAY)["inputs"]}
    menu = inputs[("main", "menu", None)]
    assert (menu["count"], menu["keys"], menu["invalid"], menu["timeout"], menu["failure"]) == \
        (12, {"1": 4, "2": 3, "3": 3}, 1, 1, 1)
    pin = inputs[("account", "gather", "pin")]
    assert (pin["secret"], pin["keys"], pin["outcomes"]) == (True, None, {"complete": 3})
    number = inputs[("callback", "gather", "number")]
    assert (number["keys"], number["outcomes"], number["other_keys"]) == \
        ({"5550": 2, "123456": 1}, {"terminated": 2, "complete": 1}, 0)


def test_a_secret_never_reaches_the_report(database, capsys):
    from autocall.cli.main import main
    capsys.readouterr()
    assert main(["report", *DAY]) == 0
    terminal = capsys.readouterr().out
    assert "1234" not in terminal.replace("123456", "") and "9999" not in terminal
    assert "1234" not in str(report_json(capsys, *DAY)).replace("123456", "")


def test_calls_by_weekday_and_hour_are_in_local_time(database, capsys):
    by_hour = report_json(capsys, *DAY)["by_hour"]
    local = datetime.fromtimestamp(utc(2026, 3, 2, 10, 0).timestamp())
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()]
    assert by_hour[day][local.hour] == 12
    assert sum(sum(row) for row in by_hour.values()) == 12


def test_compare_puts_the_previous_period_beside(database, compile_text, capsys):
    simulate_into(database, compile_text(LINES, "lines.dlg").program, [("1", "")] * 5, utc(2026, 3, 1, 9, 0))
    report = report_json(capsys, *DAY, "--compare")
    previous = report["previous"]
    assert (report["calls"], previous["calls"]) == (12, 5)
    assert previous["period"]["since"].startswith("2026-03-01") and "previous" not in previous
    assert previous["states"]["main"]["exits"] == {"sales": 5}
    capsys.readouterr()
    from autocall.cli.main import main
    assert main(["report", *DAY, "--compare"]) == 0
    terminal = capsys.readouterr().out
    assert "previous" in terminal and "+7 (+140%)" in terminal
    assert "entered before" in terminal


def test_script_filter_and_states_of_several_scripts(database, compile_text, capsys):
    simulate_into(database, compile_text(OTHER, "other.dlg").program, [("", "")] * 2, utc(2026, 3, 2, 11, 0))
    both = report_json(capsys, *DAY)
    assert both["scripts"] == {"lines": 12, "other": 2}
    assert both["states"]["lines:main"]["entered"] == 12 and both["states"]["other:main"]["entered"] == 2
    only = report_json(capsys, *DAY, "--script", "other")
    assert (only["calls"], list(only["states"]), only["results"]) == (2, ["main"], {"other": 2})


def test_the_terminal_tables_show_each_section(database, capsys):
    from autocall.cli.main import main
    capsys.readouterr()
    assert main(["report", *DAY]) == 0
    out = capsys.readouterr().out
    for title in ("Totals", "Results", "Transfers by destination", "States: calls that entered",
                  "Menus and gathers", "Calls by weekday and hour"):
        assert title in out
    assert "secret: complete 3" in out


@pytest.mark.parametrize("args, message", [
    (["--since", "yesterday"], "--since 'yesterday': not a date or an age"),
    (["--since", "2026-03-03", "--until", "2026-03-01"], "is not before --until"),
    (["--campaign", "nope"], "--campaign nope: no such campaign"),
    (["--script", "missing.dlg"], "--script missing.dlg: no such file"),
    (["--html", "/no/such/folder/r.html"], "the folder /no/such/folder does not exist"),
])
def test_user_errors_are_one_line_and_exit_1(database, capsys, args, message):
    from autocall.cli.main import main
    capsys.readouterr()
    assert main(["report", *args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_missing_database_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from autocall.cli.main import main
    monkeypatch.setenv("AUTOCALL_DATABASE", str(tmp_path / "none.db"))
    assert main(["report"]) == 1
    assert "no database there yet" in capsys.readouterr().err


def test_names_from_scripts_and_callers_are_shown_as_plain_text(tmp_path, compile_text, monkeypatch, capsys):
    from autocall.cli.main import main
    monkeypatch.setenv("AUTOCALL_DATABASE", str(tmp_path / "calls.db"))
    conn = connect(str(tmp_path / "calls.db"))
    program = compile_text('dialogue odd\nparam note\nstart main\n\nstate main:\n    answer\n'
                           '    result "{note}"\n', "odd.dlg").program
    from autocall.sim.runner import parse_settings, simulate
    from autocall.store.calls import save_call
    settings = parse_settings(program, {"note": "[bold red]x[/] \x1b[31mred"})
    save_call(conn, simulate(program, settings=settings, now=utc(2026, 3, 2, 10, 0), call_id="odd"))
    conn.close()
    capsys.readouterr()
    assert main(["report", *DAY, "--html", str(tmp_path / "odd.html")]) == 0
    out = capsys.readouterr().out
    assert "[bold red]x[/]" in out and "\x1b[31m" not in out
    assert "[bold red]x[/]" in (tmp_path / "odd.html").read_text(encoding="utf-8")
