"""Prompts -> the names ``STREAM FILE`` takes, remembered on the reactor so a cached prompt costs no thread hop.

``AsyncSounds`` renders and converts in threads; asking it for every prompt
of every call would send each one through a thread pool even when the
sound is long made. ``PlayableSounds`` remembers what it resolved:

- a TTS prompt's sound is named by a hash of its text, voice and rate, so
  once made its name never changes: remembered as is;
- a file prompt is remembered with the file's ``(mtime, size)`` and looked
  at again (one ``stat``) each time: a replaced file is converted anew;
- a ``sound "name"`` is the PBX's own and passes through unchanged.

The name given to Asterisk is the absolute path without extension
(``library.path_of``), so Asterisk finds the sound wherever ``sounds_dir``
is, as long as it sees the same path (docs/operations.md, "Sounds").
A prompt that cannot be made (a TTS failure, a broken file) fails the play
with ``ChannelFailure``: the call ends with ``ended_by: error`` and the reason.
"""

from __future__ import annotations

import logging
import os

from twisted.internet import defer, task, threads
from twisted.python.failure import Failure

from autocall.engine.channel import ChannelFailure, FilePrompt, Prompt, SoundPrompt, TtsPrompt

log = logging.getLogger("autocall.agi.sounds")

MAX_REMEMBERED = 4096
KEEP_EVERY_S = 300.0

log = logging.getLogger("autocall.agi.sounds")


class PlayableSounds:
    """``sound_for(prompt) -> Deferred[str]`` for ``AgiChannel``, over ``AsyncSounds`` and its ``SoundLibrary``."""

    __slots__ = ("library", "_async", "_path_of", "_tts", "_files", "_same")

    def __init__(self, async_sounds, library) -> None:
        self.library = library
        self._async = async_sounds
        self._path_of = library.path_of
        self._tts: dict[TtsPrompt, str] = {}
        self._files: dict[FilePrompt, tuple[tuple[int, int], str]] = {}
        # TTS prompts seen before, by identity: a script's fixed prompts are the same objects call after
        # call, and a dataclass's hash and == are Python code. Holds the prompt, so its id stays its own.
        self._same: dict[int, tuple[TtsPrompt, str]] = {}

    def known(self, prompt: Prompt) -> str | None:
        """The name at once if it needs no work (a TTS prompt made before, a PBX sound), else None
        (then ``sound_for``): most prompts of most calls, without a Deferred."""
        same = self._same.get(id(prompt))
        if same is not None and same[0] is prompt:
            return same[1]
        kind = type(prompt)
        if kind is TtsPrompt:
            name = None if prompt.secret else self._tts.get(prompt)
            if name is not None:
                if len(self._same) >= MAX_REMEMBERED:
                    self._same.clear()
                self._same[id(prompt)] = (prompt, name)
            return name
        if kind is SoundPrompt:
            return prompt.name
        return None

    def sound_for(self, prompt: Prompt, *, warm: bool = False) -> defer.Deferred:
        kind = type(prompt)
        if kind is TtsPrompt:
            name = None if prompt.secret else self._tts.get(prompt)
            if name is not None:
                return defer.succeed(name)
            key = None
        elif kind is FilePrompt:
            try:
                info = os.stat(prompt.resolved)
                key = (info.st_mtime_ns, info.st_size)
            except OSError:
                key = None       # the library reports the missing file
            known = self._files.get(prompt)
            if known is not None and known[0] == key:
                return defer.succeed(known[1])
        elif kind is SoundPrompt:
            return defer.succeed(prompt.name)
        else:
            return defer.fail(ChannelFailure(f"not a prompt: {prompt!r}"))
        d = self._async.sound_for(prompt, warm=True) if warm else self._async.sound_for(prompt)
        d.addCallbacks(self._made, self._failed, callbackArgs=(prompt, key), errbackArgs=(prompt,))
        return d

    def beep(self) -> str:
        """The ``STREAM FILE`` name of AutoCall's own beep (installed into sounds_dir with the prompts)."""
        from autocall.audio.standard import BEEP_NAME
        return self._path_of(BEEP_NAME)

    def discard(self, path: str) -> None:
        """A secret prompt's sound is no longer needed (its call is over): delete it."""
        self._async.discard(path).addErrback(
            lambda failure: log.warning("could not delete a secret prompt's sound: %s", failure.getErrorMessage()))

    def warm(self, prompts) -> None:
        """Make ``prompts`` ahead of the first call that plays them, after whatever a call waits for
        (failures show when a call plays one)."""
        for prompt in prompts:
            self.sound_for(prompt, warm=True).addErrback(lambda _: None)

    def stop_warming(self) -> int:
        """Drop the warm-ups still queued (a stop: no new call will need them)."""
        return self._async.stop_warming()

    def stop(self) -> None:
        """Drop every render still queued; the ones running finish."""
        self._async.stop()

    def remembered(self) -> list[str]:
        """The sounds this server has handed to Asterisk and would again (to keep them in the cache)."""
        return [path for path in self._tts.values()] + [path for _, path in self._files.values()]

    def _made(self, name: str, prompt: Prompt, key) -> str:
        path = self._path_of(name)
        if type(prompt) is TtsPrompt and prompt.secret:
            return path                         # made for one call; the channel discards it at the end
        if type(prompt) is TtsPrompt:
            if len(self._tts) >= MAX_REMEMBERED:
                self._tts.clear()
                self._same.clear()
            self._tts[prompt] = path
        elif key is not None:
            if len(self._files) >= MAX_REMEMBERED:
                self._files.clear()
            self._files[prompt] = (key, path)
        return path

    @staticmethod
    def _failed(failure: Failure, prompt: Prompt) -> Failure:
        if failure.check(ChannelFailure):
            return failure
        # Never the spoken text itself: it may carry a secret gather's value.
        what = "a text-to-speech prompt" if isinstance(prompt, TtsPrompt) else f"the file {prompt.path!r}"
        problem = getattr(failure.value, "problem", None) or failure.getErrorMessage()
        raise ChannelFailure(f"{what} could not be made ready to play: {problem}")


