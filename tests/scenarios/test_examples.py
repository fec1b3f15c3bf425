"""Every example in scripts_examples/ compiles without a diagnostic, has a scenario file beside it, and
passes all its scenarios (the issue requires it); its flow graph renders."""

from __future__ import annotations

from pathlib import Path

import pytest

from autocall.graph import build_graph, render_dot, render_mermaid
from autocall.scenarios import PASSED, ScenarioRunner

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "scripts_examples").glob("*.dlg"))


def test_the_seven_examples_are_there():
    assert [p.stem for p in EXAMPLES] == ["appointment_reminder", "bank_line", "directory", "payment_reminder",
                                          "sondaggio", "support", "survey"]


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_compiles_cleanly(compiler, script):
    result = compiler.compile_file(str(script))
    assert result.diagnostics == [], result.render()
    graph = build_graph(result.program)
    assert render_dot(graph) and render_mermaid(graph)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_scenarios_all_pass(compiler, script):
    outcome = ScenarioRunner(compiler).run_script(str(script))
    assert outcome.problems == []
    assert len(outcome.outcomes) >= 8
    failed = {o.scenario.name: [f.message for f in o.failures] for o in outcome.outcomes if o.status != PASSED}
    assert failed == {}
