"""The AGI suite runs twice: with the AGI layer's fast paths on, and off (``autocall.agi.fastpaths``)."""

from __future__ import annotations

from tests.fakes.agi_fixtures import agi_paths, parametrize_agi_paths  # noqa: F401  (a fixture)


def pytest_generate_tests(metafunc) -> None:
    parametrize_agi_paths(metafunc)
