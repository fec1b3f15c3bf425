"""The Twisted side of the sound cache: prompts become sound names in a thread pool of their own, never on the reactor.

The only module of ``autocall.audio`` that imports Twisted. Rendering itself
happens in the TTS worker process (``worker``); the threads only wait for it
and for ffmpeg. Concurrent requests for the same prompt share one job.
"""

from __future__ import annotations

from twisted.internet import defer, threads
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from autocall.engine.channel import Prompt, SoundPrompt

DEFAULT_THREADS = 4


class AsyncSounds:
    """``sound_for(prompt)`` -> Deferred[str], the name to give ``STREAM FILE``.

    ``library`` is a ``SoundLibrary`` (anything with ``name_for(prompt)``);
    ``reactor`` defaults to the global one; ``threadpool`` defaults to a pool
    of ``DEFAULT_THREADS`` started on first use and stopped at reactor
    shutdown or by ``stop()``.
    """

    def __init__(self, library, reactor=None, threadpool: ThreadPool | None = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self._library = library
        self._reactor = reactor
        self._pool = threadpool
        self._owns_pool = threadpool is None
        self._pool_started = False
        self._waiting: dict[Prompt, list[defer.Deferred]] = {}

    def sound_for(self, prompt: Prompt) -> defer.Deferred:
        """The sound name for ``prompt``: TTS rendered, a file converted, a PBX sound passed through."""
        if isinstance(prompt, SoundPrompt):
            return defer.succeed(prompt.name)
        result: defer.Deferred = defer.Deferred()
        if getattr(prompt, "secret", False):
            prompt = _Private(prompt)           # each call renders its own: never shared, never reused
        waiters = self._waiting.get(prompt)
        if waiters is None:
            waiters = self._waiting[prompt] = []
            job = threads.deferToThreadPool(self._reactor, self._threadpool(), self._library.name_for,
                                            getattr(prompt, "prompt", prompt))
            job.addBoth(self._deliver, prompt)
        waiters.append(result)
        return result

    def discard(self, name: str) -> defer.Deferred:
        """Delete a secret prompt's sound once its call is over (in the pool: file I/O stays off the reactor)."""
        return threads.deferToThreadPool(self._reactor, self._threadpool(), self._library.discard, name)

    def stop(self) -> None:
        """Stop the pool this object started (jobs in progress finish first)."""
        if self._owns_pool and self._pool_started:
            self._pool_started = False
            self._pool.stop()

    def _threadpool(self) -> ThreadPool:
        if self._pool is None:
            self._pool = ThreadPool(minthreads=0, maxthreads=DEFAULT_THREADS, name="autocall-sounds")
        if self._owns_pool and not self._pool_started:
            self._pool_started = True
            self._pool.start()
            self._reactor.addSystemEventTrigger("during", "shutdown", self.stop)
        return self._pool

    def _deliver(self, outcome, prompt: Prompt) -> None:
        # Each caller has its own Deferred: one caller's callbacks cannot change what another receives.
        for waiter in self._waiting.pop(prompt):
            if isinstance(outcome, Failure):
                waiter.errback(outcome)
            else:
                waiter.callback(outcome)


class _Private:
    """A secret prompt as a key of its own (identity, not text): two calls never share its render."""

    __slots__ = ("prompt",)

    def __init__(self, prompt: Prompt) -> None:
        self.prompt = prompt
