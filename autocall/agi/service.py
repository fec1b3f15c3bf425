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

``stop_now()`` (a second SIGINT/SIGTERM) skips the rest of step 2.
``serve(config)`` is ``autocall serve``: all of the above plus signals.
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


def endpoint_description(host: str, port: int, backlog: int = DEFAULT_BACKLOG) -> str:
    """The Twisted endpoint string to listen on ``host:port`` (colons of an IPv6 address escaped)."""
    interface = host.replace("\\", "\\\\").replace(":", "\\:")
    return f"tcp:{port}:interface={interface}:backlog={backlog}"


class AgiService(service.Service):
    """Listens with an ``AgiServer``'s factory; owns its record writer's life cycle."""

    name = "autocall-agi"

    def __init__(self, server: AgiServer, endpoint: str, *, grace_period_ms: int = 30_000, records=None,
                 reactor=None) -> None:
        self.server = server
        self.endpoint = endpoint
        self.grace_period_ms = grace_period_ms
        self.records = records
        self.reactor = reactor or server.reactor
        self.port = None
        self._hurry = False
        self._stopping: defer.Deferred | None = None

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
    """``autocall serve``: run until SIGINT/SIGTERM, then stop gracefully; a second signal stops at once."""
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
                             grace_period_ms=config.grace_period, records=records, reactor=reactor)
    agi_service.startService()
    outbox.start()
    host, port = agi_service.address
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

    previous = {number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)}
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