class CacheKeeper:
    """Keeps the sound cache under ``max_bytes``: every ``every_s``, in a thread, marks the sounds the server
    remembers as used, then removes the least recently used ones past the cap (``SoundLibrary.prune``)."""

    def __init__(self, sounds: PlayableSounds, max_bytes: int, reactor, *, every_s: float = KEEP_EVERY_S) -> None:
        self.sounds = sounds
        self.max_bytes = max_bytes
        self.reactor = reactor
        self._loop = task.LoopingCall(self.keep)
        self._loop.clock = reactor
        self._every_s = every_s
        self._busy = False

    def start(self) -> None:
        self._loop.start(self._every_s, now=True)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def keep(self) -> defer.Deferred | None:
        if self._busy:
            return None
        self._busy = True
        library, names = self.sounds.library, self.sounds.remembered()

        def work():
            library.touch(names)
            return library.prune(self.max_bytes)

        d = threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), work)
        d.addCallbacks(self._pruned, self._failed)
        d.addBoth(self._done)
        return d

    def _pruned(self, report) -> None:
        if report.removed:
            log.info("sound cache pruned", extra={"fields": {
                "removed": report.removed, "freed_mb": f"{report.freed_bytes / 1e6:.1f}",
                "cache_mb": f"{report.kept_bytes / 1e6:.1f}", "cap_mb": f"{self.max_bytes / 1e6:.0f}"}})

    def _failed(self, failure: Failure) -> None:
        log.warning("could not prune the sound cache: %s", failure.getErrorMessage(),
                    extra={"fields": {"sounds_dir": self.sounds.library.sounds_dir}})

    def _done(self, _) -> None:
        self._busy = False
