"""Scenario tests for script authors (``autocall test``): ``SCRIPT.test.toml`` beside ``SCRIPT.dlg``.

``load_scenario_file`` reads and checks a file against a compiled script;
``ScenarioRunner`` runs every scenario as a simulated call and checks its
expectations; ``TextReport`` / ``json_report`` show the results.
"""

from autocall.scenarios.checks import Failure, check
from autocall.scenarios.report import TextReport, json_report
from autocall.scenarios.runner import (ERROR, FAILED, PASSED, SKIPPED, ScenarioOutcome, ScenarioRunner,
                                       ScriptOutcome, Summary, expand_targets, run_all)
from autocall.scenarios.spec import EXPECT_KEYS, RUN_KEYS, Problem, Scenario, ScenarioFile, load_scenario_file, \
    scenario_path

__all__ = ["ERROR", "EXPECT_KEYS", "FAILED", "PASSED", "RUN_KEYS", "SKIPPED", "Failure", "Problem", "Scenario",
           "ScenarioFile", "ScenarioOutcome", "ScenarioRunner", "ScriptOutcome", "Summary", "TextReport", "check",
           "expand_targets", "json_report", "load_scenario_file", "run_all", "scenario_path"]
