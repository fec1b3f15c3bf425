"""The Twisted side of AMI: connect, log in, keep the link alive, reconnect, and turn replies into Deferreds.

Bytes are parsed by ``autocall.ami.protocol`` (pure); this module only moves
them and keeps time with the injected reactor, so tests drive it with
``task.Clock`` and ``StringTransport``.

What the scheduler can rely on
------------------------------
- ``send_action`` fires with the ``Response`` whose ActionID is the action's
  (whatever its status); events and other actions' replies in between never
  match it. ActionIDs are ``<prefix><n>``: the prefix is random per client,
  ``n`` never repeats in the client's life, reconnects included.
- ``originate`` fires exactly once with an ``OriginateResult``, correlated
  only by the ActionID it generated, never by channel or order: the
  ``OriginateResponse`` may come before or after the "successfully queued"
  reply, among any number of other events and in-flight originates.
- Connection lost: every pending ``send_action``/``send_list_action``
  Deferred fails with ``AmiConnectionLost`` at once; the client reconnects
  with capped exponential backoff and logs in again.
- **In-flight originates survive a reconnect.** Asterisk sends
  ``OriginateResponse`` to *every* logged-in session that reads ``call``
  events, ActionID included (``fast_originate`` in ``main/manager.c`` raises
  it with ``EVENT_FLAG_CALL`` for all sessions), so one that arrives after the
  re-login is matched like any other. An originate with no
  ``OriginateResponse`` by its deadline (its ``Timeout`` plus
  ``originate_margin_ms``, counted from when it was sent) fires ``unknown``;
  that is what happens to one whose event was sent while the link was down,
  even if its "queued" reply had arrived (``queued=True``). ``unknown`` means
  the call may have been placed: do not redial it blindly (the FastAGI side
  sees ``AUTOCALL_ATTEMPT`` if it was answered).
- ``stop()`` and a fatal failure (the login refused on a reconnect) fire
  every originate still in flight as ``unknown`` at once.
- ``originate``/``send_action`` while not logged in fail at once with
  ``AmiNotConnected``: nothing was sent, so the attempt may be retried.
- The secret is never logged, shown in an error or in a ``repr``.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from enum import Enum
from functools import partial
from itertools import count
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import (HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint,
                                        clientFromString)
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure

from autocall.ami import protocol as ami
from autocall.ami.originate import OriginateRequest
from autocall.ami.tracker import OriginateTracker
from autocall.errors import UserError

__all__ = [
    "AmiClient", "AmiConnectionLost", "AmiError", "AmiLoginError", "AmiNotConnected", "AmiUnreachable",
    "Backoff", "ClientState",
]

log = logging.getLogger("autocall.ami")


class AmiError(Exception):
    """An AMI exchange that did not complete."""


class AmiConnectionLost(AmiError):
    """The connection closed before the reply came; the action may or may not have run."""


class AmiNotConnected(AmiError):
    """The client is not logged in (connecting, reconnecting, stopped): nothing was sent."""


class AmiLoginError(UserError):
    """The Asterisk Manager refused our username/secret (one line naming user and host, never the secret)."""


class AmiUnreachable(UserError):
    """No Asterisk Manager could be reached at the address (refused, timed out, not AMI, closed during login)."""


class ClientState(str, Enum):
    IDLE = "idle"                  # not started
    CONNECTING = "connecting"      # TCP connect in progress
    LOGGING_IN = "logging-in"      # connected, waiting for the banner or the login reply
    READY = "ready"                # logged in: actions and originates may be sent
    RECONNECTING = "reconnecting"  # link lost, waiting for the backoff delay
    STOPPING = "stopping"          # stop() called, Logoff sent
    STOPPED = "stopped"
    FAILED = "failed"              # gave up: login refused, or the first connection failed


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnect attempt ``n`` (1, 2, ...): ``initial_ms * factor**(n-1)``, at most ``max_ms``."""

    initial_ms: int = 500
    factor: float = 2.0
    max_ms: int = 30_000

    def delay_ms(self, attempt: int) -> int:
        return int(min(self.max_ms, self.initial_ms * self.factor ** max(0, attempt - 1)))


