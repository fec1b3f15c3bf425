"""``ReactorWeb``: the engine's ``WebPort`` on the reactor (FastAGI server, campaigns through Asterisk).

``fetch``/``send`` go through the ``WebClient`` (non-blocking: a slow
service costs only the call that waits for it); ``notify`` goes into the
outbox, and the call's next statement runs once the row is committed.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from autocall.engine.web import Notice, NotifyFailed, WebRequest


class ReactorWeb:
    """``client``: a ``WebClient``; ``outbox``: an ``Outbox`` (None: a ``notify`` ends the call in error, since
    nothing could keep it)."""

    def __init__(self, client: Any, outbox: Any = None) -> None:
        self.client = client
        self.outbox = outbox

    def request(self, request: WebRequest) -> defer.Deferred:
        return self.client.request(request.service, request.method, request.path, script_url=request.script_url,
                                   query=request.query, json_body=request.body, timeout_s=request.timeout_s,
                                   shown_path=request.shown_path, call_id=request.call_id)

    def notify(self, notice: Notice) -> defer.Deferred:
        if self.outbox is None:
            return defer.fail(NotifyFailed("this process has no outbox"))
        queued = self.outbox.enqueue_notify(call_id=notice.call_id, service=notice.service, path=notice.path,
                                            body=notice.body, script_url=notice.script_url)
        return queued.addCallbacks(lambda _row: None, _not_queued)


def _not_queued(failure: Failure) -> None:
    raise NotifyFailed(failure.getErrorMessage())
