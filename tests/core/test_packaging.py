"""What pyproject.toml promises a fresh machine."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

packaging = pytest.importorskip("packaging.requirements")

ROOT = Path(__file__).resolve().parents[2]


def _dependencies() -> list:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [packaging.Requirement(text) for text in project["dependencies"]]


@pytest.mark.parametrize("python, wanted", [("3.11", False), ("3.12", False), ("3.13", True), ("3.14", True)])
def test_pydub_gets_audioop_where_python_removed_it(python, wanted):
    """pydub imports ``audioop``, gone from the standard library in 3.13: ``audioop-lts`` stands in there."""
    environment = {"python_version": python, "python_full_version": python + ".0"}
    installed = {req.name for req in _dependencies() if req.marker is None or req.marker.evaluate(environment)}
    assert "pydub" in installed
    assert ("audioop-lts" in installed) is wanted
