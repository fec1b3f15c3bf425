"""Fixtures for the audio tests: one TTS sound library per test session (renders are the slow part)."""

from __future__ import annotations

import pytest

from autocall.audio.library import SoundLibrary

SENTENCE = "Thank you for calling Acme support. Please hold."


def pytest_configure(config):
    # pydub imports audioop, deprecated since Python 3.11; it is pydub's import, not ours.
    config.addinivalue_line("filterwarnings", "ignore:'audioop' is deprecated:DeprecationWarning")


@pytest.fixture(scope="session")
def shared_library(tmp_path_factory):
    """A library whose TTS worker and renders are reused by every test that only reads from it."""
    library = SoundLibrary(tmp_path_factory.mktemp("shared-sounds"))
    yield library
    library.close()


@pytest.fixture(scope="session")
def sentence_name(shared_library):
    """SENTENCE rendered once per session with the default voice and rate."""
    return shared_library.tts_name(SENTENCE)


@pytest.fixture
def library(tmp_path):
    """A fresh, empty library for tests that count renders or break things."""
    library = SoundLibrary(tmp_path / "sounds")
    yield library
    library.close()
