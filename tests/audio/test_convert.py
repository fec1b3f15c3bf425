"""Conversion for Asterisk: 16 kHz .sln16 and 8 kHz .sln, mono 16-bit, same duration, written atomically."""

from __future__ import annotations

import os
import wave

import pytest

from autocall.audio.convert import Output, convert_audio, convert_for_asterisk
from autocall.audio.errors import AudioError

from .helpers import raw_samples, raw_seconds, rms, tone, zero_crossings_per_second


def test_mp3_44k_stereo_becomes_16k_and_8k_mono_of_the_same_duration(tmp_path):
    source = tone(tmp_path / "in.mp3", seconds=4, rate=44100, channels=2, fmt="mp3", hz=1000)
    wide, narrow = convert_for_asterisk(source, tmp_path / "out", "prompt")
    assert (wide, narrow) == (str(tmp_path / "out/prompt.sln16"), str(tmp_path / "out/prompt.sln"))
    assert raw_seconds(wide, 16000) == pytest.approx(4.0, rel=0.01)
    assert raw_seconds(narrow, 8000) == pytest.approx(4.0, rel=0.01)
    # still the 1 kHz tone (2000 zero crossings a second), at a sensible level, at both rates
    for path, rate in ((wide, 16000), (narrow, 8000)):
        samples = raw_samples(path)
        assert zero_crossings_per_second(samples, rate) == pytest.approx(2000, rel=0.02)
        assert rms(samples) > 3000


def test_wav_with_8_bit_samples_is_converted(tmp_path):
    source = tone(tmp_path / "u8.wav", seconds=2, rate=11025, codec="pcm_u8")
    with wave.open(source) as made:
        assert made.getsampwidth() == 1
    wide, narrow = convert_for_asterisk(source, tmp_path, "u8")
    assert raw_seconds(wide, 16000) == pytest.approx(2.0, rel=0.01)
    assert raw_seconds(narrow, 8000) == pytest.approx(2.0, rel=0.01)
    assert rms(raw_samples(wide)) > 3000   # 8-bit unsigned read as such, not as silence or noise


def test_name_may_hold_a_subfolder_which_is_created(tmp_path):
    source = tone(tmp_path / "in.wav")
    wide, _ = convert_for_asterisk(source, tmp_path / "sounds", "tts/abc")
    assert os.path.isfile(wide) and wide.endswith("sounds/tts/abc.sln16")


def test_wav_output_is_16k_mono_16_bit(tmp_path):
    source = tone(tmp_path / "in.mp3", seconds=1, rate=44100, channels=2, fmt="mp3")
    out = str(tmp_path / "out.wav")
    convert_audio(source, [Output(out, 16000, "wav")])
    with wave.open(out) as result:
        assert (result.getframerate(), result.getnchannels(), result.getsampwidth()) == (16000, 1, 2)
        assert result.getnframes() / 16000 == pytest.approx(1.0, rel=0.01)


def test_undecodable_source_is_an_audio_error_and_leaves_no_files(tmp_path):
    source = tmp_path / "bad.mp3"
    source.write_bytes(b"\xff\xfb\x90\x64" + bytes(3000))
    with pytest.raises(AudioError) as caught:
        convert_for_asterisk(source, tmp_path / "out", "bad")
    assert caught.value.file == str(source)
    assert os.listdir(tmp_path / "out") == []


def test_replacing_a_sound_never_leaves_temporary_files(tmp_path):
    first = tone(tmp_path / "a.wav", seconds=1)
    second = tone(tmp_path / "b.wav", seconds=2)
    convert_for_asterisk(first, tmp_path / "out", "same")
    convert_for_asterisk(second, tmp_path / "out", "same")
    assert sorted(os.listdir(tmp_path / "out")) == ["same.sln", "same.sln16"]
    assert raw_seconds(tmp_path / "out/same.sln16", 16000) == pytest.approx(2.0)
