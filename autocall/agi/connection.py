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
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IProtocol, IReactorTime
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure
from zope.interface import implementer

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
                 "_env_timer", "_closed", "_env_waiters")

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

    # --- IProtocol ---------------------------------------------------------

    def makeConnection(self, transport) -> None:
        self.transport = transport
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
        agi.receive_data(data)
        events = []
        error = None
        try:
            while (event := agi.next_event()) is not NeedData:
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
            self.transport.write(data)
        else:
            if self._queue is None:
                self._queue = deque()
            self._queue.append((command, d))
        return d

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
        if self.transport is not None and self._closed is None:
            self.transport.loseConnection()

    # --- internals -----------------------------------------------------------

    def _reply(self, event: Reply) -> None:
        d = self._pending
        self._pending = None
        queue = self._queue
        if queue and self._closed is None:
            command, waiting = queue.popleft()
            try:
                self.transport.write(self._agi.send(command))
                self._pending = waiting
            except LocalProtocolError:
                waiting.errback()
        # The pure state machine refuses a reply to no command, so d is set here.
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
        self.transport.abortConnection()

    def _fail_all(self, reason: Failure) -> None:
        waiting = []
        if self._pending is not None:
            waiting.append(self._pending)
            self._pending = None
        if self._queue:
            waiting.extend(d for _, d in self._queue)
            self._queue = None
        if self._env_waiters:
            waiting.extend(self._env_waiters)
            self._env_waiters = None
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
                 max_line_length: int = DEFAULT_MAX_LINE_LENGTH) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.on_call = on_call
        self.clock = clock
        self.env_timeout_ms = env_timeout_ms
        self.max_line_length = max_line_length
        self.connections: set[FastAgiProtocol] = set()

    @classmethod
    def from_config(cls, config, on_call: OnCall, clock: IReactorTime | None = None) -> FastAgiFactory:
        """Limits from ``autocall.config.Config`` (``env_timeout``, ``max_line_length``)."""
        return cls(on_call, clock=clock, env_timeout_ms=config.env_timeout,
                   max_line_length=config.max_line_length)

    def buildProtocol(self, addr) -> FastAgiProtocol:
        return FastAgiProtocol(self)

    def call_started(self, connection: FastAgiProtocol) -> None:
        """Run ``on_call`` for a connection whose environment has arrived; close the connection after."""
        d = defer.maybeDeferred(self.on_call, connection)
        d.addErrback(self._call_failed, connection)
        d.addBoth(lambda _: connection.close())

    @staticmethod
    def _call_failed(failure: Failure, connection: FastAgiProtocol) -> None:
        environment = connection.environment
        log.error("agi %s (%s): the call handler failed: %s", connection.peer,
                  environment.uniqueid if environment is not None else "?", failure.getTraceback())
