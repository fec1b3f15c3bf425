"""The TTS worker process: reused between renders, killed and restarted when it hangs, errors as AudioError."""

from __future__ import annotations

import subprocess
import sys
import time
import wave

import pytest

from autocall.audio.errors import AudioError
from autocall.audio.worker import TtsWorker, engine_version, prompt_label

from .helpers import FAKE_WORKER_ARGV


@pytest.fixture
def fake_worker():
    worker = TtsWorker(timeout=1.0, argv=FAKE_WORKER_ARGV)
    yield worker
    worker.close()


def test_real_worker_renders_wavs_and_is_reused(tmp_path):
    worker = TtsWorker()
    try:
        for index, voice in enumerate(["gmw/en-us", "gmw/de", "gmw/en-us+f3"]):
            out = tmp_path / f"{index}.wav"
            worker.render("One two three.", voice, 160, str(out))
            with wave.open(str(out)) as rendered:
                assert rendered.getnframes() > 22050 * 0.5
        assert worker.starts == 1
    finally:
        worker.close()


def _seconds(path) -> float:
    with wave.open(str(path)) as rendered:
        return rendered.getnframes() / rendered.getframerate()


def test_the_first_render_of_a_fresh_worker_is_whole(tmp_path):
    """pyttsx3's first runAndWait in a process returns before espeak-ng has spoken: the file was empty."""
    worker = TtsWorker()
    try:
        worker.render("Your appointment is on Monday at ten in the morning. " * 8, "gmw/en-us", 160,
                      str(tmp_path / "long.wav"))
    finally:
        worker.close()
    assert _seconds(tmp_path / "long.wav") > 20


def test_every_render_keeps_its_own_voice_and_rate_on_a_busy_machine(tmp_path):
    """espeak-ng finishes a message on its own thread after pyttsx3 returns; a rate set then was lost."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    worker = TtsWorker()
    durations: dict[tuple[str, int], list[float]] = {}
    try:
        for index in range(36):
            voice, rate = ["gmw/en-us", "gmw/de"][index // 3 % 2], [120, 240, 175][index % 3]
            out = tmp_path / f"{index}.wav"
            worker.render("Please hold.", voice, rate, str(out))
            durations.setdefault((voice, rate), []).append(_seconds(out))
    finally:
        worker.close()
        for burner in burners:
            burner.kill()
            burner.wait()
    for (voice, rate), seconds in durations.items():
        assert max(seconds) < min(seconds) * 1.1, (voice, rate, durations)   # a wrong rate is 1.5x to 2x off
    for voice in ["gmw/en-us", "gmw/de"]:
        assert durations[voice, 120][0] > durations[voice, 175][0] > durations[voice, 240][0], durations


# The real worker, except that espeak_IsPlaying (as pyttsx3 binds it) says "busy" once, as espeak-ng's
# thread does for a moment when it has just taken a command or closes its idle stream.
_BUSY_ONCE_WORKER = r"""
import sys
from pyttsx3.drivers import _espeak
from autocall.audio import worker
answers, real = iter([1]), _espeak.IsPlaying
_espeak.IsPlaying = lambda: next(answers, None) or real()
sys.exit(worker.main())
"""


def _render_voice_switches(worker, folder, prefix: str) -> None:
    for index, voice in enumerate(["gmw/en-us", "gmw/de", "gmw/en-us+f3"]):
        out = folder / f"{prefix}-{index}.wav"
        worker.render("One two three.", voice, 160, str(out))
        assert _seconds(out) > 0.5, (prefix, voice)


def test_fresh_workers_switching_voices_on_a_busy_machine_render_whole_files(tmp_path):
    """pyttsx3's driver took a moment's "busy" from espeak-ng as a stop, kept it, and cancelled a later render.

    Both CPUs are kept busy, and every other worker's espeak_IsPlaying also says "busy" once, as
    espeak-ng's thread did under load in about one fresh worker in twenty.
    """
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(4)]
    deadline = time.monotonic() + 8
    workers = 0
    try:
        while workers < 4 or time.monotonic() < deadline:
            worker = TtsWorker(argv=[sys.executable, "-c", _BUSY_ONCE_WORKER] if workers % 2 == 0 else None)
            try:
                for attempt in range(2):
                    _render_voice_switches(worker, tmp_path, f"{workers}-{attempt}")
                assert worker.starts == 1
            finally:
                worker.close()
            workers += 1
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def test_a_render_that_hangs_times_out_and_the_next_render_gets_a_fresh_worker(fake_worker, tmp_path):
    with pytest.raises(AudioError) as caught:
        fake_worker.render("hang", "gmw/en-us", 160, str(tmp_path / "a.wav"))
    assert caught.value.file == 'prompt "hang"'
    assert "did not finish within 1 s; the worker was restarted" in caught.value.problem
    fake_worker.render("hello", "gmw/en-us", 160, str(tmp_path / "b.wav"))
    assert fake_worker.starts == 2
    assert (tmp_path / "b.wav").exists()


def test_a_worker_that_dies_mid_render_is_an_audio_error_then_replaced(fake_worker, tmp_path):
    with pytest.raises(AudioError, match=r"the text-to-speech worker stopped \(exit code 3\)"):
        fake_worker.render("crash", "gmw/en-us", 160, str(tmp_path / "a.wav"))
    fake_worker.render("hello", "gmw/en-us", 160, str(tmp_path / "b.wav"))
    assert fake_worker.starts == 2


def test_a_failed_render_reports_the_reason_and_the_worker_lives_on(tmp_path):
    worker = TtsWorker()
    try:
        with pytest.raises(AudioError, match="text-to-speech failed: FileNotFoundError"):
            worker.render("Hello.", "gmw/en-us", 160, str(tmp_path / "missing-folder" / "a.wav"))
        worker.render("Hello.", "gmw/en-us", 160, str(tmp_path / "a.wav"))
        assert worker.starts == 1
    finally:
        worker.close()


def test_a_worker_that_cannot_start_says_so(tmp_path):
    worker = TtsWorker(timeout=1.0, argv=[FAKE_WORKER_ARGV[0], "-c", "import sys; sys.exit(7)"])
    with pytest.raises(AudioError, match=r"text-to-speech: the worker process did not start \(exit code 7\)"):
        worker.render("Hello.", "gmw/en-us", 160, str(tmp_path / "a.wav"))


def test_engine_version_names_espeak_and_pyttsx3():
    assert engine_version().startswith("espeak-ng 1.") and "; pyttsx3 " in engine_version()


def test_long_prompts_are_shortened_in_error_labels():
    assert prompt_label("Thank you   for calling.") == 'prompt "Thank you for calling."'
    assert prompt_label("x" * 100) == f'prompt "{"x" * 37}..."'