class _Secret:
    """Holds the AMI secret so that no repr, log record or traceback local shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


@dataclass
class _Pending:
    """An action written and not yet answered."""

    name: str
    deferred: defer.Deferred
    collect_list: bool = False
    collector: ami.EventListCollector | None = None


class _AmiProtocol(Protocol):
    """One TCP connection: feeds bytes to the pure ``AmiConnection`` and hands each message to the client."""

    def __init__(self, client: AmiClient) -> None:
        self._client = client
        self._connection = ami.AmiConnection(client.max_message_size)
        self.closing = False

    def encode(self, action: ami.Action) -> bytes:
        return self._connection.send(action)

    def drop(self) -> None:
        self.closing = True
        self.transport.abortConnection()

    def dataReceived(self, data: bytes) -> None:
        if self.closing:
            return
        self._connection.receive_data(data)
        while not self.closing:
            try:
                item = self._connection.next_event()
            except ami.RemoteProtocolError as exc:
                self._client._peer_misbehaved(self, exc)
                return
            if item is ami.NeedData or item is ami.ConnectionClosed:
                return
            self._client._received(self, item)

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        self.closing = True
        self._client._connection_lost(self, reason)


class _AmiFactory(Factory):
    noisy = False

    def __init__(self, client: AmiClient) -> None:
        self._client = client

    def buildProtocol(self, addr) -> _AmiProtocol:
        return _AmiProtocol(self._client)


_ENDPOINT_HOST = re.compile(r"host=([^:]+)")
_ENDPOINT_PORT = re.compile(r"port=(\d+)")


def _endpoint_address(description: str) -> str:
    host, port = _ENDPOINT_HOST.search(description), _ENDPOINT_PORT.search(description)
    if host and port:
        return f"{host.group(1)}:{port.group(1)}"
    return description


def _why(reason: Failure | BaseException) -> str:
    exc = reason.value if isinstance(reason, Failure) else reason
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return " ".join(text.split())


class AmiClient:
    """A long-lived, self-healing AMI session: ``start()``, then ``originate``/``send_action``, then ``stop()``.

    Durations are milliseconds, like the rest of AutoCall's configuration.
    ``endpoint`` is an endpoint string (``tcp:host=pbx:port=5038``) or an
    ``IStreamClientEndpoint``; or give ``host``/``port``. ``events`` is sent in
    the Login to limit the event flood; it must let ``call`` events through
    (``OriginateResponse`` is one).
    """

    def __init__(self, endpoint: Any = None, *, host: str | None = None, port: int = 5038,
                 username: str, secret: str, reactor: Any,
                 ping_interval_ms: int | None = 20_000, ping_timeout_ms: int = 10_000,
                 backoff: Backoff = Backoff(), events: str = "call", originate_margin_ms: int = 30_000,
                 connect_timeout_ms: int = 10_000, login_timeout_ms: int = 10_000,
                 action_id_prefix: str | None = None, address: str | None = None,
                 max_message_size: int = ami.DEFAULT_MAX_MESSAGE_SIZE) -> None:
        tokens = {token.strip().lower() for token in events.split(",")}
        if not tokens & {"on", "all", "call", "yes", "true"}:
            raise ValueError(f"events={events!r} would hide OriginateResponse; include 'call' (e.g. 'call,user')")
        self._reactor = reactor
        if endpoint is None:
            if host is None:
                raise ValueError("give an endpoint or a host")
            endpoint = self._tcp_endpoint(host, port, connect_timeout_ms / 1000)
            address = address or f"{host}:{port}"
        elif isinstance(endpoint, str):
            address = address or _endpoint_address(endpoint)
            endpoint = clientFromString(reactor, endpoint)
        self._endpoint = endpoint
        self.address = address or repr(endpoint)
        self.username = username
        self._secret = _Secret(secret)
        self.events = events
        self.ping_interval_ms = ping_interval_ms
        self.ping_timeout_ms = ping_timeout_ms
        self.backoff = backoff
        self.originate_margin_ms = originate_margin_ms
        self.login_timeout_ms = login_timeout_ms
        self.max_message_size = max_message_size
        self._prefix = action_id_prefix if action_id_prefix is not None else f"autocall-{secrets.token_hex(4)}-"
        self._ids = count(1)

        self.state = ClientState.IDLE
        self.banner: ami.Banner | None = None
        self.failure: UserError | None = None
        self._protocol: _AmiProtocol | None = None
        self._connecting: defer.Deferred | None = None
        self._has_been_ready = False
        self._reconnects = 0                   # consecutive failed attempts, for the backoff
        self._close_reason: UserError | None = None
        self._pending: dict[str, _Pending] = {}
        self._originates = OriginateTracker(reactor)
        self._ready_waiters: list[defer.Deferred] = []
        self._stop_waiters: list[defer.Deferred] = []
        self._subscribers: list[Callable[[ami.Event], object]] = []
        self._state_subscribers: list[Callable[[ClientState], object]] = []
        self._timers: dict[str, Any] = {}      # login, ping, pong, reconnect, logoff

    def __repr__(self) -> str:
        return f"<AmiClient {self.username}@{self.address} {self.state.value}>"

    # -- public API ------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.state is ClientState.READY

    @property
    def originates_in_flight(self) -> int:
        return len(self._originates)

    def start(self) -> defer.Deferred:
        """Connect and log in. Fires when ready; fails with ``AmiUnreachable``/``AmiLoginError`` (no retry)."""
        if self.state is not ClientState.IDLE:
            raise ami.LocalProtocolError(f"the AMI client is already {self.state.value}")
        self._connect()
        return self.when_ready()

    def when_ready(self) -> defer.Deferred:
        """A Deferred that fires (with None) once logged in: now if ready, else at the next (re)login."""
        if self.state is ClientState.READY:
            return defer.succeed(None)
        if self.state is ClientState.FAILED:
            return defer.fail(self.failure)
        if self.state in (ClientState.STOPPING, ClientState.STOPPED):
            return defer.fail(AmiNotConnected(f"the AMI client for {self.address} is stopped"))
        waiter: defer.Deferred = defer.Deferred()
        self._ready_waiters.append(waiter)
        return waiter

    def on_event(self, callback: Callable[[ami.Event], object]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (Hangup, VarSet, UserEvent...); returns an unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def on_state_change(self, callback: Callable[[ClientState], object]) -> Callable[[], None]:
        self._state_subscribers.append(callback)
        return lambda: self._state_subscribers.remove(callback) if callback in self._state_subscribers else None

    def send_action(self, action: ami.Action) -> defer.Deferred:
        """Send ``action``; fires with its ``Response`` (matched by ActionID), whatever its status."""
        return self._send_checked(action, collect_list=False)

    def send_list_action(self, action: ami.Action) -> defer.Deferred:
        """Send a list action (``Status``, ``CoreShowChannels``...); fires with an ``EventList``."""
        return self._send_checked(action, collect_list=True)

    def originate(self, request: OriginateRequest, *, timeout_ms: int | None = None) -> defer.Deferred:
        """Place one call; fires exactly once with its ``OriginateResult`` (see the module docstring)."""
        if self.state is not ClientState.READY:
            return defer.fail(AmiNotConnected(f"not logged in to the Asterisk Manager at {self.address} "
                                              f"({self.state.value}); the call was not placed"))
        action_id = self._new_action_id()
        reply = self._send(request.to_action(action_id))
        wait_ms = timeout_ms if timeout_ms is not None else request.timeout_ms + self.originate_margin_ms
        result = self._originates.track(action_id, wait_ms)
        # A lost link fails the reply, not the originate: its OriginateResponse may still come (module docstring).
        reply.addCallbacks(partial(self._originates.acknowledged, action_id),
                           lambda failure: failure.trap(AmiConnectionLost))
        return result

    def stop(self) -> defer.Deferred:
        """Log off and close; every originate still in flight fires ``unknown``. Fires when closed."""
        if self.state is ClientState.STOPPED:
            return defer.succeed(None)
        stopped: defer.Deferred = defer.Deferred()
        self._stop_waiters.append(stopped)
        if self.state is ClientState.STOPPING:
            return stopped
        was_ready = self.state is ClientState.READY
        self._set_state(ClientState.STOPPING)
        for name in ("reconnect", "ping", "pong", "login"):
            self._cancel_timer(name)
        if self._connecting is not None:
            self._connecting.cancel()    # its errback finishes the stop
        if self._protocol is None:
            self._finish_stop()
        elif was_ready:
            self._send(ami.logoff(self._new_action_id())).addBoth(lambda _: self._close_link())
            self._timers["logoff"] = self._reactor.callLater(self.login_timeout_ms / 1000, self._drop_link,
                                                             "no reply to Logoff")
        else:
            self._close_link()
        return stopped

    # -- connecting and logging in -------------------------------------------------------------
    def _connect(self) -> None:
        self._set_state(ClientState.CONNECTING)
        self._connecting = self._endpoint.connect(_AmiFactory(self))
        self._connecting.addCallbacks(self._connected, self._connect_failed)

    def _tcp_endpoint(self, host: str, port: int, timeout: float) -> Any:
        # IP literals skip the name resolver and its thread pool (which only starts with a running reactor).
        if isIPAddress(host):
            return TCP4ClientEndpoint(self._reactor, host, port, timeout=timeout)
        if isIPv6Address(host):
            return TCP6ClientEndpoint(self._reactor, host, port, timeout=timeout)
        return HostnameEndpoint(self._reactor, host, port, timeout=timeout)

    def _connected(self, protocol: _AmiProtocol) -> None:
        self._connecting = None
        if self.state is ClientState.STOPPING:
            protocol.transport.loseConnection()
            return
        self._protocol = protocol
        self._close_reason = None
        self._set_state(ClientState.LOGGING_IN)
        self._timers["login"] = self._reactor.callLater(
            self.login_timeout_ms / 1000, self._drop_link,
            f"no banner or login reply within {self.login_timeout_ms / 1000:g} s")

    def _connect_failed(self, reason: Failure) -> None:
        self._connecting = None
        if self.state in (ClientState.STOPPING, ClientState.STOPPED):
            self._finish_stop()
            return
        self._link_down(AmiUnreachable(
            f"cannot reach the Asterisk Manager at {self.address} ({_why(reason)}); "
            f"check the host and port, and that manager.conf has enabled = yes"))

    def _log_in(self) -> None:
        action = ami.login(self.username, self._secret.reveal(), events=self.events,
                           action_id=self._new_action_id())
        self._send(action).addCallbacks(self._login_answered, lambda failure: failure.trap(AmiConnectionLost))

    def _login_answered(self, response: ami.Response) -> None:
        self._cancel_timer("login")
        if not response.ok:
            error = AmiLoginError(
                f"the Asterisk Manager at {self.address} refused the login of user '{self.username}' "
                f"({response.message or response.status}); check the AMI username and ami_secret")
            self._fail(error)
            return
        first = not self._has_been_ready
        self._has_been_ready = True
        self._reconnects = 0
        self._set_state(ClientState.READY)
        version = self.banner.text if self.banner else "AMI"
        if first:
            log.info("AMI: logged in to %s as %s (%s)", self.address, self.username, version)
        else:
            log.info("AMI: logged in again to %s as %s; %d originate(s) still awaiting their OriginateResponse",
                     self.address, self.username, len(self._originates))
        self._schedule_ping()
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    # -- keep-alive ---------------------------------------------------------------------------
    def _schedule_ping(self) -> None:
        if self.ping_interval_ms:
            self._timers["ping"] = self._reactor.callLater(self.ping_interval_ms / 1000, self._ping)

    def _ping(self) -> None:
        self._timers.pop("ping", None)
        if self.state is not ClientState.READY:
            return
        self._timers["pong"] = self._reactor.callLater(
            self.ping_timeout_ms / 1000, self._drop_link,
            f"no reply to Ping within {self.ping_timeout_ms / 1000:g} s")
        self._send(ami.ping(self._new_action_id())).addCallbacks(
            self._pong, lambda failure: failure.trap(AmiConnectionLost))

    def _pong(self, response: ami.Response) -> None:
        self._cancel_timer("pong")
        if self.state is ClientState.READY:
            self._schedule_ping()

    # -- sending and receiving ----------------------------------------------------------------
    def _new_action_id(self) -> str:
        return f"{self._prefix}{next(self._ids)}"

    def _send_checked(self, action: ami.Action, collect_list: bool) -> defer.Deferred:
        if self.state is not ClientState.READY:
            return defer.fail(AmiNotConnected(f"not logged in to the Asterisk Manager at {self.address} "
                                              f"({self.state.value}); {action.name} was not sent"))
        if action.action_id is None:
            action = action.with_action_id(self._new_action_id())
        elif action.action_id in self._pending or action.action_id in self._originates:
            raise ami.LocalProtocolError(f"ActionID {action.action_id!r} is already waiting for its reply")
        return self._send(action, collect_list)

    def _send(self, action: ami.Action, collect_list: bool = False) -> defer.Deferred:
        assert self._protocol is not None and action.action_id is not None
        data = self._protocol.encode(action)          # LocalProtocolError here: nothing registered or sent
        pending = _Pending(action.name, defer.Deferred(), collect_list)
        self._pending[action.action_id] = pending
        self._protocol.transport.write(data)
        return pending.deferred

    def _received(self, protocol: _AmiProtocol, item: ami.Banner | ami.Response | ami.Event) -> None:
        if protocol is not self._protocol:
            return
        if isinstance(item, ami.Banner):
            self.banner = item
            self._log_in()
        elif isinstance(item, ami.Response):
            self._response(item)
        else:
            self._event(item)

    def _response(self, response: ami.Response) -> None:
        pending = self._pending.get(response.action_id or "")
        if pending is None:
            log.debug("AMI: a reply nobody waits for (ActionID %r, %s)", response.action_id, response.status)
            return
        if pending.collect_list and response.starts_event_list:
            pending.collector = ami.EventListCollector(response)
            return
        del self._pending[response.action_id]
        pending.deferred.callback(ami.EventList(response, (), None) if pending.collect_list else response)

    def _event(self, event: ami.Event) -> None:
        action_id = event.action_id or ""
        pending = self._pending.get(action_id)
        if pending is not None and pending.collector is not None and pending.collector.add(event):
            del self._pending[action_id]
            pending.deferred.callback(pending.collector.result())
        self._originates.event(event)
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # one faulty subscriber must not break the link or the others
                log.exception("AMI: an event handler failed on %s", event.name)

    # -- losing the link -------------------------------------------------------------------------
    def _peer_misbehaved(self, protocol: _AmiProtocol, exc: ami.RemoteProtocolError) -> None:
        if protocol is self._protocol:
            self._close_reason = AmiUnreachable(f"the peer at {self.address} does not speak AMI ({exc})")
            log.warning("AMI: %s; dropping the link", self._close_reason)
        protocol.drop()

    def _drop_link(self, why: str) -> None:
        if self._protocol is not None:
            log.warning("AMI: %s from %s; dropping the link", why, self.address)
            self._close_reason = AmiUnreachable(f"the Asterisk Manager at {self.address} did not answer ({why})")
            self._protocol.drop()

    def _close_link(self) -> None:
        if self._protocol is not None:
            self._protocol.closing = True
            self._protocol.transport.loseConnection()

    def _connection_lost(self, protocol: _AmiProtocol, reason: Failure) -> None:
        if protocol is not self._protocol:
            return
        self._protocol = None
        for name in ("login", "ping", "pong", "logoff"):
            self._cancel_timer(name)
        self._originates.link_lost()     # kept: their OriginateResponse may still come after the re-login
        pending, self._pending = self._pending, {}
        for action_id, item in pending.items():
            item.deferred.errback(AmiConnectionLost(
                f"the AMI link to {self.address} closed before the reply to {item.name} ({action_id})"))
        if self.state is ClientState.STOPPING:
            self._finish_stop()
        elif self.state is not ClientState.FAILED:
            when = "" if self._has_been_ready else "during the login "
            self._link_down(self._close_reason or AmiUnreachable(
                f"the Asterisk Manager at {self.address} closed the connection {when}({_why(reason)})"))

    def _link_down(self, error: UserError) -> None:
        """The link is gone or could not be made: give up on a first start, else retry after the backoff."""
        if not self._has_been_ready:
            self._fail(error)
            return
        self._reconnects += 1
        delay_ms = self.backoff.delay_ms(self._reconnects)
        log.warning("AMI: link to %s down (%s); reconnecting in %g s (attempt %d)",
                    self.address, error, delay_ms / 1000, self._reconnects)
        self._set_state(ClientState.RECONNECTING)
        self._timers["reconnect"] = self._reactor.callLater(delay_ms / 1000, self._reconnect)

    def _reconnect(self) -> None:
        self._timers.pop("reconnect", None)
        self._connect()

    def _fail(self, error: UserError) -> None:
        self.failure = error
        log.error("AMI: %s", error)
        self._set_state(ClientState.FAILED)
        for name in list(self._timers):
            self._cancel_timer(name)
        if self._protocol is not None:
            self._protocol.drop()
        self._originates.give_up(f"the AMI client gave up: {error}")
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            waiter.errback(error)

    def _finish_stop(self) -> None:
        if self.state is ClientState.STOPPED:
            return
        self._cancel_timer("logoff")
        self._set_state(ClientState.STOPPED)
        self._originates.give_up("the AMI client stopped before the OriginateResponse came")
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            waiter.errback(AmiNotConnected(f"the AMI client for {self.address} was stopped"))
        stopped, self._stop_waiters = self._stop_waiters, []
        for waiter in stopped:
            waiter.callback(None)

    # -- small helpers ---------------------------------------------------------------------------
    def _cancel_timer(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _set_state(self, state: ClientState) -> None:
        if state is self.state:
            return
        self.state = state
        for callback in list(self._state_subscribers):
            try:
                callback(state)
            except Exception:
                log.exception("AMI: a state handler failed on %s", state.value)
