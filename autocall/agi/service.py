"""The server's life cycle: listen, serve, and stop gracefully.

``AgiService`` is a ``twisted.application.service.Service``: ``startService``
opens the record writer and listens on an endpoint string
(``tcp:4573:interface=127.0.0.1:backlog=4096``: the large backlog is what
lets 2,000 callers connect at the same instant without a refused
connection); ``stopService`` is the graceful stop:

1. stop listening (new calls are refused by the kernel; Asterisk's
   ``hagi://`` moves on to the next server);
2. let the calls in progress finish, up to ``grace_period``;
3. hang up what is left (their records say the server stopped them);
4. write every record still queued, stop the worker threads.

``stop_now()`` (a second SIGINT/SIGTERM/SIGHUP) skips the rest of step 2.
``serve(config)`` is ``autocall serve``: all of the above plus signals.
SIGHUP (the terminal that started the server closed) stops it like
SIGTERM: a server left running without its terminal, or killed with the
calls in progress unrecorded, is worse than one that stops cleanly (run
it under a service manager to keep it up).

Every call in progress at a stop gets its record, including one waiting
for something other than Asterisk (a prompt being rendered, a script
being compiled): hanging it up wakes it at once (``_CallTask``).
"""

from __future__ import annotations

import logging
import os
import signal

from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.python.failure import Failure

from autocall.agi.logs import LogfmtHandler, log_event
from autocall.agi.server import AgiServer
from autocall.errors import UserError

log = logging.getLogger("autocall.agi.service")

DEFAULT_BACKLOG = 4096
POLL_S = 0.05
HANGUP_WAIT_S = 5.0
MAX_OPEN_FILES = 65_536
LOG_LINES_EVERY_S = 0.1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def endpoint_description(host: str, port: int, backlog: int = DEFAULT_BACKLOG) -> str:
    """The Twisted endpoint string to listen on ``host:port`` (colons of an IPv6 address escaped)."""
    interface = host.replace("\\", "\\\\").replace(":", "\\:")
    return f"tcp:{port}:interface={interface}:backlog={backlog}"


