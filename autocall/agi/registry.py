"""Compiled scripts with hot reload: compile once, recompile when the file changes, keep the last good version.

Every call stats its script (a couple of microseconds) and compares
``(mtime_ns, size, inode)`` with the version compiled last, and so for each
file it includes (``include "common.dlg"``): an edit of a shared file
reloads every script that includes it. Unchanged: the
cached ``Program`` at once, no Deferred. Changed or new: it is compiled on
a single worker thread with its own ``Compiler`` (compiling takes
milliseconds and must never block the reactor; the compiler is not
thread-safe, hence one thread), and calls asking meanwhile share that job.

A version that does not compile is logged with its diagnostics, once per
version, and the last good ``Program`` keeps serving; only a script that has
never compiled fails its calls (``ScriptBroken``). A call holds the
``Program`` it started with for its whole life, so an edit never changes a
call in progress.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet import defer, threads
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from autocall.agi.logs import log_event
from autocall.engine.ir import Program

log = logging.getLogger("autocall.agi.registry")

Signature = tuple[int, int, int]


class ScriptUnavailable(Exception):
    """A script the server cannot run; the message is the call record's error."""


class ScriptNotFound(ScriptUnavailable):
    """No such ``.dlg`` in the scripts folder."""


class ScriptBroken(ScriptUnavailable):
    """The script exists but has never compiled (the diagnostics are in the log)."""


@dataclass(slots=True)
class _Entry:
    signature: Signature | None = None    # the version compiled last, good or bad
    program: Program | None = None        # the last good version
    error: str = ""                       # why the last version did not compile (its first error)
    job: list[defer.Deferred] | None = None   # callers waiting for a compile in progress
    includes: tuple[tuple[str, Signature | None], ...] = ()   # the included files, as they were compiled


def _include_signature(path: str) -> Signature | None:
    """An included file's version; None when it is gone (the script then recompiles and says why)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def _includes_changed(includes: tuple[tuple[str, Signature | None], ...]) -> bool:
    return any(_include_signature(file) != signature for file, signature in includes)


def _signature(path: str) -> Signature:
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ScriptNotFound(f"no script {os.path.basename(path)} in the scripts folder") from None
    except OSError as exc:
        raise ScriptNotFound(f"cannot read {os.path.basename(path)}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ScriptNotFound(f"{os.path.basename(path)} is not a file")
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class ScriptRegistry:
    """``current(path)`` (sync, the fast path) and ``load(path)`` (a Deferred) give the Program to run.

    ``compiler_factory`` builds the worker thread's compiler (by default a
    ``Compiler`` with the audio checks of ``audio_checks()``);
    ``on_compiled(program)`` runs on the reactor after each good compile
    (the server warms the prompts' sounds there). ``run_in_thread(f, *args)``
    may be replaced in tests by a synchronous runner.
    """

    def __init__(self, reactor=None, *, compiler_factory: Callable[[], object] | None = None,
                 on_compiled: Callable[[Program], None] | None = None,
                 run_in_thread: Callable[..., defer.Deferred] | None = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self._entries: dict[str, _Entry] = {}
        self._compiler_factory = compiler_factory
        self._local = threading.local()
        self._pool: ThreadPool | None = None
        self._run_in_thread = run_in_thread or self._in_worker
        self.on_compiled = on_compiled
        self.compiles = 0

    # --- the two ways in ---------------------------------------------------------

    def current(self, path: str) -> Program | None:
        """The Program for ``path`` if its compiled version is up to date, else None (call ``load``).

        Raises ``ScriptNotFound`` when there is no such file, ``ScriptBroken``
        when this version does not compile and no earlier one did.
        """
        signature = _signature(path)
        entry = self._entries.get(path)
        if entry is None or entry.job is not None or entry.signature != signature:
            return None
        if entry.includes and _includes_changed(entry.includes):
            return None
        if entry.program is None:
            raise ScriptBroken(entry.error)
        return entry.program

    def load(self, path: str) -> defer.Deferred:
        """Compile ``path`` if needed (shared by concurrent callers); fire with the Program to run."""
        try:
            program = self.current(path)
        except ScriptUnavailable:
            return defer.fail()
        if program is not None:
            return defer.succeed(program)
        entry = self._entries.setdefault(path, _Entry())
        waiter: defer.Deferred = defer.Deferred()
        if entry.job is not None:
            entry.job.append(waiter)
        else:
            entry.job = [waiter]
            job = self._run_in_thread(self._compile, path, tuple(file for file, _ in entry.includes))
            job.addBoth(self._compiled, path, entry)
        return waiter

    def stop(self) -> None:
        """Stop the worker thread (a compile in progress finishes first)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.stop()

    # --- the worker thread -----------------------------------------------------------

    def _in_worker(self, function, *args) -> defer.Deferred:
        if self._pool is None:
            self._pool = ThreadPool(minthreads=1, maxthreads=1, name="autocall-compile")
            self._pool.start()
            self._reactor.addSystemEventTrigger("during", "shutdown", self.stop)
        return threads.deferToThreadPool(self._reactor, self._pool, function, *args)

    def _compile(self, path: str, known_includes: tuple[str, ...] = ()):
        """In the worker: the files' signatures first, then the compilation (a later edit restats as changed).
        Included files are known from the last compile; one that is new is stated right after."""
        signature = _signature(path)
        before = {file: _include_signature(file) for file in known_includes}
        compiler = getattr(self._local, "compiler", None)
        if compiler is None:
            if self._compiler_factory is None:
                from autocall.audio.prompt_checks import audio_checks
                from autocall.dsl.compiler import Compiler
                self._compiler_factory = lambda: Compiler(**audio_checks())
            compiler = self._local.compiler = self._compiler_factory()
        result = compiler.compile_file(path)
        includes = tuple((file, before[file] if file in before else _include_signature(file))
                         for file in getattr(result, "includes", ()))
        return signature, result, includes

    # --- back on the reactor -----------------------------------------------------------

    def _compiled(self, outcome, path: str, entry: _Entry) -> None:
        waiters, entry.job = entry.job or [], None
        self.compiles += 1
        if isinstance(outcome, Failure):
            if not outcome.check(ScriptUnavailable):
                log.error("compiling %s failed inside the compiler", path, exc_info=outcome.value,
                          extra={"fields": {"script": path}})
                outcome = Failure(ScriptBroken(f"{os.path.basename(path)}: the compiler failed "
                                               f"({outcome.getErrorMessage()})"))
            for waiter in waiters:
                waiter.errback(outcome)
            return
        signature, result, includes = outcome
        first = entry.program is None and entry.signature is None
        entry.signature, entry.includes = signature, includes
        if result.ok:
            entry.program, entry.error = result.program, ""
            log_event(log, logging.INFO, "script compiled" if first else "script reloaded", script=path,
                      states=len(result.program.states), warnings=len(result.warnings))
            if self.on_compiled is not None:
                try:
                    self.on_compiled(result.program)
                except Exception:
                    log.exception("on_compiled failed for %s", path)
        else:
            errors = result.errors
            entry.error = (f"the script does not compile: {errors[0].headline()}"
                           + (f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""))
            keeps = "the last good version keeps serving" if entry.program is not None else \
                "calls to it fail until it is fixed"
            log_event(log, logging.ERROR, f"script does not compile ('autocall check' shows why); {keeps}", script=path,
                      errors=len(errors), diagnostics=result.render())
        for waiter in waiters:
            if entry.program is not None:
                waiter.callback(entry.program)
            else:
                waiter.errback(Failure(ScriptBroken(entry.error)))
