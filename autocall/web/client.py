"""``WebClient``: one HTTP request to a configured service on the reactor, answered as a ``Reply``, never an error.

What it guarantees (docs/operations.md, "When a service is slow or down"):

- connections are pooled per service, and at most ``max_concurrent``
  requests are in flight to a service (a ``DeferredSemaphore``); a request
  waiting for a free slot waits within its own timeout;
- the timeout covers the whole request (waiting for a slot, connecting,
  the reply, its body) and costs only the request that waits: nothing here
  blocks the reactor;
- a reply body over 1 MB is refused as soon as it is known to be (its
  ``Content-Length``, or while it arrives) and the connection is dropped;
- redirects are not followed (a 3xx is ``HTTP 302``: not ok), cookies are
  never kept, and only the service's own host is contacted;
- every request is logged (method, service, path with secret values
  masked, status, time), never a header value, a query or a body.
"""

from __future__ import annotations

import logging
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Mapping

from twisted.internet import defer, error as net_error
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web import _newclient, http
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone

import treq.client
from treq.cookies import IndexableCookieJar

from autocall import __version__
from autocall.engine import web
from autocall.services_config import DEFAULT_MAX_CONCURRENT, ServiceConfig

log = logging.getLogger("autocall.web")

USER_AGENT = f"AutoCall/{__version__}"
IDLE_CONNECTION_S = 60


class _TooBig(Exception):
    pass


class _CutOff(Exception):
    pass


class _OtherHost(Exception):
    pass


class _Collector(Protocol):
    """Reads a reply body into memory up to ``limit`` bytes; past it, drops the connection."""

    def __init__(self, finished: defer.Deferred, limit: int, expected: int | None) -> None:
        self.finished = finished
        self.limit = limit
        self.expected = expected
        self.parts: list[bytes] = []
        self.size = 0

    def connectionMade(self) -> None:
        if self.expected is not None and self.expected > self.limit:
            self._fail(_TooBig())

    def dataReceived(self, data: bytes) -> None:
        if self.finished.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self._fail(_TooBig())
            return
        self.parts.append(data)

    def connectionLost(self, reason: Failure) -> None:
        if self.finished.called:
            return
        # PotentialDataLoss: no length was given and the server closed the connection, which is how such a
        # body ends (HTTP/1.0); a body cut short of its length or its last chunk is a ResponseFailed.
        if reason.check(ResponseDone, http.PotentialDataLoss):
            self.finished.callback(b"".join(self.parts))
        else:
            self.finished.errback(Failure(_CutOff()))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.stopProducing()

    def _fail(self, exc: Exception) -> None:
        self.parts = []
        self.abort()
        if not self.finished.called:
            self.finished.errback(Failure(exc))


def _read_body(response: Any, limit: int) -> defer.Deferred:
    length = response.length if isinstance(response.length, int) else None
    box: list[_Collector] = []
    finished: defer.Deferred = defer.Deferred(lambda _: box[0].abort() if box else None)
    collector = _Collector(finished, limit, length)
    box.append(collector)
    response.deliverBody(collector)
    return finished


