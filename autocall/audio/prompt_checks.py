"""The compiler's audio checks: a persistent cache of audio-file verdicts, and ``audio_checks()`` to inject them.

The compiler itself is pure: whoever builds one (the CLI, the FastAGI
server's compile thread) passes ``Compiler(**audio_checks())`` to have audio
files validated and voice names resolved.

Checking an MP3 means decoding it (tens of milliseconds with ffmpeg); a script
checked over and over while it is edited would pay that every time. Verdicts
(warnings, or the error's text) are kept in ``$XDG_CACHE_HOME/autocall`` keyed
by the file's path, size, mtime and inode and AutoCall's version. Any trouble
with the cache file itself is ignored: the file is then simply checked.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable

from autocall import __version__

MAX_ENTRIES = 2000


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "autocall" / "prompt-checks.json"


class PromptCheckError(Exception):
    """A cached error verdict, shaped like AudioError (``problem`` without the file name)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class CachedValidator:
    """Wraps ``validate(path) -> warnings`` (raising on an error) with the persistent cache."""

    def __init__(self, validate: Callable[[str], list[str]], path: Path | None = None) -> None:
        self.validate = validate
        self.path = path or cache_path()
        self._entries: dict | None = None
        self._dirty = False

    def _load(self) -> dict:
        if self._entries is None:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._entries = data if isinstance(data, dict) else {}
            except (OSError, ValueError):
                self._entries = {}
        return self._entries

    @staticmethod
    def _key(path: str) -> str | None:
        try:
            info = os.stat(path)
        except OSError:
            return None
        return f"{__version__}|{os.path.realpath(path)}|{info.st_size}|{info.st_mtime_ns}|{info.st_ino}"

    def __call__(self, path: str) -> list[str]:
        key = self._key(path)
        entries = self._load()
        if key is not None and key in entries:
            verdict = entries[key]
            if "problem" in verdict:
                raise PromptCheckError(verdict["problem"])
            return list(verdict["warnings"])
        try:
            warnings = self.validate(path)
        except Exception as exc:
            problem = getattr(exc, "problem", None)
            if key is not None and problem:
                entries[key] = {"problem": problem}
                self._dirty = True
            raise
        if key is not None:
            entries[key] = {"warnings": list(warnings)}
            self._dirty = True
        return warnings

    def save(self) -> None:
        """Write the cache if it changed (atomically; errors ignored)."""
        if not self._dirty or self._entries is None:
            return
        entries = self._entries
        if len(entries) > MAX_ENTRIES:
            entries = dict(list(entries.items())[-MAX_ENTRIES:])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".prompt-checks.")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(entries, out)
            os.replace(temporary, self.path)
            self._dirty = False
        except OSError:
            pass


def audio_checks() -> dict:
    """The keyword arguments that make a ``Compiler`` check audio files (memoised on disk) and voices."""
    from autocall.audio.probe import validate_prompt_file
    from autocall.audio.voices import Voices
    return {"validate_audio": CachedValidator(validate_prompt_file), "resolve_voice": Voices().resolve}