class AgiService(service.Service):
    """Listens with an ``AgiServer``'s factory; owns its record writer's life cycle."""

    name = "autocall-agi"

    def __init__(self, server: AgiServer, endpoint: str, *, grace_period_ms: int = 30_000, records=None,
                 reactor=None, sound_cache_max_bytes: int = 0) -> None:
        self.server = server
        self.endpoint = endpoint
        self.grace_period_ms = grace_period_ms
        self.records = records
        self.reactor = reactor or server.reactor
        self.port = None
        self._hurry = False
        self._stopping: defer.Deferred | None = None
        self._cache_keeper = None
        self.sound_cache_max_bytes = sound_cache_max_bytes

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` actually listened on (port 0 gives a free port)."""
        host = self.port.getHost()
        return host.host, host.port

    def startService(self) -> None:
        """Open the records, then listen; a port in use or a bad address is a ``UserError``."""
        if self.records is not None and not self.records.running:
            self.records.open()
        outcome: list = []
        serverFromString(self.reactor, self.endpoint).listen(self.server.factory).addBoth(outcome.append)
        if not outcome:      # every TCP endpoint listens synchronously; anything else is a setup mistake
            raise UserError(f"{self.endpoint}: this endpoint does not listen at once; use a tcp: endpoint")
        if isinstance(outcome[0], Failure):
            self._close_records()
            failure = outcome[0]
            if failure.check(CannotListenError):
                error = failure.value
                reason = getattr(error.socketError, "strerror", None) or str(error.socketError)
                raise UserError(f"cannot listen on {error.interface or '*'}:{error.port} ({reason}); "
                                "is another server running there? choose another --port or --host")
            raise UserError(f"{self.endpoint}: cannot listen ({failure.getErrorMessage()})")
        self.port = outcome[0]
        sounds = self.server.sounds
        if self.sound_cache_max_bytes > 0 and hasattr(sounds, "remembered"):
            from autocall.agi.sounds import CacheKeeper
            self._cache_keeper = CacheKeeper(sounds, self.sound_cache_max_bytes, self.reactor)
            self._cache_keeper.start()
        service.Service.startService(self)

    def stopService(self) -> defer.Deferred:
        """The graceful stop (see the module docstring); fires when every record is written."""
        if self._stopping is None:
            service.Service.stopService(self)
            self._stopping = defer.ensureDeferred(self._stop())
        return self._stopping

    def stop_now(self) -> None:
        """Stop without waiting for the calls (a second signal); records are still written."""
        self._hurry = True
        if self._stopping is None:
            self.stopService()

    async def _stop(self) -> None:
        server, clock = self.server, self.reactor
        if self.port is not None:
            await defer.maybeDeferred(self.port.stopListening)
        if self._cache_keeper is not None:
            self._cache_keeper.stop()
        stop_warming = getattr(server.sounds, "stop_warming", None)
        if stop_warming is not None:
            dropped = stop_warming()          # no new call will need them; the calls' renders go on
            if dropped:
                log_event(log, logging.INFO, "warm-up renders cancelled", prompts=dropped)
        waiting = len(server.factory.connections)
        log_event(log, logging.INFO, "stopping: no new calls", calls_in_progress=len(server.active),
                  grace_period_s=self.grace_period_ms / 1000)
        deadline = clock.seconds() + self.grace_period_ms / 1000
        while _busy(server) and not self._hurry and clock.seconds() < deadline:
            await task.deferLater(clock, POLL_S, lambda: None)
        if _busy(server):
            count = server.hang_up_all("the server stopped before the call ended (grace period over)"
                                       if not self._hurry else "the server was stopped at once (second signal)")
            log_event(log, logging.WARNING, "hung up the calls still in progress", calls=count)
            give_up = clock.seconds() + HANGUP_WAIT_S
            while _busy(server) and clock.seconds() < give_up:
                await task.deferLater(clock, POLL_S, lambda: None)
        elif waiting:
            log_event(log, logging.INFO, "every call in progress finished")
        server.close()
        self._close_records()
        stop_sounds = getattr(server.sounds, "stop", None)
        if stop_sounds is not None:
            stop_sounds()
        library = getattr(server.sounds, "library", None)
        if library is not None:
            library.close()
        log_event(log, logging.INFO, "stopped", calls=server.calls_ended,
                  records_written=getattr(self.records, "written", 0))

    def _close_records(self) -> None:
        if self.records is not None:
            self.records.close()


def _busy(server: AgiServer) -> bool:
    """Calls still running, or connections still open (a call's record is queued before its socket closes)."""
    return bool(server.active or server.factory.connections)


def script_files(scripts_dir: str) -> list[str]:
    """Every ``.dlg`` under the scripts folder (compiled at start so that errors show at once)."""
    found = []
    for folder, subfolders, files in os.walk(scripts_dir):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found.extend(os.path.join(folder, name) for name in files if name.endswith(".dlg"))
    return sorted(found)


def serve(config, *, scripts_dir: str | None = None, reactor=None) -> int:
    """``autocall serve``: run until SIGINT/SIGTERM/SIGHUP, then stop gracefully; a second signal stops at once."""
    from autocall.agi.records import RecordWriter
    from autocall.outbox.delivery import make_outbox

    if reactor is None:
        from twisted.internet import reactor
    scripts_dir = os.path.abspath(scripts_dir or config.scripts_dir)
    if not os.path.isdir(scripts_dir):
        raise UserError(f"{scripts_dir}: the scripts folder does not exist; create it or pass --scripts DIR")
    _install_standard_sounds(config.sounds_dir)
    files = _raise_file_limit()
    outbox = make_outbox(config, reactor)
    records = RecordWriter(config.database, reactor, events=outbox_events(config))
    server = AgiServer.from_config(config, reactor=reactor, records=records, scripts_dir=scripts_dir)
    server.outbox = outbox                     # notify, and the web client fetch/send use (outbox.client)
    agi_service = AgiService(server, endpoint_description(config.host, config.port),
                             grace_period_ms=config.grace_period, records=records, reactor=reactor,
                             sound_cache_max_bytes=config.sound_cache_max_mb * 1_000_000)
    agi_service.startService()
    outbox.start()
    host, port = agi_service.address
    from twisted.logger import globalLogBeginner
    globalLogBeginner.beginLoggingTo([TwistedLogBridge(files)], discardBuffer=True, redirectStandardIO=False)
    log_event(log, logging.INFO, "listening", host=host, port=port, scripts_dir=scripts_dir,
              database=config.database, sounds_dir=config.sounds_dir, open_files_limit=files, pid=os.getpid())
    for path in script_files(scripts_dir):
        server.registry.load(os.path.realpath(path)).addErrback(lambda _: None)   # logged by the registry
    retention = None
    if config.retention:
        from autocall.agi.retention import RetentionJob
        retention = RetentionJob(config.database, config.retention, config.recordings_dir, reactor=reactor)
        retention.start()

    signals = {"count": 0}

    def on_signal(signum: int) -> None:
        signals["count"] += 1
        name = signal.Signals(signum).name
        if signals["count"] == 1:
            log_event(log, logging.INFO, f"{name}: stopping gracefully (send it again to stop at once)")
            if retention is not None:
                retention.stop()
            stopping = agi_service.stopService()
            stopping.addBoth(lambda outcome: outbox.stop().addBoth(lambda _: outcome))
            stopping.addBoth(_stop_reactor, reactor)
        else:
            log_event(log, logging.WARNING, f"{name} again: hanging up every call now")
            agi_service.stop_now()

    def handler(signum, frame) -> None:
        reactor.callFromThread(on_signal, signum)

    previous = {number: signal.signal(number, handler) for number in STOP_SIGNALS}
    # The one line a call is written with the others of the same tenth of a second (see LogfmtHandler).
    holding = [h for h in logging.getLogger("autocall").handlers if isinstance(h, LogfmtHandler)]
    for log_handler in holding:
        log_handler.hold_lines(reactor.callLater, LOG_LINES_EVERY_S)
    try:
        reactor.run(installSignalHandlers=False)
    finally:
        for log_handler in holding:
            log_handler.hold_lines(None)
        for number, old in previous.items():
            signal.signal(number, old)
    return 0


def outbox_events(config):
    """The EventWriter of the configuration's ``[events]`` (None when there are none)."""
    from autocall.outbox.events import EventWriter
    return EventWriter(config.events) if config.events else None


class TwistedLogBridge:
    """Twisted's own log events, as our log lines: its errors as errors, and the one warning a server
    operator must see, running out of file descriptors (Twisted then accepts each new connection
    with a reserved descriptor and closes it at once, so the server goes on serving the calls it has).
    That one is said once per ``every_s`` with how many connections were refused meanwhile."""

    def __init__(self, open_files_limit: int, clock=None, every_s: float = 10.0) -> None:
        import time
        self.open_files_limit = open_files_limit
        self._now = clock.seconds if clock is not None else time.monotonic
        self.every_s = every_s
        self._refused = 0
        self._said_at: float | None = None
        self._log = logging.getLogger("autocall.agi.service")

    def __call__(self, event: dict) -> None:
        from twisted.logger import LogLevel, formatEvent
        text = formatEvent(event)
        if "EMFILE" in text or "Could not accept new connection" in text:
            if "releasing reserved" in text or "Could not accept" in text:
                self._out_of_files(text)
            return
        level = event.get("log_level")
        if level not in (LogLevel.error, LogLevel.critical) and "log_failure" not in event:
            return
        failure = event.get("log_failure")
        if failure is not None:
            text = f"{text}: {failure.getErrorMessage()}" if text else failure.getErrorMessage()
        log_event(self._log, logging.ERROR, "twisted: " + " ".join(text.split())[:500])

    def _out_of_files(self, text: str) -> None:
        self._refused += 1
        now = self._now()
        if self._said_at is not None and now - self._said_at < self.every_s:
            return
        self._said_at = now
        refused, self._refused = self._refused, 0
        log_event(self._log, logging.ERROR,
                  "out of file descriptors: new connections are refused until calls end; the calls in "
                  "progress go on (raise the open files limit: ulimit -n, or LimitNOFILE= in the service unit)",
                  open_files_limit=self.open_files_limit, refused=refused)


def _stop_reactor(outcome, reactor) -> None:
    if isinstance(outcome, Failure):
        log.error("the stop did not go cleanly: %s", outcome.getTraceback())
    if reactor.running:
        reactor.stop()


def _raise_file_limit(wanted: int = MAX_OPEN_FILES) -> int:
    """Every call is a socket: lift the soft limit on open files towards the hard one (a common default of
    1,024 would cap the server near 1,000 calls). Returns the limit now in force."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def _install_standard_sounds(sounds_dir: str) -> None:
    from autocall.audio.errors import AudioError
    from autocall.audio.standard import install_standard_prompts
    try:
        install_standard_prompts(sounds_dir)
    except AudioError as exc:
        log.warning("cannot install the standard sounds: %s", exc, extra={"fields": {"sounds_dir": sounds_dir}})
