"""The espeak-ng voices pyttsx3 can use, and script voice names (``en-us``, ``de``, ``en-us+f3``) mapped to their ids.

The list is read from ``espeak-ng --voices`` (a few ms; it also gives each
voice's secondary languages and priorities, which is how ``en`` finds the
main English voice); without that command, from the espeak library through
pyttsx3. A ``Voices`` reads it once and keeps its lookups: the compiler's
checks get their own (``autocall.audio.prompt_checks.audio_checks``), the TTS
library uses the module's cached ``resolve_voice``.
"""

from __future__ import annotations

import difflib
import functools
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Callable

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


def _load_table() -> tuple[Voice, ...]:
    listing = _espeak_listing("--voices")
    voices = _parse_listing(listing) if listing is not None else _voices_from_pyttsx3()
    if not voices:
        raise AudioError("text-to-speech", "no espeak-ng voices are installed (apt-get install espeak-ng)")
    return tuple(voices)


def _load_variants() -> tuple[str, ...]:
    listing = _espeak_listing("--voices=variant") or ""
    return tuple(voice.id.rsplit("/", 1)[-1] for voice in _parse_listing(listing))


class Voices:
    """The installed voices and lookups in them. Each instance lists the voices once, when first asked.

    The compiler's checks get one from whoever builds the compiler (``audio_checks``), so nothing of it is
    shared across the process; ``voice_table``/``resolve_voice`` below are the TTS library's own.
    """

    def __init__(self, table: Callable[[], tuple[Voice, ...]] = _load_table,
                 variants: Callable[[], tuple[str, ...]] = _load_variants) -> None:
        self._table_source, self._variants_source = table, variants
        self._table: tuple[Voice, ...] | None = None
        self._variants: tuple[str, ...] | None = None
        self._resolved: dict[str, str] = {}

    def table(self) -> tuple[Voice, ...]:
        if self._table is None:
            self._table = self._table_source()
        return self._table

    def variants(self) -> tuple[str, ...]:
        if self._variants is None:
            self._variants = self._variants_source()
        return self._variants

    def language_codes(self) -> list[str]:
        """Every language code a script may write as its voice, sorted."""
        return sorted({code for voice in self.table() for code, _ in voice.languages})

    def resolve(self, name: str) -> str:
        """The pyttsx3 voice id for a script's voice name; AudioError listing what exists if there is none.

        Tried in order, case-insensitively: a language code (``en-us``), a voice id
        with or without its family (``gmw/en-us``, ``en-us``), a voice name
        (``English_(America)``), then a secondary language (``en``), where the
        voice with the best priority wins. A ``+variant`` suffix is kept.
        """
        if name in self._resolved:
            return self._resolved[name]
        wanted = name.strip().lower().replace("_", "-")
        base, _, variant = wanted.partition("+")
        voice = self._find(base)
        if voice is None:
            raise AudioError(f'voice "{name}"', self._unknown_voice(base))
        if variant and variant not in self.variants():
            near = difflib.get_close_matches(variant, self.variants(), n=5)
            shown = f"closest: {', '.join(near)}" if near else f"variants: {', '.join(self.variants())}"
            raise AudioError(f'voice "{name}"', f"unknown variant '{variant}'; {shown}")
        found = self._resolved[name] = f"{voice.id}+{variant}" if variant else voice.id
        return found

    def _find(self, base: str) -> Voice | None:
        primary, secondary = [], []
        for voice in self.table():
            (code, priority), *others = voice.languages
            names = {code, voice.id, voice.id.rsplit("/", 1)[-1], voice.name.lower().replace("_", "-")}
            if base in names:
                primary.append((priority, voice.id, voice))
            secondary += [(prio, voice.id, voice) for other, prio in others if other == base]
        for found in (primary, secondary):
            if found:
                return min(found)[2]
        return None

    def _unknown_voice(self, base: str) -> str:
        codes = self.language_codes()
        near = difflib.get_close_matches(base, codes, n=6, cutoff=0.6)
        if near:
            return (f"unknown voice; closest: {', '.join(near)} "
                    f"(all {len(codes)} languages: autocall audio voices)")
        return f"unknown voice; available: {', '.join(codes)}"


@functools.lru_cache(maxsize=1)
def voice_table() -> tuple[Voice, ...]:
    """Every installed voice (cached for the TTS library)."""
    return _load_table()


@functools.lru_cache(maxsize=1)
def variant_names() -> tuple[str, ...]:
    """espeak-ng voice variants (``f3``, ``klatt``...), lower-cased, usable as ``voice+variant``."""
    return _load_variants()


def available_voices() -> list[str]:
    """The pyttsx3 voice ids, e.g. ``gmw/en-us``."""
    return [voice.id for voice in voice_table()]


def language_codes() -> list[str]:
    """Every language code a script may write as its voice, sorted."""
    return Voices(voice_table, variant_names).language_codes()


@functools.lru_cache(maxsize=512)
def resolve_voice(name: str) -> str:
    """``Voices.resolve`` over the TTS library's cached voice list."""
    return Voices(lambda: voice_table(), lambda: variant_names()).resolve(name)


def check_rate(rate: int) -> int:
    """The speaking rate if espeak-ng accepts it; AudioError otherwise."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"rate {rate}", f"out of range; use {MIN_RATE} to {MAX_RATE} words per minute")
    return rate


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