class WebClient:
    """Requests to services: ``request(...)`` fires with a ``Reply``; ``close()`` drops pooled connections.

    ``services`` is the configuration's ``[services]``; a service only a
    script declares (no table) uses the script's URL and the defaults.
    ``clock`` (an ``IReactorTime``) times the requests; the reactor by default.
    """

    def __init__(self, services: Mapping[str, ServiceConfig] | None = None, reactor: Any = None, *,
                 clock: Any = None, max_reply_bytes: int = web.MAX_REPLY_BYTES) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.services = dict(services or {})
        self.reactor = reactor
        self.clock = clock or reactor
        self.max_reply_bytes = max_reply_bytes
        self._pools: dict[str, HTTPConnectionPool] = {}
        self._clients: dict[str, treq.client.HTTPClient] = {}
        self._slots: dict[str, defer.DeferredSemaphore] = {}
        self.in_flight = 0

    # --- what callers use ------------------------------------------------------------------------------
    def base_url(self, service: str, script_url: str = "") -> str:
        """The URL requests to ``service`` start with: the configuration's, else the script's."""
        configured = self.services.get(service)
        return (configured.url if configured and configured.url else script_url).rstrip("/")

    def request(self, service: str, method: str, path: str, *, script_url: str = "",
                query: Mapping[str, Any] | None = None, json_body: Any = None, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, timeout_s: float = 3.0, shown_path: str | None = None,
                call_id: str | None = None) -> defer.Deferred:
        """One request; fires with a ``Reply`` (never fails).

        ``path`` is already encoded (``autocall.engine.web.build_path``);
        ``shown_path`` is what logs and records show (secret values masked;
        ``path`` when not given). ``query`` is the query string (GET),
        ``json_body`` a value sent as JSON, ``body`` bytes sent as they are
        (``Content-Type: application/json``); ``headers`` are added to the
        configured ones.
        """
        shown = path if shown_path is None else shown_path
        started = self.clock.seconds()
        base = self.base_url(service, script_url)
        d = defer.Deferred.fromCoroutine(self._perform(service, method.upper(), base, path, query, json_body, body,
                                                       headers or {}))
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            d.cancel()

        timer = self.clock.callLater(timeout_s, expire)

        def settled(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            return result

        d.addBoth(settled)
        d.addCallback(self._reply, method.upper(), service, shown, started)
        d.addErrback(lambda failure: self._failed(failure, method.upper(), service, shown, started,
                                                  timeout_s if expired else None))
        d.addCallback(self._logged, call_id)
        return d

    def close(self) -> defer.Deferred:
        """Close the pooled connections (at shutdown)."""
        closing = [pool.closeCachedConnections() for pool in self._pools.values()]
        self._pools.clear()
        self._clients.clear()
        return defer.gatherResults(closing, consumeErrors=True).addCallback(lambda _: None)

    # --- one request -------------------------------------------------------------------------------------
    async def _perform(self, service: str, method: str, base: str, path: str, query, json_body, body,
                       extra_headers: Mapping[str, str]) -> tuple[int, dict, bytes]:
        url = _join(base, path)
        client = self._client(service)
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        configured = self.services.get(service)
        if configured is not None:
            headers.update(configured.header_values())
        headers.update(extra_headers)
        options: dict[str, Any] = {"headers": headers, "allow_redirects": False, "unbuffered": True}
        if query:
            options["params"] = [(str(key), value if isinstance(value, str) else str(value))
                                 for key, value in query.items()]
        if body is not None:
            options["data"] = body
            headers.setdefault("Content-Type", "application/json")
        elif json_body is not None:
            options["json"] = json_body
        slots = self._slot(service)
        await slots.acquire()
        self.in_flight += 1
        try:
            try:
                response = await client.request(method, url, **options)
            except (_newclient.ResponseNeverReceived, _newclient.RequestTransmissionFailed) as exc:
                if not _stale(exc) or not (method == "GET" or "Idempotency-Key" in headers):
                    raise
                # A pooled connection the server had closed meanwhile (it said nothing, so nothing was done):
                # once more, on a new connection. Only where a repeat is harmless: a GET, or a request the
                # receiver can recognise again by its Idempotency-Key.
                response = await self._client(service, fresh=True).request(method, url, **options)
            body_bytes = await _read_body(response, self.max_reply_bytes)
            reply_headers = {name.decode("latin-1").lower(): values[-1].decode("latin-1")
                             for name, values in response.headers.getAllRawHeaders()}
            return response.code, reply_headers, body_bytes
        finally:
            self.in_flight -= 1
            slots.release()

    def _reply(self, outcome: tuple[int, dict, bytes], method: str, service: str, shown: str,
               started: float) -> web.Reply:
        status, headers, body = outcome
        return web.reply_from_http(status, body, method=method, service=service, shown_path=shown,
                                   elapsed_ms=(self.clock.seconds() - started) * 1000, headers=headers)

    def _failed(self, failure: Failure, method: str, service: str, shown: str, started: float,
                expired_after: float | None) -> web.Reply:
        """``expired_after``: the timeout, when it is what ended the request (whatever the failure says)."""
        elapsed = (self.clock.seconds() - started) * 1000
        error = web.timed_out(expired_after) if expired_after is not None else _error_text(failure, elapsed / 1000)
        if error is None:
            log.warning("request failed unexpectedly: %s", failure.getErrorMessage(),
                        extra={"fields": {"service": service, "method": method, "path": shown}})
            error = f"request failed ({failure.type.__name__})"
        return web.Reply(0, 0, error, "", method, service, shown, elapsed)

    def _logged(self, reply: web.Reply, call_id: str | None) -> web.Reply:
        fields = {"call_id": call_id, "method": reply.method, "service": reply.service, "path": reply.path,
                  "status": reply.status, "ms": round(reply.elapsed_ms, 1), "error": reply.error or None}
        log.log(logging.INFO if reply.ok else logging.WARNING, "web request", extra={"fields": fields})
        return reply

    # --- per service ---------------------------------------------------------------------------------------
    def _client(self, service: str, fresh: bool = False) -> treq.client.HTTPClient:
        """The service's pooled client; ``fresh``: one that opens a new connection for each request."""
        key = f"{service}\0fresh" if fresh else service
        client = self._clients.get(key)
        if client is None:
            pool = HTTPConnectionPool(self.reactor, persistent=not fresh)
            pool.maxPersistentPerHost = self._limit(service)
            pool.cachedConnectionTimeout = IDLE_CONNECTION_S
            self._pools[key] = pool
            # Cookies are never kept: a session one caller's reply set must not reach another caller's request.
            jar = IndexableCookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
            client = treq.client.HTTPClient(Agent(self.reactor, pool=pool), cookiejar=jar)
            self._clients[key] = client
        return client

    def _slot(self, service: str) -> defer.DeferredSemaphore:
        slots = self._slots.get(service)
        if slots is None:
            slots = self._slots[service] = defer.DeferredSemaphore(self._limit(service))
        return slots

    def _limit(self, service: str) -> int:
        configured = self.services.get(service)
        return configured.max_concurrent if configured is not None else DEFAULT_MAX_CONCURRENT


def _join(base: str, path: str) -> str:
    """``base + path``, refused when the result would reach another host than the base's."""
    try:
        return web.join_url(base, path)
    except ValueError as exc:
        raise _OtherHost(str(exc)) from None


def _stale(exc: _newclient.ResponseFailed) -> bool:
    """Nothing came back because the connection was closed, not because the request was cancelled."""
    reasons = getattr(exc, "reasons", [])
    return bool(reasons) and all(reason.check(net_error.ConnectionDone, net_error.ConnectionLost)
                                 for reason in reasons)


def _error_text(failure: Failure, elapsed_s: float) -> str | None:
    """The short text a script sees for a request that got no usable reply; None for the unexpected."""
    if failure.check(_TooBig):
        return web.TOO_BIG
    if failure.check(_CutOff):
        return web.CUT_OFF
    if failure.check(_OtherHost):
        return "the service has no usable URL" if str(failure.value) == "no URL" else "path leaves the service's host"
    if failure.check(net_error.ConnectionRefusedError):
        return web.REFUSED
    if failure.check(net_error.DNSLookupError):
        return web.HOST_NOT_FOUND
    if failure.check(net_error.TimeoutError):
        return web.timed_out(round(elapsed_s, 1))
    if failure.check(net_error.ConnectError):
        return "cannot connect"
    if failure.check(_newclient.ResponseFailed, _newclient.RequestTransmissionFailed):
        reasons = getattr(failure.value, "reasons", [])
        if any(_is_tls(reason) for reason in reasons):
            return web.TLS_FAILED
        if failure.check(_newclient.ResponseNeverReceived, _newclient.RequestTransmissionFailed):
            return web.NO_REPLY
        return web.CUT_OFF
    if _is_tls(failure):
        return web.TLS_FAILED
    return None


def _is_tls(failure: Failure) -> bool:
    module = getattr(failure.type, "__module__", "") or ""
    return module.startswith("OpenSSL") or failure.type.__name__ == "SSLError"
