"""Fixtures for the FastAGI server tests: a live server on 127.0.0.1 (port 0) with its own database.

``serve(scripts_dir, ...)`` starts an ``AgiServer`` on the in-test reactor
(``live_reactor``, tests/fakes/README.md) with a record writer on a fresh
SQLite file, fake sounds and, unless asked otherwise, compilation on the
reactor with the session's compiler (the worker thread is for the reload
tests). Everything it starts is stopped at the end of the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.agi_fixtures import agi_paths, live_reactor, parametrize_agi_paths  # noqa: F401  (fixtures)
from tests.server.helpers import Running, start_server


def pytest_generate_tests(metafunc) -> None:
    """Every server test runs with the AGI layer's fast paths on, and off (``autocall.agi.fastpaths``)."""
    parametrize_agi_paths(metafunc)


@pytest.fixture
def scripts(tmp_path) -> Path:
    folder = tmp_path / "scripts"
    folder.mkdir()
    return folder


@pytest.fixture
def serve(live_reactor, tmp_path, compiler):  # noqa: F811  (the fixture imported above)
    started: list[Running] = []

    def start(scripts_dir: Path, **options) -> Running:
        options.setdefault("database", str(tmp_path / f"calls-{len(started)}.db"))
        running = start_server(live_reactor, scripts_dir, compiler=compiler, **options)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
