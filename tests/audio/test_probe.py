"""Prompt-file validation: formats judged by content, the limits, and clear problems for everything else."""

from __future__ import annotations

import struct
import wave

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autocall.audio.errors import AudioError
from autocall.audio.probe import (MAX_PROMPT_BYTES, MAX_PROMPT_SECONDS, assess, format_seconds, inspect_audio,
                                  validate_prompt_file)

from .helpers import silence, tone


@pytest.fixture(scope="module")
def stereo_mp3(tmp_path_factory):
    return tone(tmp_path_factory.mktemp("probe") / "stereo.mp3", seconds=3, rate=44100, channels=2, fmt="mp3")


def test_mp3_44k_stereo_is_read_from_its_frames_and_decoded_duration(stereo_mp3):
    info = inspect_audio(stereo_mp3)
    assert (info.format, info.sample_rate, info.channels, info.sample_width) == ("mp3", 44100, 2, None)
    assert info.duration_s == pytest.approx(3.0, rel=0.01)
    assert validate_prompt_file(stereo_mp3) == []


def test_mp3_is_recognised_by_content_whatever_its_name(stereo_mp3, tmp_path):
    renamed = tmp_path / "prompt.wav"
    renamed.write_bytes(open(stereo_mp3, "rb").read())
    assert inspect_audio(renamed).format == "mp3"
    assert validate_prompt_file(renamed) == []


def test_wav_at_8khz_is_accepted_with_a_low_quality_warning(tmp_path):
    path = tone(tmp_path / "narrow.wav", seconds=1, rate=8000)
    assert validate_prompt_file(path) == ["sampled at 8000 Hz, below 16 kHz: quality will be limited"]


def test_wav_of_6_megabytes_is_refused_naming_file_and_limit(tmp_path):
    path = tmp_path / "big.wav"
    silence(path, seconds=36)
    assert path.stat().st_size > 6_000_000
    with pytest.raises(AudioError) as caught:
        validate_prompt_file(path)
    assert caught.value.file == str(path)
    assert "too large" in caught.value.problem and "5 MB" in caught.value.problem
    assert str(caught.value) == f"{path}: {caught.value.problem}"


def test_truncated_mp3_is_refused_as_truncated(stereo_mp3, tmp_path):
    data = open(stereo_mp3, "rb").read()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 2 + 7])   # mid-frame, as an interrupted upload leaves it
    with pytest.raises(AudioError, match=r"truncated: its header promises 3\.0 s but only 1\.\d s"):
        validate_prompt_file(cut)


def test_mp3_behind_an_id3_tag_larger_than_the_first_read_is_found(tmp_path):
    path = tone(tmp_path / "tagged.mp3", seconds=1, rate=44100, fmt="mp3", tags={"comment": "x" * 100_000})
    assert open(path, "rb").read(3) == b"ID3" and (tmp_path / "tagged.mp3").stat().st_size > 100_000
    info = inspect_audio(path)
    assert (info.format, info.sample_rate) == ("mp3", 44100)
    assert info.duration_s == pytest.approx(1.0, rel=0.05)


def test_text_file_named_wav_is_refused_as_not_audio(tmp_path):
    path = tmp_path / "hello.wav"
    path.write_text("Hello, this is not a recording.\n")
    with pytest.raises(AudioError) as caught:
        validate_prompt_file(path)
    assert caught.value.problem == "not MP3 or WAV: it is a text file, not audio"


def test_ogg_is_refused_saying_it_looks_like_ogg_and_how_to_fix(tmp_path):
    path = tone(tmp_path / "prompt.ogg", fmt="ogg", codec="libvorbis")
    with pytest.raises(AudioError, match="it looks like an Ogg file.*convert it to WAV or MP3"):
        validate_prompt_file(path)


def test_flac_is_named_as_flac(tmp_path):
    path = tone(tmp_path / "prompt.flac", fmt="flac")
    assert inspect_audio(path).format == "flac"
    with pytest.raises(AudioError, match="it looks like a FLAC file"):
        validate_prompt_file(path)


def test_wav_with_8_bit_samples_is_accepted(tmp_path):
    path = tone(tmp_path / "u8.wav", seconds=1, rate=16000, codec="pcm_u8")
    info = inspect_audio(path)
    assert (info.sample_width, info.encoding, info.duration_s) == (1, "pcm", 1.0)
    assert validate_prompt_file(path) == []


def test_wav_cut_short_is_refused_as_truncated(tmp_path):
    path = tone(tmp_path / "whole.wav", seconds=2)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(open(path, "rb").read()[:20_000])
    with pytest.raises(AudioError, match="truncated: its header promises 2.0 s but only 0.6 s"):
        validate_prompt_file(cut)


