"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from autocall.audio.prompt_checks import audio_checks
from autocall.dsl.compiler import Compiler

ROOT = Path(__file__).resolve().parent.parent

# Caches (e.g. audio verdicts of `autocall check`) go to a scratch folder, never the user's home.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="autocall-test-cache-")


@pytest.fixture(scope="session")
def compiler() -> Compiler:
    """One compiler (its parser is built once) that also validates audio files and voices."""
    return Compiler(**audio_checks())


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


def _autocall_children() -> set[int]:
    """Child processes of this test process that run the autocall command (Linux /proc)."""
    found = set()
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                parent = handle.read().rsplit(b")", 1)[1].split()[1].decode()
            if parent != me:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except (OSError, IndexError):
            continue
        if b"autocall" in argv and b"-m" in argv:
            found.add(int(entry))
    return found


@pytest.fixture(autouse=True)
def _no_autocall_process_left_behind():
    """A test that starts `python -m autocall ...` and fails half-way must not leave it running."""
    before = _autocall_children()
    yield
    for pid in _autocall_children() - before:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
