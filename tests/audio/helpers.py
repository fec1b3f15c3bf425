"""Making real audio for the tests (pydub, through ffmpeg for MP3, Ogg and 8-bit WAV) and measuring what was written.

Only tools the Makefile installs are used (ffmpeg, espeak-ng), not sox.
"""

from __future__ import annotations

import math
import os
import sys
from array import array

# A worker that speaks the worker protocol without espeak: "hang" never answers, "crash" exits.
FAKE_WORKER = r'''
import json, sys, wave
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    if request["text"] == "hang":
        sys.stdin.readline()   # the parent never sends this line: no reply, ever
    if request["text"] == "crash":
        sys.exit(3)
    with wave.open(request["out"], "wb") as out:
        out.setnchannels(1); out.setsampwidth(2); out.setframerate(22050)
        out.writeframes(b"\x00\x10" * 22050)
    print(json.dumps({"ok": True}), flush=True)
'''
FAKE_WORKER_ARGV = [sys.executable, "-c", FAKE_WORKER]


def tone(path, seconds: float = 1.0, rate: int = 16000, channels: int = 1, fmt: str = "wav",
         hz: int = 440, **export) -> str:
    """A sine tone written with pydub (MP3 through ffmpeg's LAME); returns the path."""
    from pydub import AudioSegment
    from pydub.generators import Sine
    mono = Sine(hz, sample_rate=rate).to_audio_segment(duration=seconds * 1000, volume=-6)
    segment = mono if channels == 1 else AudioSegment.from_mono_audiosegments(*[mono] * channels)
    segment.export(str(path), format=fmt, **export)
    return str(path)


def silence(path, seconds: float, rate: int = 44100, channels: int = 2) -> str:
    """A silent 16-bit WAV (instant at any length, unlike a generated tone); returns the path."""
    from pydub import AudioSegment
    AudioSegment.silent(duration=seconds * 1000, frame_rate=rate).set_channels(channels).export(str(path), format="wav")
    return str(path)


def raw_samples(path) -> array:
    """The 16-bit little-endian samples of a headerless .sln/.sln16 file."""
    samples = array("h")
    with open(path, "rb") as stream:
        samples.frombytes(stream.read())
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def raw_seconds(path, rate: int) -> float:
    return os.path.getsize(path) / 2 / rate


def rms(samples: array) -> float:
    return math.sqrt(sum(s * s for s in samples) / max(len(samples), 1))


def zero_crossings_per_second(samples: array, rate: int) -> float:
    crossings = sum(1 for a, b in zip(samples, samples[1:]) if (a < 0) != (b < 0))
    return crossings / (len(samples) / rate)