def test_wav_written_to_a_pipe_without_sizes_is_measured_from_the_file(tmp_path):
    path = tone(tmp_path / "piped.wav", seconds=1)
    data = bytearray(open(path, "rb").read())
    data[4:8] = data[40:44] = struct.pack("<I", 0xFFFFFFFF)   # RIFF and data sizes as streaming writers leave them
    path_piped = tmp_path / "streamed.wav"
    path_piped.write_bytes(bytes(data))
    assert inspect_audio(path_piped).duration_s == pytest.approx(1.0)


def test_compressed_wav_is_decoded_to_prove_it_plays(tmp_path):
    path = tone(tmp_path / "adpcm.wav", seconds=1, fmt="wav", codec="adpcm_ima_wav")
    info = inspect_audio(path)
    assert info.encoding == "ima-adpcm" and info.duration_s == pytest.approx(1.0, abs=0.05)
    assert validate_prompt_file(path) == []


@pytest.mark.parametrize("content, problem", [
    (b"", "empty file (0 bytes); upload the audio again"),
    (b"RIFF\x24\x00\x00\x00WAVEdata\x00\x00\x00\x00", "damaged WAV header: no format ('fmt ') chunk"),
    (b"RIFF\x28\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00"
     b"\x03\x00\x10\x00data\x04\x00\x00\x00\x00\x00\x00\x00",
     "damaged WAV header: 3-byte frames do not fit 1 channel(s) of 16-bit samples"),
    (b"OggS" + bytes(60), "it looks like an Ogg file"),
    (b"%PDF-1.4\n" + bytes(100), "not MP3 or WAV: it is a PDF document, not audio"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x05hello", "it has an MP3 tag (ID3) but no MP3 audio after it"),
    (bytes(range(256)) * 4, "its content is not audio in any format AutoCall recognises"),
])
def test_unusable_content_gets_a_problem_that_says_what_it_is(tmp_path, content, problem):
    path = tmp_path / "upload.mp3"
    path.write_bytes(content)
    with pytest.raises(AudioError) as caught:
        validate_prompt_file(path)
    assert problem in caught.value.problem
    assert str(path) not in caught.value.problem


def test_missing_file_is_an_audio_error_not_a_traceback(tmp_path):
    with pytest.raises(AudioError, match="file not found"):
        validate_prompt_file(tmp_path / "nope.mp3")


def test_longer_than_ten_minutes_is_refused_with_the_limit(tmp_path):
    path = tmp_path / "long.wav"
    with wave.open(str(path), "wb") as out:   # 601 s of 8-bit silence at 2 kHz: long, yet small
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(2000)
        out.writeframes(b"\x80" * 2000 * 601)
    assert path.stat().st_size < MAX_PROMPT_BYTES
    with pytest.raises(AudioError, match="too long: 10 min 1 s, the limit for prompts is 10 min"):
        validate_prompt_file(path)
    assert MAX_PROMPT_SECONDS == 600


def test_a_changed_file_is_inspected_again(tmp_path):
    path = tone(tmp_path / "changing.wav", seconds=1)
    assert inspect_audio(path).duration_s == pytest.approx(1.0)
    tone(path, seconds=2)
    assert inspect_audio(path).duration_s == pytest.approx(2.0)


@pytest.mark.parametrize("seconds, text", [(2.456, "2.5 s"), (45, "45 s"), (600, "10 min"), (750, "12 min 30 s")])
def test_durations_read_naturally_in_messages(seconds, text):
    assert format_seconds(seconds) == text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rate=st.integers(4000, 48000), channels=st.integers(1, 2), width=st.sampled_from([1, 2, 3, 4]),
       frames=st.integers(0, 4000))
def test_any_pcm_wav_header_is_read_back_exactly(tmp_path, rate, channels, width, frames):
    path = tmp_path / f"w{rate}-{channels}-{width}-{frames}.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(bytes(frames * channels * width))
    info = inspect_audio(path)
    assert (info.format, info.sample_rate, info.channels, info.sample_width) == ("wav", rate, channels, width)
    assert info.duration_s == pytest.approx(frames / rate)
    assert (assess(info).error == "holds no audio (0 s); upload the audio again") == (frames == 0)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from([b"", b"RIFF\x00\x10\x00\x00WAVE", b"RIFF\xff\xff\xff\xffWAVEfmt ", b"ID3\x03\x00\x00",
                               b"\xff\xfb\x90\x64", b"OggS"]),
       body=st.binary(max_size=300))
def test_arbitrary_bytes_give_facts_or_an_audio_error_never_a_crash(tmp_path, prefix, body):
    path = tmp_path / "fuzz.bin"
    path.write_bytes(prefix + body)
    try:
        verdict = assess(inspect_audio(path))
    except AudioError:
        return
    assert verdict.error is None or verdict.error.strip()
