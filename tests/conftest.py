"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from autocall.dsl.compiler import Compiler

ROOT = Path(__file__).resolve().parent.parent

# Caches (e.g. audio verdicts of `autocall check`) go to a scratch folder, never the user's home.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="autocall-test-cache-")


@pytest.fixture(scope="session")
def compiler() -> Compiler:
    """One compiler (its parser is built once) that also validates audio files and voices."""
    return Compiler()


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return ROOT / "scripts_examples"


@pytest.fixture
def compile_text(compiler, tmp_path):
    """Compile script text written to a temporary ``test.dlg``; returns the CompileResult."""
    def run(text: str, name: str = "test.dlg"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return compiler.compile_file(str(path))
    return run
