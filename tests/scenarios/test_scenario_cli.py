"""``autocall test``: a line per scenario (✓/✗, or ok/FAIL on a non-UTF-8 stream), differences under
failures, a summary line, --json, -k, and exit 1 when anything fails or cannot run."""

from __future__ import annotations

import io
import json
import re

import pytest

from autocall.cli.main import main
from autocall.scenarios import ScenarioRunner, TextReport, run_all
from tests.scenarios.helpers import OPEN, write_script

SCENARIOS = f"""
[defaults]
now = {OPEN}
set = {{ customer = "Ann" }}

[[scenario]]
name = "sales"
keys = "1"
expect_path = ["main", "sales", "bye"]

[[scenario]]
name = "pin"
keys = "2 1234"
expect_path = ["main", "login", "sales"]
"""

SUMMARY = re.compile(r"^\d+ passed(, \d+ (failed|errors?|skipped|deselected))* in \d+\.\d\ds$")


@pytest.fixture
def script(tmp_path):
    return str(write_script(tmp_path, SCENARIOS))


def test_a_line_per_scenario_the_difference_and_a_summary(script, capsys):
    assert main(["test", script]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{script}  (2 scenarios)"
    assert lines[1].strip() in ("✓ sales", "ok   sales")
    assert lines[2].strip() in ("✗ pin", "FAIL pin")
    assert "path differs at step 3: expected 'sales', got 'bye'" in lines[3]
    assert any("replay: autocall simulate" in line for line in lines)
    assert SUMMARY.match(lines[-1]) and lines[-1].startswith("1 passed, 1 failed in ")


def test_all_passing_exits_0(script, capsys):
    assert main(["test", script, "-k", "sales"]) == 0
    out = capsys.readouterr().out
    assert "(1 scenario, 1 deselected)" in out and out.splitlines()[-1].startswith("1 passed, 1 deselected in ")


def test_a_filter_matching_nothing_exits_1_and_says_so(script, capsys):
    assert main(["test", script, "-k", "nothing-like-this"]) == 1
    assert "no scenario matches -k nothing-like-this" in capsys.readouterr().out


def test_json_output_has_every_scenario_and_the_totals(script, capsys):
    assert main(["test", script, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert data["summary"] | {"seconds": 0} == {"passed": 1, "failed": 1, "errors": 0, "skipped": 0,
                                                "deselected": 0, "seconds": 0}
    [entry] = data["scripts"]
    assert [s["status"] for s in entry["scenarios"]] == ["passed", "failed"]
    failed = entry["scenarios"][1]
    assert failed["failures"][0]["key"] == "expect_path"
    assert failed["call"]["path"] == ["main", "login", "bye"] and failed["replay"].startswith("autocall simulate")


def test_compile_errors_go_to_stderr_as_diagnostics(tmp_path, capsys):
    path = write_script(tmp_path, SCENARIOS, script="dialogue x\nstart main\nstate main:\n    goto nowhere\n")
    assert main(["test", str(path)]) == 1
    captured = capsys.readouterr()
    assert f"{path}:4:10: error: unknown state 'nowhere'" in captured.err
    assert "does not compile (1 error)" in captured.out


def test_a_missing_scenario_file_exits_1(tmp_path, capsys):
    script = tmp_path / "lonely.dlg"
    script.write_text("dialogue lonely\nstart main\nstate main:\n    hangup\n", encoding="utf-8")
    assert main(["test", str(script)]) == 1
    assert "no scenario file; write lonely.test.toml beside it" in capsys.readouterr().out


def test_ascii_marks_when_the_stream_cannot_take_utf8(compiler, script):
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    report = TextReport(stream)
    run_all([script], ScenarioRunner(compiler), report.script)
    stream.seek(0)
    text = stream.read()
    assert re.search(r"^  ok +sales$", text, re.M) and re.search(r"^  FAIL +pin$", text, re.M)


def test_characters_an_ascii_stream_cannot_take_do_not_crash_the_report(compiler, tmp_path):
    path = write_script(tmp_path, SCENARIOS.replace('name = "sales"', 'name = "café ✓"'))
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    run_all([str(path)], ScenarioRunner(compiler), TextReport(stream).script)
    stream.seek(0)
    assert re.search(r"^  ok +caf\? \?$", stream.read(), re.M)


def test_utf8_marks_and_colour_when_asked(compiler, script):
    stream = io.StringIO()
    report = TextReport(stream, color=True, unicode=True)
    run_all([script], ScenarioRunner(compiler), report.script)
    assert "\033[32m✓\033[0m sales" in stream.getvalue() and "\033[31m✗\033[0m pin" in stream.getvalue()


def test_help_exits_0_and_no_script_is_a_usage_error():
    with pytest.raises(SystemExit) as done:
        main(["test", "--help"])
    assert done.value.code == 0
    with pytest.raises(SystemExit) as done:
        main(["test"])
    assert done.value.code == 2
