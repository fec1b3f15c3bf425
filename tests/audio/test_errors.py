"""AudioError: one line, ``file: problem``, a UserError the CLI turns into exit 1."""

from __future__ import annotations

import pickle

from autocall.audio.errors import AudioError
from autocall.errors import UserError


def test_audio_error_is_file_colon_problem_on_one_line():
    error = AudioError("audio/closed.mp3", "too large: 6 MB,\n the limit is 5 MB")
    assert isinstance(error, UserError)
    assert (error.file, error.problem) == ("audio/closed.mp3", "too large: 6 MB, the limit is 5 MB")
    assert str(error) == "audio/closed.mp3: too large: 6 MB, the limit is 5 MB"


def test_audio_error_survives_pickling_across_threads_and_processes():
    copy = pickle.loads(pickle.dumps(AudioError("a.wav", "empty file")))
    assert (copy.file, copy.problem, str(copy)) == ("a.wav", "empty file", "a.wav: empty file")
