"""Golden files: every error and warning the spec lists, rendered exactly as `autocall check` prints them.

Each ``golden/NAME.dlg`` has ``golden/NAME.expected`` beside it. Regenerate
after an intended change with ``UPDATE_GOLDEN=1 pytest tests/language``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.dlg"))


@pytest.mark.parametrize("name", CASES)
def test_diagnostics_match_golden_file(name, compiler, monkeypatch):
    monkeypatch.chdir(GOLDEN)
    result = compiler.compile_file(f"{name}.dlg")
    rendered = result.render() + "\n"
    expected_path = GOLDEN / f"{name}.expected"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_path.write_text(rendered, encoding="utf-8")
    assert rendered == expected_path.read_text(encoding="utf-8")


def test_every_golden_case_reports_something(compiler, monkeypatch):
    monkeypatch.chdir(GOLDEN)
    for name in CASES:
        assert compiler.compile_file(f"{name}.dlg").diagnostics, name
