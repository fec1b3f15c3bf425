"""The guide's first dialogue and its scenario file (docs/getting-started.md) compile and pass, so the
page never teaches something that does not work."""

from __future__ import annotations

import re
from pathlib import Path

from autocall.scenarios import PASSED, ScenarioRunner

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "getting-started.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", GUIDE.read_text(encoding="utf-8"), re.S | re.M)


def test_the_guides_bakery_passes_its_scenarios(compiler, tmp_path):
    [script] = [b for b in blocks("") if b.lstrip().startswith("# Rosa's Bakery")]
    [scenarios] = blocks("toml")
    (tmp_path / "bakery.dlg").write_text(script, encoding="utf-8")
    (tmp_path / "bakery.test.toml").write_text(scenarios, encoding="utf-8")
    outcome = ScenarioRunner(compiler).run_script(str(tmp_path / "bakery.dlg"))
    assert outcome.problems == []
    assert [(o.scenario.name, o.status) for o in outcome.outcomes if o.status != PASSED] == []
    assert len(outcome.outcomes) == 6
