"""The thin Twisted adapter over ``autocall.agi.protocol``: one FastAGI connection, and its factory.

``FastAgiProtocol`` feeds bytes to the pure ``AgiConnection`` and turns
replies into Deferreds, one command at a time. It survives what broke the
peers: a connect-and-close (health check) costs nothing but its own
connection; a multi-line 520 reply is one reply; an unprompted ``HANGUP`` line
sets ``hung_up`` and is never taken for the reply to the next command. A peer
that sends no environment within ``env_timeout_ms``, sends a line over
``max_line_length`` or sends garbage is logged and dropped. Time comes from
an injected ``IReactorTime`` so tests drive it with ``task.Clock``.

Per-connection state is kept small (``__slots__``, no per-line logging):
the server holds thousands of these.

The call's coroutine (``on_call`` returning one) is driven by ``_CallTask``,
not by ``Deferred.fromCoroutine``: ``request`` hands it the reply directly
(no Deferred, no callback chain), which is most of the
per-command cost of the server once the engine is lean. It still awaits
any Deferred (sounds, the registry, the database) as Twisted would. This and
the other fast paths turn off together: ``autocall.agi.fastpaths``.
"""

from __future__ import annotations

import logging
import types
from collections import deque
from collections.abc import Awaitable, Callable
from inspect import iscoroutine
from typing import Any

from twisted.internet import defer, tcp
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IProtocol, IReactorTime
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure
from zope.interface import implementer

from autocall.agi import fastpaths
from autocall.agi.protocol import (
    DEFAULT_MAX_LINE_LENGTH,
    AgiConnection,
    Command,
    Environment,
    HangupNotice,
    LocalProtocolError,
    NeedData,
    RemoteProtocolError,
    Response,
    UsageError,
)
from autocall.peers import PeerFilter

log = logging.getLogger("autocall.agi")

DEFAULT_ENV_TIMEOUT_MS = 10_000
Reply = Response | UsageError
OnCall = Callable[["FastAgiProtocol"], Awaitable[Any] | defer.Deferred | None]


