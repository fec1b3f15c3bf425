"""The sound cache in ``sounds_dir``: TTS prompts rendered once per content, uploaded files converted once per content.

Layout (every sound is a ``.sln16`` + ``.sln`` pair; names are what Asterisk's
``STREAM FILE`` takes, relative to ``sounds_dir``)::

    sounds_dir/tts/<key>.sln16, .sln    key = hash(text, voice id, rate, engine versions, format)
    sounds_dir/file/<key>.sln16, .sln   key = hash(file content, format)
    cache_dir/locks/<xx>.lock           cross-process locks (default cache_dir: sounds_dir/.autocall)
    cache_dir/tmp/                      espeak's WAVs while they are converted

The cache has a size cap (``sound_cache_max_mb``): ``prune`` removes the
least recently used sounds until it fits. A sound's last use is its files'
modification time: set when it is made, and moved on by ``touch`` (the
server touches the sounds it has played every few minutes; a disk hit in
``_ensure`` touches too). A sound used in the last ``PRUNE_GRACE_S`` is never
removed, so a server that just handed a name to Asterisk keeps it playable.

A sound exists once both files exist. A missing sound is made under an
exclusive ``flock`` (so two threads or processes asking for the same prompt
render it once), each file written to a temporary name and renamed, so no
reader ever sees a torn file. Everything here is synchronous; the Twisted
side is ``async_sounds``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import threading
from dataclasses import dataclass
from typing import Callable

from autocall.audio.convert import convert_for_asterisk, temporary_path
from autocall.audio.errors import AudioError, cannot_write
from autocall.audio.probe import validate_prompt_file
from autocall.audio.voices import check_rate, resolve_voice
from autocall.audio.worker import RENDER_TIMEOUT_S, TtsWorker, engine_version, prompt_label
from autocall.engine.channel import FilePrompt, Prompt, SoundPrompt, TtsPrompt

PRUNE_GRACE_S = 15 * 60
FORMAT_VERSION = 2   # 2: TTS rates fixed (worker synchronises with espeak). Bump when the pipeline's output changes: every cached sound is then made again
TTS_FOLDER = "tts"
PRIVATE_FOLDER = "private"      # secret prompts: a random name per call, deleted when the call ends
FILE_FOLDER = "file"
_KEY_CHARS = 24


@dataclass(frozen=True)
class PruneReport:
    """What ``prune`` did: sounds removed and their bytes; sounds and bytes left in the cache."""

    removed: int
    freed_bytes: int
    kept: int
    kept_bytes: int
    removed_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prepared:
    """A sound ready to play: its name, whether it was made just now (False: it was cached), and warnings."""

    name: str
    made: bool
    warnings: tuple[str, ...] = ()


class SoundLibrary:
    """Synchronous, thread- and process-safe access to the sound cache."""

    def __init__(self, sounds_dir: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None,
                 default_voice: str = "en-us", default_rate: int = 160, *,
                 worker_timeout: float = RENDER_TIMEOUT_S, worker_argv: list[str] | None = None) -> None:
        self.sounds_dir = os.path.abspath(os.fspath(sounds_dir))
        self.cache_dir = os.path.abspath(os.fspath(cache_dir)) if cache_dir else os.path.join(
            self.sounds_dir, ".autocall")
        self.default_voice = default_voice
        self.default_rate = default_rate
        self.renders = 0       # TTS renders this instance performed (cache misses)
        self.conversions = 0   # uploaded files this instance converted
        self._worker = TtsWorker(timeout=worker_timeout, argv=worker_argv)
        self._count_lock = threading.Lock()
        self._file_keys: dict[tuple, tuple[str, tuple[str, ...]]] = {}

    @classmethod
    def from_config(cls, config, sounds_dir: str | None = None) -> SoundLibrary:
        """A library set up from ``autocall.config.Config`` (``sounds_dir`` overrides the configured one)."""
        return cls(sounds_dir or config.sounds_dir, config.tts_cache_dir or None, config.voice, config.rate)

    # --- TTS ---

    def tts_name(self, text: str, voice: str | None = None, rate: int | None = None) -> str:
        """The sound name of ``text`` spoken with ``voice``/``rate`` (defaults if None), rendering it if needed."""
        return self._prepare_tts(text, voice, rate).name

    def is_cached_tts(self, text: str, voice: str | None = None, rate: int | None = None) -> bool:
        """Whether that prompt is already rendered (nothing is rendered to find out)."""
        return self._exists(self._tts_request(text, voice, rate)[0])

    def _tts_request(self, text: str, voice: str | None, rate: int | None) -> tuple[str, str, str, int]:
        """(sound name, normalised text, voice id, rate) for a TTS prompt."""
        spoken = " ".join(text.split())
        if not spoken:
            raise AudioError(prompt_label(text), "empty text; there is nothing to say")
        voice_id = resolve_voice(voice or self.default_voice)
        rate = check_rate(self.default_rate if rate is None else rate)
        identity = json.dumps([FORMAT_VERSION, engine_version(), voice_id, rate, spoken])
        key = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:_KEY_CHARS]
        return f"{TTS_FOLDER}/{key}", spoken, voice_id, rate

    def _prepare_tts(self, text: str, voice: str | None, rate: int | None, private: bool = False) -> Prepared:
        name, spoken, voice_id, rate = self._tts_request(text, voice, rate)
        if private:     # never a name derived from the text: 10,000 guesses would recover a PIN from it
            name = f"{PRIVATE_FOLDER}/{secrets.token_hex(16)}"

        def render() -> None:
            os.makedirs(os.path.join(self.cache_dir, "tmp"), exist_ok=True)
            wav = os.path.join(self.cache_dir, "tmp", os.path.basename(temporary_path(name + ".wav")))
            try:
                self._worker.render(spoken, voice_id, rate, wav)
                try:
                    convert_for_asterisk(wav, self.sounds_dir, name)
                except AudioError as exc:
                    raise AudioError(prompt_label(spoken), exc.problem) from None
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(wav)
            self._count("renders")

        return Prepared(name, self._ensure(name, render))

    # --- uploaded files ---

    def file_name(self, path: str | os.PathLike[str]) -> str:
        """The sound name of an audio file, validated and converted once per content; AudioError if it is unfit."""
        return self._prepare_file(path).name

    def _prepare_file(self, path: str | os.PathLike[str]) -> Prepared:
        source = os.path.abspath(os.fspath(path))
        try:
            st = os.stat(source)
        except OSError:
            raise AudioError(os.fspath(path), "file not found") from None
        identity = (source, st.st_size, st.st_mtime_ns, st.st_ino)
        known = self._file_keys.get(identity)
        if known is None:
            warnings = tuple(validate_prompt_file(path))
            digest = hashlib.sha256(f"{FORMAT_VERSION}\n".encode())
            with open(source, "rb") as stream:
                digest.update(stream.read())
            known = self._file_keys[identity] = (f"{FILE_FOLDER}/{digest.hexdigest()[:_KEY_CHARS]}", warnings)
        name, warnings = known

        def convert() -> None:
            convert_for_asterisk(source, self.sounds_dir, name)
            self._count("conversions")

        return Prepared(name, self._ensure(name, convert), warnings)

    # --- any prompt ---

    def prepare(self, prompt: Prompt) -> Prepared:
        """Make the sound for an engine prompt value if needed; a ``SoundPrompt`` is the PBX's own and passes through."""
        if isinstance(prompt, TtsPrompt):
            return self._prepare_tts(prompt.text, prompt.voice, prompt.rate, private=prompt.secret)
        if isinstance(prompt, FilePrompt):
            return self._prepare_file(prompt.resolved)
        if isinstance(prompt, SoundPrompt):
            return Prepared(prompt.name, made=False)
        raise TypeError(f"not a prompt: {prompt!r}")

    def cached_name(self, prompt: Prompt) -> str | None:
        """The sound name of ``prompt`` if its sound is made, else None; nothing is made or validated (cheap:
        a hash and two ``stat`` calls, fit for the reactor thread)."""
        if isinstance(prompt, TtsPrompt):
            name = self._tts_request(prompt.text, prompt.voice, prompt.rate)[0]
        elif isinstance(prompt, FilePrompt):
            try:
                st = os.stat(prompt.resolved)
            except OSError:
                return None
            known = self._file_keys.get((os.path.abspath(prompt.resolved), st.st_size, st.st_mtime_ns, st.st_ino))
            if known is None:
                return None
            name = known[0]
        elif isinstance(prompt, SoundPrompt):
            return prompt.name
        else:
            return None
        return name if self._exists(name) else None

    def name_for(self, prompt: Prompt) -> str:
        """The sound name to play for an engine prompt value."""
        return self.prepare(prompt).name

    def discard(self, name: str) -> None:
        """Delete a secret prompt's sound (a name or path in the private folder; anything else is left alone)."""
        base = name if os.path.isabs(name) else self.path_of(name)
        if os.path.dirname(base) != self.path_of(PRIVATE_FOLDER):
            return
        for extension in (".sln16", ".sln"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(base + extension)

    def path_of(self, name: str) -> str:
        """The absolute path of a sound without extension (what ``STREAM FILE`` takes when sounds_dir is elsewhere)."""
        return os.path.join(self.sounds_dir, name)

    # --- the size cap ---

    def touch(self, names) -> None:
        """Mark sounds as used now (their place in the least-recently-used order); gone ones are skipped."""
        for name in names:
            for extension in (".sln16", ".sln"):
                with contextlib.suppress(OSError):
                    os.utime(self.path_of(name) + extension)

    def cache_usage(self) -> list[tuple[float, int, str]]:
        """``(last use, bytes, name)`` of every sound in the cache (``tts/`` and ``file/``)."""
        found: dict[str, list] = {}
        for folder in (TTS_FOLDER, FILE_FOLDER):
            try:
                entries = list(os.scandir(os.path.join(self.sounds_dir, folder)))
            except FileNotFoundError:
                continue
            for entry in entries:
                stem, dot, extension = entry.name.rpartition(".")
                if not dot or extension not in ("sln16", "sln") or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                usage = found.setdefault(f"{folder}/{stem}", [0.0, 0])
                usage[0] = max(usage[0], info.st_mtime)
                usage[1] += info.st_size
        return [(used, size, name) for name, (used, size) in found.items()]

    def prune(self, max_bytes: int, *, now: float | None = None, grace_s: float = PRUNE_GRACE_S) -> PruneReport:
        """Remove the least recently used sounds until the cache holds at most ``max_bytes`` (never one
        used in the last ``grace_s`` seconds: it may be playing)."""
        import time
        now = time.time() if now is None else now
        usage = sorted(self.cache_usage())
        total = sum(size for _, size, _ in usage)
        removed: list[str] = []
        freed = 0
        for used, size, name in usage:
            if total <= max_bytes or used > now - grace_s:
                break
            with self._exclusive(name):        # not while the same sound is being made
                base = self.path_of(name)
                try:
                    if os.stat(base + ".sln16").st_mtime > now - grace_s:
                        continue                # touched meanwhile
                except FileNotFoundError:
                    pass
                for extension in (".sln16", ".sln"):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(base + extension)
            removed.append(name)
            freed += size
            total -= size
        return PruneReport(len(removed), freed, len(usage) - len(removed), total, tuple(removed))

    def close(self) -> None:
        """Stop the TTS worker process, if one was started."""
        self._worker.close()

    def __enter__(self) -> SoundLibrary:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- the cache machinery shared by TTS and files ---

    def _exists(self, name: str) -> bool:
        base = self.path_of(name)
        return os.path.exists(base + ".sln16") and os.path.exists(base + ".sln")

    def _ensure(self, name: str, make: Callable[[], None]) -> bool:
        """Run ``make`` unless the sound exists; True if it ran. One maker per sound across threads and processes."""
        if self._exists(name):
            self.touch((name,))
            return False
        try:
            with self._exclusive(name):
                if self._exists(name):   # another thread or process made it while we waited
                    return False
                make()
                return True
        except OSError as exc:
            raise cannot_write(exc, self.sounds_dir) from None

    @contextlib.contextmanager
    def _exclusive(self, name: str):
        # 256 lock files, picked by the key's first two hex digits: few files, rare false sharing.
        # flock is held per open file description, so it excludes threads of this process too.
        folder = os.path.join(self.cache_dir, "locks")
        os.makedirs(folder, exist_ok=True)
        fd = os.open(os.path.join(folder, name.rsplit("/", 1)[-1][:2] + ".lock"), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _count(self, counter: str) -> None:
        with self._count_lock:
            setattr(self, counter, getattr(self, counter) + 1)
