"""The scenario runner: scripts found from paths, each scenario one simulated call, -k filters, skips,
and scripts that cannot be tested (no scenario file, compile errors, a broken file) counted as errors."""

from __future__ import annotations

import os

import pytest

from autocall.errors import UserError
from autocall.scenarios import ERROR, FAILED, PASSED, SKIPPED, ScenarioRunner, expand_targets, run_all
from tests.scenarios.helpers import OPEN, write_script

SCENARIOS = f"""
[defaults]
now = {OPEN}
set = {{ customer = "Ann" }}

[[scenario]]
name = "sales answers"
keys = "1"
set = {{ dialstatus = "ANSWER" }}
expect_path = ["main", "sales"]
expect_result = "sales"

[[scenario]]
name = "PIN wrong twice"
keys = "2 1111 2222"
expect_path = ["main", "login", "login", "bye"]
expect_result = "pin_failed"

[[scenario]]
name = "PIN right (expects the wrong result on purpose)"
keys = "2 1234"
expect_result = "pin_failed"

[[scenario]]
name = "closed at night"
now = 2026-03-02T23:00:00+01:00
expect_path = ["main", "closed", "bye"]
expect_heard = [{{ file = "closed.wav" }}]

[[scenario]]
name = "not written yet"
skip = true

[[scenario]]
name = "typo in a state"
expect_path = ["main", "sale"]
"""


@pytest.fixture
def runner(compiler):
    return ScenarioRunner(compiler)


def statuses(outcome) -> list[tuple[str, str]]:
    return [(o.scenario.name, o.status) for o in outcome.outcomes]


def test_each_scenario_passes_fails_skips_or_is_invalid(runner, tmp_path):
    outcome = runner.run_script(str(write_script(tmp_path, SCENARIOS)))
    assert outcome.problems == []
    assert statuses(outcome) == [("sales answers", PASSED), ("PIN wrong twice", PASSED),
                                 ("PIN right (expects the wrong result on purpose)", FAILED),
                                 ("closed at night", PASSED), ("not written yet", SKIPPED),
                                 ("typo in a state", ERROR)]
    failed = outcome.outcomes[2]
    assert [f.message for f in failed.failures] == ["expected result 'pin_failed', got 'ok'"]
    assert failed.record.path == ["main", "login", "bye"]
    assert failed.rerun == (f"autocall simulate {tmp_path}/shop.dlg --keys '2 1234' --set customer=Ann "
                            "--now 2026-03-02T10:00:00+01:00")
    assert outcome.outcomes[5].failures[0].message.endswith(
        "shop.test.toml:36: expect_path: 'shop' has no state 'sale' (did you mean 'sales'?)")


def test_filters_keep_scenarios_whose_name_contains_any_of_them(compiler, tmp_path):
    script = str(write_script(tmp_path, SCENARIOS))
    outcome = ScenarioRunner(compiler, filters=["pin", "NIGHT"]).run_script(script)
    assert [name for name, _ in statuses(outcome)] == [
        "PIN wrong twice", "PIN right (expects the wrong result on purpose)", "closed at night"]
    assert outcome.deselected == 3


def test_summary_counts_and_ok(runner, tmp_path):
    script = str(write_script(tmp_path, SCENARIOS))
    outcomes, summary = run_all([script, str(tmp_path / "missing.dlg")], runner)
    assert (summary.passed, summary.failed, summary.errors, summary.skipped) == (3, 1, 2, 1)
    assert not summary.ok and summary.seconds >= 0
    assert outcomes[1].problems == [f"{tmp_path}/missing.dlg: no such file; check the path"]


def test_a_script_without_a_scenario_file_is_an_error_saying_what_to_write(runner, tmp_path):
    script = write_script(tmp_path, "")
    os.remove(tmp_path / "shop.test.toml")
    outcome = runner.run_script(str(script))
    assert outcome.problems == [f"{script}: no scenario file; write shop.test.toml beside it (format: "
                                "docs/getting-started.md, \"Scenario tests\")"]
    assert not outcome.ok


def test_a_script_that_does_not_compile_keeps_its_diagnostics(runner, tmp_path):
    script = write_script(tmp_path, SCENARIOS, script="dialogue x\nstart main\nstate main:\n    goto nowhere\n")
    outcome = runner.run_script(str(script))
    assert outcome.problems == [f"{script}: does not compile (1 error); fix it, then run the scenarios"]
    assert outcome.diagnostics[0].startswith(f"{script}:4:10: error: unknown state 'nowhere'")


def test_a_broken_scenario_file_runs_nothing(runner, tmp_path):
    outcome = runner.run_script(str(write_script(tmp_path, "[[scenario]\n")))
    assert len(outcome.problems) == 1 and "not valid TOML" in outcome.problems[0]
    assert outcome.outcomes == []


def test_a_run_time_error_fails_a_scenario_unless_expected(runner, tmp_path):
    script = "dialogue e\nvar n = 0\nstart main\nstate main:\n    set n = n + \"x\"\n"
    path = write_script(tmp_path, '[[scenario]]\nname = "boom"\n\n[[scenario]]\nname = "expected"\n'
                                  'expect_error = "as a number"\n', script=script, name="e")
    outcome = runner.run_script(str(path))
    assert statuses(outcome) == [("boom", FAILED), ("expected", PASSED)]
    assert outcome.outcomes[0].failures[0].message.startswith("the call ended with an error: e.dlg:5:")


def test_targets_expand_folders_and_scenario_files(tmp_path):
    write_script(tmp_path, "", name="b")
    write_script(tmp_path, "", name="a")
    assert expand_targets([str(tmp_path)]) == [str(tmp_path / "a.dlg"), str(tmp_path / "b.dlg")]
    assert expand_targets([str(tmp_path / "a.test.toml"), str(tmp_path / "a.dlg")]) == [str(tmp_path / "a.dlg")]


def test_a_folder_without_scripts_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no .dlg scripts in this folder"):
        expand_targets([str(tmp_path)])


def test_a_path_that_is_not_a_script_is_refused(runner, tmp_path):
    outcome = runner.run_script(str(tmp_path / "notes.txt"))
    assert "not a .dlg script" in outcome.problems[0]
