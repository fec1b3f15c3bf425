"""The persistent cache of audio verdicts used by `autocall check`."""

from __future__ import annotations

import os

import pytest

from autocall.audio.prompt_checks import CachedValidator, PromptCheckError


class Counting:
    def __init__(self, outcome):
        self.calls = 0
        self.outcome = outcome

    def __call__(self, path):
        self.calls += 1
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return list(self.outcome)


class Problem(Exception):
    def __init__(self, problem):
        super().__init__(problem)
        self.problem = problem


def test_an_unchanged_file_is_validated_once_across_runs(tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"x" * 10)
    first = Counting(["sampled at 8000 Hz"])
    cache = CachedValidator(first, tmp_path / "cache.json")
    assert cache(str(audio)) == ["sampled at 8000 Hz"]
    cache.save()
    second = Counting([])
    assert CachedValidator(second, tmp_path / "cache.json")(str(audio)) == ["sampled at 8000 Hz"]
    assert (first.calls, second.calls) == (1, 0)


def test_errors_are_cached_with_their_message(tmp_path):
    audio = tmp_path / "bad.mp3"
    audio.write_bytes(b"junk")
    cache = CachedValidator(Counting(Problem("not MP3 or WAV")), tmp_path / "cache.json")
    with pytest.raises(Problem):
        cache(str(audio))
    cache.save()
    with pytest.raises(PromptCheckError, match="not MP3 or WAV"):
        CachedValidator(Counting([]), tmp_path / "cache.json")(str(audio))


def test_a_changed_file_is_validated_again(tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"x" * 10)
    cache = CachedValidator(Counting([]), tmp_path / "cache.json")
    cache(str(audio))
    cache.save()
    audio.write_bytes(b"y" * 20)
    os.utime(audio, ns=(1, 1))
    again = Counting(["changed"])
    assert CachedValidator(again, tmp_path / "cache.json")(str(audio)) == ["changed"] and again.calls == 1


def test_a_broken_or_unwritable_cache_is_ignored(tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"x")
    broken = tmp_path / "cache.json"
    broken.write_text("{not json")
    validator = Counting([])
    cache = CachedValidator(validator, broken)
    assert cache(str(audio)) == [] and validator.calls == 1
    cache.save()
    unwritable = CachedValidator(Counting([]), tmp_path / "file-not-dir" / "cache.json")
    (tmp_path / "file-not-dir").write_text("")
    unwritable(str(audio))
    unwritable.save()  # no exception
