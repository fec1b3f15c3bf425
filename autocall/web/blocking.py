"""``BlockingWeb``: real requests to the configured services without the reactor (``simulate --http live``).

The same rules as ``WebClient`` (only the service's host, no redirects, no
cookies, a 1 MB reply limit, the timeout, headers from the configuration,
the same error texts) for a process that runs one call at a time, where
waiting in place costs no other call.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import json
from typing import Mapping
from urllib.parse import urlencode, urlsplit

from autocall import __version__
from autocall.engine import web as W
from autocall.services_config import ServiceConfig

USER_AGENT = f"AutoCall/{__version__}"


class BlockingWeb:
    """A ``WebPort`` sending each request at once and waiting for it; ``clock`` (a ``SimClock``, optional)
    is moved by the time each request took."""

    def __init__(self, services: Mapping[str, ServiceConfig] | None = None, clock=None) -> None:
        self.services = dict(services or {})
        self.clock = clock

    async def request(self, request: W.WebRequest) -> W.Reply:
        return self.send(request)

    async def notify(self, notice: W.Notice) -> None:
        return None        # listed in the call's record; only a process with an outbox queues it

    def send(self, request: W.WebRequest) -> W.Reply:
        started = time.monotonic()
        method, service, shown = request.method, request.service, request.shown_path
        configured = self.services.get(service)
        base = ((configured.url if configured and configured.url else request.script_url) or "").rstrip("/")

        def failed(error: str) -> W.Reply:
            return W.Reply(0, 0, error, "", method, service, shown, self._elapsed(started))

        try:
            url = W.join_url(base, request.path)
        except ValueError as exc:
            return failed("the service has no usable URL" if str(exc) == "no URL" else "path leaves the service's host")
        parts = urlsplit(url)
        target = parts.path + ("?" + urlencode(request.query) if request.query else "")
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if configured is not None:
            headers.update(configured.header_values())
        payload = None
        if request.body is not None:
            payload = json.dumps(request.body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(parts.hostname, parts.port, timeout=request.timeout_s)
        try:
            connection.request(method, target, body=payload, headers=headers)
            response = connection.getresponse()
            length = response.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) > W.MAX_REPLY_BYTES:
                return failed(W.TOO_BIG)
            body = response.read(W.MAX_REPLY_BYTES + 1)
            if len(body) > W.MAX_REPLY_BYTES:
                return failed(W.TOO_BIG)
            reply_headers = {name.lower(): value for name, value in response.getheaders()}
            return W.reply_from_http(response.status, body, method=method, service=service, shown_path=shown,
                                     elapsed_ms=self._elapsed(started), headers=reply_headers)
        except (socket.timeout, TimeoutError):
            return failed(W.timed_out(request.timeout_s))
        except ConnectionRefusedError:
            return failed(W.REFUSED)
        except socket.gaierror:
            return failed(W.HOST_NOT_FOUND)
        except ssl.SSLError:
            return failed(W.TLS_FAILED)
        except http.client.IncompleteRead:
            return failed(W.CUT_OFF)
        except (http.client.RemoteDisconnected, http.client.BadStatusLine):
            return failed(W.NO_REPLY)
        except OSError:
            return failed("cannot connect")
        finally:
            connection.close()

    def _elapsed(self, started: float) -> float:
        elapsed = (time.monotonic() - started) * 1000
        if self.clock is not None:
            self.clock.advance(int(elapsed))
        return elapsed
