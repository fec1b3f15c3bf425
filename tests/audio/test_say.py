"""``autocall say``: real text-to-speech to a file, played with a real player (SDL's dummy audio device), errors."""

from __future__ import annotations

import os
import shutil
import wave
from array import array

import pytest

from autocall.cli.main import main

from .helpers import raw_seconds, rms


def _wav(path) -> tuple[wave._wave_params, array]:
    with wave.open(str(path), "rb") as sound:
        params = sound.getparams()
        samples = array("h", sound.readframes(params.nframes))
    return params, samples


def test_say_writes_the_16khz_sound_a_call_hears(tmp_path, capsys):
    out = tmp_path / "hello.wav"
    assert main(["say", "Thank you for calling Acme.", "-o", str(out)]) == 0
    params, samples = _wav(out)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 16000)
    assert params.nframes / 16000 > 0.8 and rms(samples) > 300          # speech, not silence
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}: ") and "voice gmw/en-us, rate 160" in printed


def test_say_voice_and_rate_are_honoured(tmp_path, capsys):
    text = "uno due tre quattro cinque sei"
    assert main(["say", text, "--voice", "it", "--rate", "90", "-o", str(tmp_path / "slow.wav")]) == 0
    assert main(["say", text, "--voice", "it", "--rate", "300", "-o", str(tmp_path / "fast.wav")]) == 0
    slow, fast = (_wav(tmp_path / name)[0].nframes for name in ("slow.wav", "fast.wav"))
    assert slow > 1.8 * fast
    assert "voice roa/it, rate 90" in capsys.readouterr().out


def test_say_without_an_extension_writes_both_raw_forms(tmp_path):
    assert main(["say", "Please hold.", "-o", str(tmp_path / "hold")]) == 0
    assert raw_seconds(tmp_path / "hold.sln16", 16000) == pytest.approx(raw_seconds(tmp_path / "hold.sln", 8000),
                                                                        abs=0.01)


@pytest.fixture
def only_on_path(tmp_path, monkeypatch):
    """PATH holding only the given programs (and what rendering needs), as symlinks to the real ones."""
    def restrict(*programs: str) -> None:
        folder = tmp_path / "bin"
        folder.mkdir()
        for program in ("ffmpeg", "ffprobe", "espeak-ng", *programs):
            real = shutil.which(program)
            assert real, f"{program} is not installed"
            os.symlink(real, folder / program)
        monkeypatch.setenv("PATH", str(folder))
    return restrict


def test_say_play_uses_a_player_found_on_path(only_on_path, monkeypatch, capsys, tmp_path):
    only_on_path("ffplay")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")          # a real ffplay, playing to no speaker
    assert main(["say", "Hello.", "--play", "-o", str(tmp_path / "hello.wav")]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {tmp_path / 'hello.wav'}: ")
    assert main(["say", "Hello.", "--play"]) == 0
    assert capsys.readouterr().out.startswith("played: ")


def test_say_play_without_a_player_says_what_to_install(only_on_path, capsys, tmp_path):
    only_on_path()
    assert main(["say", "Hello.", "--play", "-o", str(tmp_path / "x.wav")]) == 1
    err = capsys.readouterr().err
    assert err == ("autocall: error: --play: no audio player found; install paplay (pulseaudio-utils), "
                   "aplay (alsa-utils) or ffplay (ffmpeg), or write the sound to a file with -o OUT.wav\n")


def test_say_play_when_the_player_fails_is_one_clear_line(only_on_path, monkeypatch, capsys):
    only_on_path("ffplay")
    monkeypatch.setenv("SDL_AUDIODRIVER", "no-such-driver")
    assert main(["say", "Hello.", "--play"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("autocall: error: ffplay: could not play the sound (") and err.count("\n") == 1
    assert "is an audio device available?" in err


@pytest.mark.parametrize("argv, message", [
    (["Hi", "--voice", "zz-nowhere", "-o", "{tmp}/x.wav"], 'voice "zz-nowhere": unknown voice'),
    (["Hi", "--rate", "20", "-o", "{tmp}/x.wav"], "rate 20: out of range; use 80 to 450"),
    (["   ", "-o", "{tmp}/x.wav"], "empty text; there is nothing to say"),
    (["Hi", "-o", "{tmp}/x.mp3"], "cannot write '.mp3' files"),
    (["Hi", "-o", "{tmp}/none/x.wav"], "the folder {tmp}/none does not exist"),
])
def test_say_user_errors_are_one_line_and_exit_1(tmp_path, capsys, argv, message):
    assert main(["say", *(arg.format(tmp=tmp_path) for arg in argv)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("autocall: error: ") and err.count("\n") == 1 and message.format(tmp=tmp_path) in err


def test_say_needs_an_output_or_play(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["say", "Hi"])
    assert exit_info.value.code == 2 and "give -o OUT.wav" in capsys.readouterr().err
