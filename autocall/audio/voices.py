"""The espeak-ng voices pyttsx3 can use, and script voice names (``en-us``, ``de``, ``en-us+f3``) mapped to their ids.

The list is read once per process from ``espeak-ng --voices`` (a few ms; it
also gives each voice's secondary languages and priorities, which is how
``en`` finds the main English voice); without that command, from the espeak
library through pyttsx3. The compiler calls ``resolve_voice`` for every
``voice "..."``, so it must stay cheap.
"""

from __future__ import annotations

import difflib
import functools
import re
import shutil
import subprocess
from dataclasses import dataclass

from autocall.audio.errors import AudioError

MIN_RATE = 80    # espeak-ng's limits, in words per minute
MAX_RATE = 450
_OTHER_LANGUAGE = re.compile(r"\(([^\s()]+)\s+(\d+)\)")


@dataclass(frozen=True)
class Voice:
    """One voice: ``id`` is what pyttsx3 takes (``gmw/en-us``); languages are (code, priority), lower is preferred."""

    id: str
    name: str
    languages: tuple[tuple[str, int], ...]


@functools.lru_cache(maxsize=1)
def voice_table() -> tuple[Voice, ...]:
    """Every installed voice (cached per process)."""
    listing = _espeak_listing("--voices")
    voices = _parse_listing(listing) if listing is not None else _voices_from_pyttsx3()
    if not voices:
        raise AudioError("text-to-speech", "no espeak-ng voices are installed (apt-get install espeak-ng)")
    return tuple(voices)


@functools.lru_cache(maxsize=1)
def variant_names() -> tuple[str, ...]:
    """espeak-ng voice variants (``f3``, ``klatt``...), lower-cased, usable as ``voice+variant``."""
    listing = _espeak_listing("--voices=variant") or ""
    return tuple(voice.id.rsplit("/", 1)[-1] for voice in _parse_listing(listing))


def available_voices() -> list[str]:
    """The pyttsx3 voice ids, e.g. ``gmw/en-us``."""
    return [voice.id for voice in voice_table()]


def language_codes() -> list[str]:
    """Every language code a script may write as its voice, sorted."""
    return sorted({code for voice in voice_table() for code, _ in voice.languages})


@functools.lru_cache(maxsize=512)
def resolve_voice(name: str) -> str:
    """The pyttsx3 voice id for a script's voice name; AudioError listing what exists if there is none.

    Tried in order, case-insensitively: a language code (``en-us``), a voice id
    with or without its family (``gmw/en-us``, ``en-us``), a voice name
    (``English_(America)``), then a secondary language (``en``), where the
    voice with the best priority wins. A ``+variant`` suffix is kept.
    """
    wanted = name.strip().lower().replace("_", "-")
    base, _, variant = wanted.partition("+")
    voice = _find(base)
    if voice is None:
        raise AudioError(f'voice "{name}"', _unknown_voice(base))
    if not variant:
        return voice.id
    if variant not in variant_names():
        near = difflib.get_close_matches(variant, variant_names(), n=5)
        shown = f"closest: {', '.join(near)}" if near else f"variants: {', '.join(variant_names())}"
        raise AudioError(f'voice "{name}"', f"unknown variant '{variant}'; {shown}")
    return f"{voice.id}+{variant}"


def check_rate(rate: int) -> int:
    """The speaking rate if espeak-ng accepts it; AudioError otherwise."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"rate {rate}", f"out of range; use {MIN_RATE} to {MAX_RATE} words per minute")
    return rate


def _find(base: str) -> Voice | None:
    primary, secondary = [], []
    for voice in voice_table():
        (code, priority), *others = voice.languages
        names = {code, voice.id, voice.id.rsplit("/", 1)[-1], voice.name.lower().replace("_", "-")}
        if base in names:
            primary.append((priority, voice.id, voice))
        secondary += [(prio, voice.id, voice) for other, prio in others if other == base]
    for found in (primary, secondary):
        if found:
            return min(found)[2]
    return None


def _unknown_voice(base: str) -> str:
    codes = language_codes()
    near = difflib.get_close_matches(base, codes, n=6, cutoff=0.6)
    if near:
        return (f"unknown voice; closest: {', '.join(near)} "
                f"(all {len(codes)} languages: autocall audio voices)")
    return f"unknown voice; available: {', '.join(codes)}"


def _espeak_listing(option: str) -> str | None:
    executable = shutil.which("espeak-ng")
    if executable is None:
        return None
    try:
        proc = subprocess.run([executable, option], capture_output=True, text=True, errors="replace",
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _parse_listing(listing: str) -> list[Voice]:
    """Rows of ``espeak-ng --voices``: Pty Language Age/Gender VoiceName File (other priority)..."""
    voices = []
    for line in listing.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 5 or not parts[0].isdigit():
            continue
        priority, language, _age_gender, name, file = parts[:5]
        others = tuple((code.lower(), int(prio)) for code, prio in _OTHER_LANGUAGE.findall(" ".join(parts[5:])))
        voices.append(Voice(file.lower(), name, ((language.lower(), int(priority)), *others)))
    return voices


def _voices_from_pyttsx3() -> list[Voice]:
    """The fallback: the espeak library through pyttsx3 (primary languages only)."""
    try:
        from pyttsx3.drivers import _espeak
    except Exception:   # pyttsx3 raises a bare Exception when libespeak-ng is missing
        raise AudioError("text-to-speech", "espeak-ng is not installed (apt-get install espeak-ng)") from None
    if _espeak.Initialize(_espeak.AUDIO_OUTPUT_RETRIEVAL, 1000) == -1:
        raise AudioError("text-to-speech", "the espeak-ng library could not start")
    voices = []
    for entry in _espeak.ListVoices(None):
        raw = entry.languages or b"\x05"
        language = raw[1:].decode("utf-8", "replace").lower() or "?"
        voices.append(Voice(entry.identifier.decode("utf-8").lower(), entry.name.decode("utf-8", "replace"),
                            ((language, raw[0]),)))
    return voices
