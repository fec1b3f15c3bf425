"""The standard sounds AutoCall ships in the top-level ``prompts/`` folder (the record beep), and their installation into sounds_dir.

Asterisk ships a ``beep`` of its own; ours is installed as ``autocall-beep``
so that it never shadows it. Where ``prompts/`` is not beside the package
(an installed wheel), the beep is generated with pydub, exactly as
``prompts/make_prompts.py`` made the shipped files.
"""

from __future__ import annotations

import os

from autocall.audio.convert import SLN16_RATE, SLN_RATE, write_atomically
from autocall.audio.errors import cannot_write

BEEP_NAME = "autocall-beep"
BEEP_HZ = 1000
BEEP_MS = 250
BEEP_VOLUME_DB = -6.0
BEEP_FADE_MS = 5   # no click at either end
EXTENSIONS = {".sln16": SLN16_RATE, ".sln": SLN_RATE}

# shipped file stem -> installed sound name
STANDARD_SOUNDS = {"beep": BEEP_NAME}


def shipped_prompts_dir() -> str | None:
    """The top-level ``prompts/`` folder of the source tree, if it is there (editable installs, checkouts)."""
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "prompts")
    return folder if os.path.isfile(os.path.join(folder, "beep.sln16")) else None


def beep_pcm(rate: int) -> bytes:
    """The beep as raw 16-bit mono samples at ``rate``: a 1 kHz sine, 250 ms, -6 dBFS, 5 ms fades."""
    from pydub.generators import Sine
    tone = Sine(BEEP_HZ, sample_rate=rate, bit_depth=16).to_audio_segment(duration=BEEP_MS, volume=BEEP_VOLUME_DB)
    return tone.fade_in(BEEP_FADE_MS).fade_out(BEEP_FADE_MS).raw_data


def standard_sound_data(stem: str) -> dict[str, bytes]:
    """``{".sln16": bytes, ".sln": bytes}`` of a standard sound: the shipped files, else generated."""
    folder = shipped_prompts_dir()
    if folder is not None:
        paths = {ext: os.path.join(folder, stem + ext) for ext in EXTENSIONS}
        if all(os.path.isfile(path) for path in paths.values()):
            data = {}
            for ext, path in paths.items():
                with open(path, "rb") as stream:
                    data[ext] = stream.read()
            return data
    if stem != "beep":
        raise KeyError(stem)
    return {ext: beep_pcm(rate) for ext, rate in EXTENSIONS.items()}


def install_standard_prompts(sounds_dir: str | os.PathLike[str]) -> list[str]:
    """Copy the standard sounds into ``sounds_dir`` (atomically; unchanged files are left alone); return their names."""
    folder = os.fspath(sounds_dir)
    try:
        os.makedirs(folder, exist_ok=True)
        for stem, name in STANDARD_SOUNDS.items():
            for ext, data in standard_sound_data(stem).items():
                target = os.path.join(folder, name + ext)
                if not _same_content(target, data):
                    write_atomically(target, data)
    except OSError as exc:
        raise cannot_write(exc, folder) from None
    return list(STANDARD_SOUNDS.values())


def _same_content(path: str, data: bytes) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(len(data) + 1) == data
    except FileNotFoundError:
        return False