@implementer(IProtocol)
class FastAgiProtocol:
    """One FastAGI connection, server side.

    ``environment`` is None until the ``agi_*`` block has arrived; the factory
    then calls its ``on_call``. ``send_command`` returns a Deferred that fires
    with the ``Response`` or ``UsageError`` (520); it fails with
    ``RemoteProtocolError`` when the peer sent garbage, and with the
    connection-loss reason (a ``twisted.internet.error.ConnectionClosed``)
    when the socket closes first. ``hung_up`` is True once Asterisk's
    unprompted ``HANGUP`` line has arrived.
    """

    __slots__ = ("transport", "factory", "environment", "hung_up", "_agi", "_pending", "_queue",
                 "_env_timer", "_closed", "_env_waiters", "_task", "_socket", "sent", "sent_at", "_watchers")

    def __init__(self, factory: FastAgiFactory) -> None:
        self.factory = factory
        self.transport = None
        self.environment: Environment | None = None
        self.hung_up = False
        self._agi = AgiConnection(factory.max_line_length)
        self._pending: defer.Deferred | None = None
        self._queue: deque | None = None          # created only when a second command waits
        self._env_timer = None
        self._closed: Failure | None = None       # the reason, once the connection is gone
        self._env_waiters: list[defer.Deferred] | None = None
        self._task: _CallTask | None = None       # the call's coroutine, while it runs
        self._socket = None                       # where commands go straight (see _write)
        self._watchers: list[defer.Deferred] | None = None   # until_lost's
        self.sent: Command | None = None          # the last command sent, and when (factory.clock): for
        self.sent_at = 0.0                        # the server's check that Asterisk answers in time

    # --- IProtocol ---------------------------------------------------------

    def makeConnection(self, transport) -> None:
        self.transport = transport
        if fastpaths.enabled and isinstance(transport, tcp.Connection):
            self._socket = transport.getHandle()
        self.connectionMade()

    def connectionMade(self) -> None:
        self.factory.connections.add(self)
        self._env_timer = self.factory.clock.callLater(self.factory.env_timeout_ms / 1000, self._env_timed_out)

    def dataReceived(self, data: bytes) -> None:
        if self._closed is not None:
            return
        # Parse every complete line before acting on any, so that a HANGUP line
        # that came in the same segment as a reply is known when the reply's
        # callbacks decide what to send next.
        agi = self._agi
        pending = self._pending
        if not fastpaths.enabled:
            pass
        elif pending is not None:
            reply = agi.quick_reply(data)
            if reply is not None:           # the common segment: one reply line (and maybe HANGUP)
                if agi.hung_up:
                    self.hung_up = True     # known before the reply is acted on, as below
                task = self._task
                if pending is _TASK and task is not None and not self._queue:
                    self._pending = None
                    task.step(reply, None)           # straight back into the call's coroutine
                else:
                    self._reply(reply)
                return
        elif self.environment is None:
            environment = agi.quick_environment(data)
            if environment is not None:     # the whole environment in one segment
                self._environment_received(environment)
                return
        agi.receive_data(data)
        next_event = agi.next_event
        events = []
        error = None
        try:
            while (event := next_event()) is not NeedData:
                if type(event) is HangupNotice:
                    self.hung_up = True
                else:
                    events.append(event)
        except RemoteProtocolError as exc:
            error = exc
            self._closed = Failure(exc)      # what was valid is delivered; nothing more is sent
        for event in events:
            if type(event) is Environment:
                self._environment_received(event)
            else:
                self._reply(event)
            if self._closed is not None and error is None:     # a callback closed the connection
                return
        if error is not None:
            self._drop(error)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.factory.connections.discard(self)
        self._cancel_env_timer()
        if self._closed is None:
            self._closed = reason = reason if reason is not None else Failure(ConnectionDone())
            if self.environment is None:
                # A health check (connect and close) lands here: nothing to clean but ourselves.
                log.debug("agi %s: connection closed before the environment", self.peer)
            self._fail_all(reason)

    # --- API -----------------------------------------------------------------

    @property
    def peer(self) -> str:
        """``host:port`` of the peer, for log lines."""
        try:
            address = self.transport.getPeer()
            return f"{address.host}:{address.port}"
        except AttributeError:
            return "?"

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def overdue(self, now: float, margin_s: float) -> Command | None:
        """The command Asterisk has not answered although it could have by ``now`` (its longest legitimate
        time plus ``margin_s``), else None."""
        command = self.sent
        if self._pending is None or command is None or command.max_ms is None or self._closed is not None:
            return None
        return command if now > self.sent_at + command.max_ms / 1000 + margin_s else None

    def send_command(self, command: Command) -> defer.Deferred:
        """Send ``command`` (after any still queued) and fire with its reply."""
        if self._closed is not None:
            return defer.fail(self._closed)
        d = defer.Deferred()
        if self._pending is None:
            try:
                data = self._agi.send(command)
            except LocalProtocolError:
                return defer.fail()
            self._pending = d
            self.sent, self.sent_at = command, self.factory.clock.seconds()
            self._write(data)
        else:
            if self._queue is None:
                self._queue = deque()
            self._queue.append((command, d))
        return d

    @types.coroutine
    def request(self, command: Command):
        """Await the reply to ``command``: ``send_command`` for the call's own coroutine, without a Deferred.

        Inside the coroutine that ``on_call`` returned (driven by ``_CallTask``)
        the reply resumes it directly; anywhere else, or behind a queued
        command, this waits on ``send_command``'s Deferred. The command is
        sent when this is awaited.
        """
        if not self.issue(command):
            return (yield from self.send_command(command))
        reply = yield self                  # _CallTask: "waiting for this connection's reply"
        if reply is self:                   # someone else drives this coroutine: it sent our marker back
            reply = yield self.reply_deferred()
        return reply

    def issue(self, command: Command) -> bool:
        """The primitive under ``request``: send ``command`` for the call's coroutine, which must then yield
        this connection (its reply comes back as the value of that yield, a lost connection as the
        exception). False, and nothing sent, when that cannot be (no call coroutine, a command
        still pending, the connection gone): use ``send_command``."""
        if self._task is None or self._pending is not None or self._closed is not None:
            return False
        data = self._agi.send(command)
        self._pending = _TASK
        self.sent, self.sent_at = command, self.factory.clock.seconds()
        self._write(data)
        return True

    def reply_deferred(self) -> defer.Deferred:
        """For a coroutine that yielded this connection to a driver that is not ``_CallTask`` (it got the
        connection back): a Deferred of the reply to the command ``issue`` sent, to yield instead."""
        d = defer.Deferred()
        if self._pending is _TASK:
            self._pending = d
        return d

    def until_lost(self, work: defer.Deferred) -> defer.Deferred:
        """A new Deferred with ``work``'s result, or failing with the connection-loss reason if the
        connection goes first: a call waiting for something other than Asterisk (a prompt being
        rendered, its script compiled) ends at once when hung up, at a stop too, rather than when that
        work is done. ``work`` itself goes on for whoever else waits for it."""
        if self._closed is not None:
            work.addErrback(lambda _: None)
            return defer.fail(self._closed)
        if work.called:
            return work
        watcher: defer.Deferred = defer.Deferred()
        if self._watchers is None:
            self._watchers = []
        self._watchers.append(watcher)

        def done(result):
            if not watcher.called:
                if self._watchers is not None and watcher in self._watchers:
                    self._watchers.remove(watcher)
                if isinstance(result, Failure):
                    watcher.errback(result)
                else:
                    watcher.callback(result)
            return None          # a result that came after the connection went is dropped

        work.addBoth(done)
        return watcher

    def wait_environment(self) -> defer.Deferred:
        """A new Deferred that fires with the environment (at once if it has come), or fails if dropped first.

        A Deferred per asker, like twisted.web's ``notifyFinish()``: a health
        check leaves no unhandled failure behind.
        """
        if self.environment is not None:
            return defer.succeed(self.environment)
        if self._closed is not None:
            return defer.fail(self._closed)
        if self._env_waiters is None:
            self._env_waiters = []
        d = defer.Deferred()
        self._env_waiters.append(d)
        return d

    def close(self) -> None:
        """Close the socket (Asterisk waits for the server to do it after the script)."""
        self._socket = None
        if self.transport is not None and self._closed is None:
            self.transport.loseConnection()

    def abort(self) -> None:
        """Drop the connection now (``transport.abortConnection()``); nothing more is written."""
        self._socket = None
        if self.transport is not None:
            self.transport.abortConnection()

    # --- internals -----------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Send a command: straight to the socket while nothing has ever been queued in the transport,
        else (and from then on, to keep the order) through ``transport.write``.

        A command is one small write and AGI waits for its reply before the next, so the socket's send
        buffer is empty and the kernel takes the whole line at once: no buffering in Twisted, no
        registering for writability and no reactor turn to flush it (two ``epoll_ctl`` calls and a
        wake-up less per command). A partial send, a full buffer or an error hands the rest to Twisted,
        which deals with it as it always does (a broken socket is found and reported as a lost
        connection). Only for a plain ``tcp.Connection`` (not TLS, not test transports).
        """
        sock = self._socket
        if sock is not None:
            try:
                sent = sock.send(data)
            except OSError:
                sent = 0
            if sent == len(data):
                return
            self._socket = None
            data = data[sent:]
        self.transport.write(data)

    def _reply(self, event: Reply) -> None:
        d = self._pending
        self._pending = None
        queue = self._queue
        if queue and self._closed is None:
            command, waiting = queue.popleft()
            try:
                self._write(self._agi.send(command))
                self._pending = waiting
                self.sent, self.sent_at = command, self.factory.clock.seconds()
            except LocalProtocolError:
                waiting.errback()
        # The pure state machine refuses a reply to no command, so d is set here.
        if d is _TASK:
            if self._task is not None:
                self._task.step(event, None)
        else:
            d.callback(event)

    def _environment_received(self, environment: Environment) -> None:
        self._cancel_env_timer()
        self.environment = environment
        waiters, self._env_waiters = self._env_waiters, None
        for d in waiters or ():
            d.callback(environment)
        self.factory.call_started(self)

    def _env_timed_out(self) -> None:
        self._env_timer = None
        self._drop(RemoteProtocolError(f"the peer sent no environment within {self.factory.env_timeout_ms} ms"))

    def _cancel_env_timer(self) -> None:
        if self._env_timer is not None:
            if self._env_timer.active():
                self._env_timer.cancel()
            self._env_timer = None

    def _drop(self, error: RemoteProtocolError) -> None:
        """Refuse a misbehaving peer: log why, fail what waits, abort the socket."""
        log.warning("agi %s%s: dropped: %s", self.peer,
                    f" ({self.environment.uniqueid})" if self.environment is not None else "", error)
        reason = Failure(error)
        self._closed = reason
        self._cancel_env_timer()
        self._fail_all(reason)
        self.abort()

    def _fail_all(self, reason: Failure) -> None:
        waiting = []
        task = None
        if self._pending is _TASK:
            task = self._task
        elif self._pending is not None:
            waiting.append(self._pending)
        self._pending = None
        if self._queue:
            waiting.extend(d for _, d in self._queue)
            self._queue = None
        if self._env_waiters:
            waiting.extend(self._env_waiters)
            self._env_waiters = None
        if self._watchers:
            waiting.extend(self._watchers)     # until_lost: waiting for other work, woken now
            self._watchers = None
        if task is not None:
            task.step(None, reason)
        for d in waiting:
            d.errback(reason)


class FastAgiFactory(Factory):
    """Builds ``FastAgiProtocol``s and runs ``on_call(connection)`` once a connection's environment arrives.

    ``on_call`` may return a coroutine, a Deferred or None; when it is done
    (or fails, which is logged) the connection is closed. ``connections``
    holds the live connections, for a graceful shutdown.
    """

    def __init__(self, on_call: OnCall, *, clock: IReactorTime | None = None,
                 env_timeout_ms: int = DEFAULT_ENV_TIMEOUT_MS,
                 max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
                 allowed_peers: PeerFilter | None = None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.on_call = on_call
        self.clock = clock
        self.env_timeout_ms = env_timeout_ms
        self.max_line_length = max_line_length
        self.connections: set[FastAgiProtocol] = set()
        self.allowed_peers = allowed_peers or PeerFilter()

    @classmethod
    def from_config(cls, config, on_call: OnCall, clock: IReactorTime | None = None) -> FastAgiFactory:
        """Limits from ``autocall.config.Config`` (``env_timeout``, ``max_line_length``)."""
        return cls(on_call, clock=clock, env_timeout_ms=config.env_timeout,
                   max_line_length=config.max_line_length, allowed_peers=PeerFilter(config.allowed_peers))

    def buildProtocol(self, addr) -> FastAgiProtocol | None:
        host = getattr(addr, "host", None)
        if host is not None and not self.allowed_peers.allows(host):
            # None: Twisted closes the socket at once, before a byte is read.
            log.warning("agi %s:%s: refused: the address is not in allowed_peers; connection dropped",
                        host, getattr(addr, "port", "?"))
            return None
        return FastAgiProtocol(self)

    def call_started(self, connection: FastAgiProtocol) -> None:
        """Run ``on_call`` for a connection whose environment has arrived; close the connection after."""
        try:
            result = self.on_call(connection)
        except BaseException:
            result = defer.fail()
        if type(result) is types.CoroutineType or iscoroutine(result):
            if fastpaths.enabled:
                _CallTask(result, connection, self._call_ended).start()
                return
            result = defer.Deferred.fromCoroutine(result)
        d = result if isinstance(result, defer.Deferred) else defer.succeed(result)
        d.addErrback(self._call_failed, connection)
        d.addBoth(lambda _: connection.close())

    def _call_ended(self, failure: Failure | None, connection: FastAgiProtocol) -> None:
        if failure is not None:
            self._call_failed(failure, connection)
        connection.close()

    @staticmethod
    def _call_failed(failure: Failure, connection: FastAgiProtocol) -> None:
        environment = connection.environment
        log.error("agi %s (%s): the call handler failed: %s", connection.peer,
                  environment.uniqueid if environment is not None else "?", failure.getTraceback())


_NOTHING = object()
_TASK = object()        # FastAgiProtocol._pending when the call's coroutine itself waits for the reply


class _CallTask:
    """Runs the coroutine ``on_call`` returned: replies resume it directly, Deferreds through a callback.

    What ``Deferred.fromCoroutine`` does for this one use, minus its
    per-step machinery (cancellation and contextvars are not used here).
    ``ended(failure or None, connection)`` is called once the coroutine is over.
    """

    __slots__ = ("coro", "connection", "ended", "_stepping", "_early")

    def __init__(self, coro, connection: FastAgiProtocol, ended) -> None:
        self.coro = coro
        self.connection = connection
        self.ended = ended
        self._stepping = False
        self._early = _NOTHING

    def start(self) -> None:
        self.connection._task = self
        self.step(None, None)

    def step(self, value, failure: Failure | None) -> None:
        coro = self.coro
        while True:
            try:
                if failure is None:
                    yielded = coro.send(value)
                else:
                    yielded = failure.throwExceptionIntoGenerator(coro)
            except StopIteration:
                self._finish(None)
                return
            except BaseException:
                self._finish(Failure())
                return
            if yielded is self.connection:
                return                                # its reply resumes us (FastAgiProtocol.request)
            if type(yielded) is FastAgiProtocol:
                value, failure = yielded, None        # another connection's: it falls back to a Deferred
                continue
            if not isinstance(yielded, defer.Deferred):
                value, failure = yielded, None        # as Twisted does: sent back as is
                continue
            # A Deferred that may fire while it is being added to: take that result in this loop.
            self._stepping = True
            yielded.addBoth(self._fired)
            self._stepping = False
            result, self._early = self._early, _NOTHING
            if result is _NOTHING:
                return
            value, failure = (None, result) if isinstance(result, Failure) else (result, None)

    def _fired(self, result) -> None:
        if self._stepping:
            self._early = result
        elif isinstance(result, Failure):
            self.step(None, result)
        else:
            self.step(result, None)
        return None              # the failure, if any, is the coroutine's now

    def _finish(self, failure: Failure | None) -> None:
        connection = self.connection
        self.coro = self.connection = None
        if connection._task is self:
            connection._task = None
        self.ended(failure, connection)
