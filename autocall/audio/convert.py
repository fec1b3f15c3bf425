"""Conversion for Asterisk: any decodable audio to 16 kHz ``.sln16`` and 8 kHz ``.sln`` (mono, 16-bit signed linear).

One ffmpeg process decodes the input once and writes every output; its
resampler filters properly before lowering the rate (pydub's in-Python
``audioop.ratecv`` does not, and aliases at 8 kHz). Each output is written
under a temporary name in its final folder and renamed into place, so a
reader (Asterisk, another process) sees the old file or the whole new one.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Sequence

from autocall.audio.errors import AudioError
from autocall.audio.ffmpeg import failure_reason, run_ffmpeg

SLN16_RATE = 16_000
SLN_RATE = 8_000
CONVERT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Output:
    """One file to write: ``container`` is ``s16le`` (raw, as .sln/.sln16) or ``wav``; always mono 16-bit."""

    path: str
    rate: int
    container: str = "s16le"


def temporary_path(final_path: str) -> str:
    """A name beside ``final_path`` that no other writer uses and no sound lookup matches (hidden, ``.tmp``)."""
    folder, base = os.path.split(final_path)
    return os.path.join(folder, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    temp = temporary_path(path)
    try:
        with open(temp, "xb") as stream:
            stream.write(data)
        os.replace(temp, path)
    finally:
        _remove_quietly(temp)


def convert_audio(src_path: str | os.PathLike[str], outputs: Sequence[Output]) -> None:
    """Decode ``src_path`` once and write each output atomically; raise AudioError naming the source."""
    src = os.fspath(src_path)
    for output in outputs:
        folder = os.path.dirname(os.path.abspath(output.path))
        if not os.access(folder, os.W_OK):
            raise AudioError(output.path, f"cannot be written: the folder {folder} is missing or not writable")
    temps = [temporary_path(output.path) for output in outputs]
    args = ["-loglevel", "error", "-i", src]
    for output, temp in zip(outputs, temps):
        args += ["-map", "0:a:0", "-ac", "1", "-ar", str(output.rate), "-c:a", "pcm_s16le",
                 "-map_metadata", "-1", "-fflags", "+bitexact", "-f", output.container, temp]
    try:
        proc = run_ffmpeg(args, file=src, timeout=CONVERT_TIMEOUT_S)
        if proc.returncode != 0:
            reason = failure_reason(proc.stderr)
            for output, temp in zip(outputs, temps):
                if temp in reason:   # ffmpeg could not create the output: that file's problem, not the source's
                    raise AudioError(output.path, f"cannot be written ({reason.replace(temp, '').strip(': ')})")
            raise AudioError(src, f"cannot be converted (ffmpeg: {reason})")
        header = {"s16le": 0, "wav": 44}
        if any(os.path.getsize(temp) <= header.get(output.container, 0) for output, temp in zip(outputs, temps)):
            raise AudioError(src, "decodes to no audio; upload the audio again")
        for output, temp in zip(outputs, temps):
            try:
                os.replace(temp, output.path)
            except OSError as exc:
                raise AudioError(output.path, f"cannot be written ({exc.strerror})") from None
    finally:
        for temp in temps:
            _remove_quietly(temp)


def convert_for_asterisk(src_path: str | os.PathLike[str], dest_dir: str | os.PathLike[str],
                         name: str) -> tuple[str, str]:
    """Write ``dest_dir/name.sln16`` (16 kHz) and ``dest_dir/name.sln`` (8 kHz); return both paths.

    ``name`` may hold a sub-folder (``tts/ab12``), created if missing.
    """
    base = os.path.join(os.fspath(dest_dir), name)
    os.makedirs(os.path.dirname(base), exist_ok=True)
    wide, narrow = base + ".sln16", base + ".sln"
    convert_audio(src_path, [Output(wide, SLN16_RATE), Output(narrow, SLN_RATE)])
    return wide, narrow


def outputs_for(path: str) -> list[Output]:
    """The files to write for an output name, by extension: ``.sln16``, ``.sln``, ``.wav`` (16 kHz), or none for
    both raw forms; AudioError for another extension or a folder that does not exist."""
    base, ext = os.path.splitext(path)
    forms = {".sln16": [Output(path, SLN16_RATE)], ".sln": [Output(path, SLN_RATE)],
             ".wav": [Output(path, SLN16_RATE, "wav")],
             "": [Output(base + ".sln16", SLN16_RATE), Output(base + ".sln", SLN_RATE)]}
    if ext.lower() not in forms:
        raise AudioError(path, f"cannot write '{ext}' files; name it .sln16, .sln, .wav, "
                               f"or give no extension for both .sln16 and .sln")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise AudioError(path, f"the folder {folder} does not exist")
    return forms[ext.lower()]


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
