"""Running scenario files: each script compiled once, each selected scenario one simulated call."""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field
from typing import Callable

from autocall.dsl.compiler import Compiler
from autocall.engine.interpreter import DEFAULT_MAX_DURATION_MS
from autocall.engine.ir import Program
from autocall.engine.record import CallRecord
from autocall.errors import UserError
from autocall.scenarios.checks import Failure, check
from autocall.scenarios.spec import SUFFIX, Scenario, load_scenario_file, scenario_path
from autocall.sim.runner import parse_settings, simulate

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"


@dataclass
class ScenarioOutcome:
    scenario: Scenario
    status: str
    failures: list[Failure] = field(default_factory=list)
    record: CallRecord | None = None
    rerun: str = ""                    # the `autocall simulate` command that replays the call


@dataclass
class ScriptOutcome:
    script: str
    scenario_file: str | None = None
    problems: list[str] = field(default_factory=list)     # the script could not be tested: why (rendered)
    diagnostics: list[str] = field(default_factory=list)  # compile errors, as the compiler prints them
    outcomes: list[ScenarioOutcome] = field(default_factory=list)
    deselected: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and all(o.status in (PASSED, SKIPPED) for o in self.outcomes)


@dataclass
class Summary:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    deselected: int = 0
    seconds: float = 0.0

    def add(self, script: ScriptOutcome) -> None:
        self.errors += 1 if script.problems else 0
        self.deselected += script.deselected
        for outcome in script.outcomes:
            if outcome.status == PASSED:
                self.passed += 1
            elif outcome.status == FAILED:
                self.failed += 1
            elif outcome.status == ERROR:
                self.errors += 1
            else:
                self.skipped += 1

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors and (self.passed + self.skipped) > 0

    def to_json(self) -> dict:
        return {"passed": self.passed, "failed": self.failed, "errors": self.errors, "skipped": self.skipped,
                "deselected": self.deselected, "seconds": round(self.seconds, 3)}


def expand_targets(paths: list[str]) -> list[str]:
    """Scripts to test: ``x.dlg`` as is, ``x.test.toml`` -> ``x.dlg``, a folder -> its ``*.dlg``, sorted."""
    scripts: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.normpath(os.path.join(path, name)) for name in os.listdir(path) if name.endswith(".dlg"))
            if not found:
                raise UserError(f"{path}: no .dlg scripts in this folder; give a script or another folder")
            scripts.extend(found)
        elif path.endswith(SUFFIX):
            scripts.append(path[: -len(SUFFIX)] + ".dlg")
        else:
            scripts.append(path)
    return list(dict.fromkeys(scripts))


def selected(name: str, filters: list[str]) -> bool:
    """``-k`` filters: a scenario runs when its name contains any of them (case-insensitive)."""
    return not filters or any(f.lower() in name.lower() for f in filters)


class ScenarioRunner:
    """Tests scripts against their scenario files. One compiler for the whole run."""

    def __init__(self, compiler: Compiler | None = None, filters: list[str] | None = None,
                 max_duration_ms: int = DEFAULT_MAX_DURATION_MS) -> None:
        self.compiler = compiler or Compiler()
        self.filters = filters or []
        self.max_duration_ms = max_duration_ms

    def run_script(self, script: str) -> ScriptOutcome:
        outcome = ScriptOutcome(script)
        if not script.endswith(".dlg"):
            outcome.problems.append(f"{script}: not a .dlg script; give SCRIPT.dlg (its scenarios are in "
                                    f"SCRIPT{SUFFIX} beside it)")
            return outcome
        scenarios_file = scenario_path(script)
        if not os.path.exists(script):
            outcome.problems.append(f"{script}: no such file; check the path")
            return outcome
        if not os.path.exists(scenarios_file):
            outcome.problems.append(f"{script}: no scenario file; write {os.path.basename(scenarios_file)} "
                                    "beside it (format: docs/getting-started.md, \"Scenario tests\")")
            return outcome
        outcome.scenario_file = scenarios_file
        compiled = self.compiler.compile_file(script)
        if not compiled.ok:
            outcome.diagnostics = [compiled.show(d) for d in compiled.errors]
            outcome.problems.append(f"{script}: does not compile ({len(compiled.errors)} error"
                                    f"{'s' if len(compiled.errors) != 1 else ''}); fix it, then run the scenarios")
            return outcome
        loaded = load_scenario_file(scenarios_file, compiled.program)
        outcome.problems.extend(p.render(scenarios_file) for p in loaded.problems)
        if loaded.problems:
            return outcome
        for scenario in loaded.scenarios:
            if not selected(scenario.name, self.filters):
                outcome.deselected += 1
                continue
            outcome.outcomes.append(self.run_scenario(compiled.program, scenario, script, scenarios_file))
        return outcome

    def run_scenario(self, program: Program, scenario: Scenario, script: str = "", scenarios_file: str = ""
                     ) -> ScenarioOutcome:
        if scenario.problems:
            failures = [Failure(p.key or "", p.render(scenarios_file, with_scenario=False))
                        for p in scenario.problems]
            return ScenarioOutcome(scenario, ERROR, failures)
        if scenario.skip is not None:
            return ScenarioOutcome(scenario, SKIPPED)
        settings = parse_settings(program, scenario.settings)
        record = simulate(program, keys=scenario.keys, settings=settings, now=scenario.now,
                          max_duration_ms=self.max_duration_ms, replies=scenario.replies)
        failures = check(scenario.expect, record)
        return ScenarioOutcome(scenario, FAILED if failures else PASSED, failures, record,
                               rerun_command(script or program.source, scenario))


def rerun_command(script: str, scenario: Scenario) -> str:
    """The ``autocall simulate`` line that replays a scenario's call, for copying into a terminal."""
    words = ["autocall", "simulate", script, "--keys", scenario.keys]
    for name, value in scenario.settings.items():
        words += ["--set", f"{name}={value}"]
    if scenario.now is not None:
        words += ["--now", scenario.now.isoformat()]
    return " ".join(shlex.quote(word) for word in words)


def run_all(scripts: list[str], runner: ScenarioRunner,
            on_script: Callable[[ScriptOutcome], None] | None = None) -> tuple[list[ScriptOutcome], Summary]:
    """Test every script in turn; ``on_script`` sees each outcome as soon as it is known."""
    started = time.perf_counter()
    outcomes, summary = [], Summary()
    for script in scripts:
        outcome = runner.run_script(script)
        if on_script is not None:
            on_script(outcome)
        outcomes.append(outcome)
        summary.add(outcome)
    summary.seconds = time.perf_counter() - started
    return outcomes, summary


__all__ = ["ERROR", "FAILED", "PASSED", "SKIPPED", "ScenarioOutcome", "ScenarioRunner",
           "ScriptOutcome", "Summary", "expand_targets", "rerun_command", "run_all", "selected"]
