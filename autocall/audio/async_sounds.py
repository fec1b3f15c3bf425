"""The Twisted side of the sound cache: prompts become sound names in threads, a call never waiting for other work.

The only module of ``autocall.audio`` that imports Twisted. Rendering itself
happens in the TTS worker process (``worker``); the threads only wait for it
and for ffmpeg. Concurrent requests for the same prompt share one job.

Who waits for what:

- a sound already in the cache is answered at once, on the reactor (its name
  is a hash of the prompt; two ``stat`` calls say whether it is made), never
  queued behind renders;
- renders and conversions run at most ``workers`` at a time, taken from a
  queue in priority order: first the prompts a call is waiting for, then the
  warm-ups (a script's fixed prompts, rendered ahead after it compiles). A
  warm-up a call starts waiting for moves up to the calls' priority. One
  warm-up at most runs at a time: renders share one TTS process, so a call's
  render waits for at most that one;
- ``stop_warming()`` drops the queued warm-ups (a stopping server has no use
  for them); ``stop()`` drops everything queued, waiting only for the jobs
  already running.
"""

from __future__ import annotations

import heapq
import itertools

from twisted.internet import defer, threads
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from autocall.audio.errors import AudioError
from autocall.engine.channel import Prompt, SoundPrompt

DEFAULT_THREADS = 4
MAX_WARMING = 1
FOR_A_CALL, WARM_UP = 0, 1


class _Job:
    __slots__ = ("prompt", "priority", "waiters", "started")

    def __init__(self, prompt: Prompt, priority: int) -> None:
        self.prompt = prompt
        self.priority = priority
        self.waiters: list[defer.Deferred] = []
        self.started = False


class AsyncSounds:
    """``sound_for(prompt)`` -> Deferred[str], the name to give ``STREAM FILE``.

    ``library`` is a ``SoundLibrary`` (``name_for(prompt)``, and optionally
    ``cached_name(prompt)``: the name if the sound is made, else None, without
    making it); ``reactor`` defaults to the global one; ``threadpool``
    defaults to a pool of ``workers`` threads started on first use and
    stopped at reactor shutdown or by ``stop()``.
    """

    def __init__(self, library, reactor=None, threadpool: ThreadPool | None = None, *,
                 workers: int = DEFAULT_THREADS) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self._library = library
        self._cached_name = getattr(library, "cached_name", None)
        self._reactor = reactor
        self._pool = threadpool
        self._owns_pool = threadpool is None
        self._pool_started = False
        self._workers = workers
        self._jobs: dict[Prompt, _Job] = {}
        self._queue: list[tuple[int, int, _Job]] = []
        self._order = itertools.count()
        self._running = 0
        self._warming = 0
        self._stopped = False

    @property
    def queued(self) -> int:
        """Jobs waiting for a thread (not yet started)."""
        return sum(1 for job in self._jobs.values() if not job.started)

    def sound_for(self, prompt: Prompt, *, warm: bool = False) -> defer.Deferred:
        """The sound name for ``prompt``: TTS rendered, a file converted, a PBX sound passed through.
        ``warm``: made ahead of any call, after everything a call waits for."""
        if isinstance(prompt, SoundPrompt):
            return defer.succeed(prompt.name)
        if getattr(prompt, "secret", False):
            prompt = _Private(prompt)           # each call renders its own: never shared, never reused
        job = self._jobs.get(prompt)
        if job is None:
            if self._cached_name is not None and type(prompt) is not _Private:
                try:
                    name = self._cached_name(prompt)
                except Exception:        # reported by the job, with the thread's full message
                    name = None
                if name is not None:
                    return defer.succeed(name)
            if self._stopped:
                return defer.fail(AudioError("prompt", "the server is stopping; the prompt was not made"))
            job = self._jobs[prompt] = _Job(prompt, WARM_UP if warm else FOR_A_CALL)
            heapq.heappush(self._queue, (job.priority, next(self._order), job))
        elif not warm and job.priority == WARM_UP and not job.started:
            job.priority = FOR_A_CALL            # a call waits for it now: ahead of the other warm-ups
            heapq.heappush(self._queue, (FOR_A_CALL, next(self._order), job))
        result: defer.Deferred = defer.Deferred()
        job.waiters.append(result)
        self._dispatch()
        return result

    def discard(self, name: str) -> defer.Deferred:
        """Delete a secret prompt's sound once its call is over (in the pool: file I/O stays off the reactor)."""
        return threads.deferToThreadPool(self._reactor, self._threadpool(), self._library.discard, name)

    def stop_warming(self) -> int:
        """Drop the warm-ups still queued (their waiters fail); returns how many."""
        return self._drop(lambda job: job.priority == WARM_UP, "warm-up cancelled: the server is stopping")

    def stop(self) -> None:
        """Drop every queued job and stop the pool this object started (jobs already running finish first)."""
        self._stopped = True
        self._drop(lambda job: True, "the server is stopping; the prompt was not made")
        if self._owns_pool and self._pool_started:
            self._pool_started = False
            self._pool.stop()

    def _drop(self, which, why: str) -> int:
        dropped = [job for job in self._jobs.values() if not job.started and which(job)]
        for job in dropped:
            del self._jobs[job.prompt]
            job.started = True                   # its queue entries are skipped from now on
            failure = Failure(AudioError("prompt", why))
            for waiter in job.waiters:
                waiter.errback(failure)
        return len(dropped)

    def _dispatch(self) -> None:
        queue = self._queue
        while self._running < self._workers and queue:
            priority, _, job = queue[0]
            if job.started or priority != job.priority:
                heapq.heappop(queue)             # promoted (a newer entry stands for it) or dropped
                continue
            if priority == WARM_UP and self._warming >= MAX_WARMING:
                return                           # only warm-ups are left, and one is running
            heapq.heappop(queue)
            job.started = True
            self._running += 1
            self._warming += priority == WARM_UP
            work = threads.deferToThreadPool(self._reactor, self._threadpool(), self._library.name_for,
                                              _unwrapped(job.prompt))
            work.addBoth(self._deliver, job)

    def _threadpool(self) -> ThreadPool:
        if self._pool is None:
            self._pool = ThreadPool(minthreads=0, maxthreads=self._workers, name="autocall-sounds")
        if self._owns_pool and not self._pool_started:
            self._pool_started = True
            self._pool.start()
            self._reactor.addSystemEventTrigger("during", "shutdown", self.stop)
        return self._pool

    def _deliver(self, outcome, job: _Job) -> None:
        self._running -= 1
        self._warming -= job.priority == WARM_UP
        if self._jobs.get(job.prompt) is job:
            del self._jobs[job.prompt]
        # Each caller has its own Deferred: one caller's callbacks cannot change what another receives.
        for waiter in job.waiters:
            if isinstance(outcome, Failure):
                waiter.errback(outcome)
            else:
                waiter.callback(outcome)
        self._dispatch()


class _Private:
    """A secret prompt as a key of its own (identity, not text): two calls never share its render."""

    __slots__ = ("prompt",)

    def __init__(self, prompt: Prompt) -> None:
        self.prompt = prompt


def _unwrapped(prompt):
    return prompt.prompt if type(prompt) is _Private else prompt
