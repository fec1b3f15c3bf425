"""Web services in the simulator and scenario tests: canned replies (``--http FILE.toml``, ``[[scenario.reply]]``).

A request is answered by the first canned reply that matches its service,
method and path (exact ``path`` or ``path_prefix``); none matching is
status 0 with ``no reply for GET crm /accounts/5550100``. A reply may come
late (``delay``: past the statement's timeout it is a timeout) or not at all
(``error``: status 0 with that text). Time passes on the simulated clock.
Nothing here touches the network.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from typing import Any

from autocall.durations import parse_duration_ms
from autocall.engine import web as W
from autocall.errors import UserError
from autocall.suggest import suggest

REPLY_KEYS = ("service", "method", "path", "path_prefix", "status", "json", "body", "delay", "error")
METHODS = ("GET", "POST")


@dataclass(frozen=True)
class CannedReply:
    """One ``[[reply]]`` table."""

    service: str
    method: str | None = None
    path: str | None = None
    path_prefix: str | None = None
    status: int = 200
    body: bytes = b""
    delay_ms: int = 0
    error: str | None = None

    def matches(self, request: W.WebRequest) -> bool:
        if self.service != request.service or (self.method is not None and self.method != request.method):
            return False
        # Matched against the path as the service would see it, and as written with secrets masked.
        if self.path is not None:
            return self.path in (request.path, request.shown_path)
        if self.path_prefix is not None:
            return request.path.startswith(self.path_prefix) or request.shown_path.startswith(self.path_prefix)
        return True


def parse_replies(tables: Any, origin: str) -> list[CannedReply]:
    """``[[reply]]`` tables (a list of dicts read from TOML) as canned replies; ``UserError`` naming ``origin``
    and the reply (1-based) for anything malformed."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise UserError(f"{origin}: replies are [[reply]] tables")
    return [_reply(table, f"{origin}: reply {number}") for number, table in enumerate(tables, start=1)]


def _reply(table: dict, where: str) -> CannedReply:
    for key in table:
        if key not in REPLY_KEYS:
            raise UserError(f"{where}: unknown key '{key}'" + (suggest(key, REPLY_KEYS)
                            or f" (keys: {', '.join(REPLY_KEYS)})"))
    service = table.get("service")
    if not isinstance(service, str) or not service:
        raise UserError(f"{where}: 'service' is missing (the script's service name, e.g. service = \"crm\")")
    method = table.get("method")
    if method is not None:
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise UserError(f"{where}: method = {method!r}; write \"GET\" (fetch) or \"POST\" (send)")
        method = method.upper()
    path, prefix = table.get("path"), table.get("path_prefix")
    if path is not None and prefix is not None:
        raise UserError(f"{where}: give 'path' or 'path_prefix', not both")
    for key, value in (("path", path), ("path_prefix", prefix)):
        if value is not None and (not isinstance(value, str) or not value.startswith("/")):
            raise UserError(f"{where}: {key} = {value!r}; a path starts with '/', e.g. \"/accounts/5550100\"")
    status = table.get("status", 200)
    if type(status) is not int or not 100 <= status <= 599:
        raise UserError(f"{where}: status = {status!r}; an HTTP status is a number from 100 to 599")
    if "json" in table and "body" in table:
        raise UserError(f"{where}: give 'json' or 'body', not both")
    if "json" in table:
        body = json.dumps(table["json"], ensure_ascii=False, default=str).encode("utf-8")
    else:
        raw = table.get("body", "")
        if not isinstance(raw, str):
            raise UserError(f"{where}: body is text (use json = {{...}} for a JSON reply)")
        body = raw.encode("utf-8")
    delay_ms = 0
    if "delay" in table:
        delay_ms = parse_duration_ms(str(table["delay"]), f"{where}: delay")
    error = table.get("error")
    if error is not None and (not isinstance(error, str) or not error.strip()):
        raise UserError(f"{where}: error is the text of the failure, e.g. error = \"connection refused\"")
    return CannedReply(service, method, path, prefix, status, body, delay_ms, error)


def load_replies(path: str) -> list[CannedReply]:
    """The ``[[reply]]`` tables of an ``--http`` file."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (--http takes a TOML file of [[reply]] tables, or 'live')") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    unknown = [key for key in data if key != "reply"]
    if unknown:
        raise UserError(f"{path}: unknown table '{unknown[0]}' (write replies as [[reply]] tables)")
    return parse_replies(data.get("reply", []), path)


class CannedWeb:
    """The simulator's ``WebPort``: answers from canned replies, moving ``clock`` (a ``SimClock``) by their delay."""

    def __init__(self, replies: list[CannedReply], clock) -> None:
        self.replies = list(replies)
        self.clock = clock

    async def request(self, request: W.WebRequest) -> W.Reply:
        return self.answer(request)

    def answer(self, request: W.WebRequest) -> W.Reply:
        method, service, shown = request.method, request.service, request.shown_path
        canned = next((reply for reply in self.replies if reply.matches(request)), None)
        if canned is None:
            return W.unanswered(request)
        timeout_ms = int(request.timeout_s * 1000)
        if canned.delay_ms >= timeout_ms > 0:
            self.clock.advance(timeout_ms)
            return W.Reply(0, 0, W.timed_out(request.timeout_s), "", method, service, shown, float(timeout_ms))
        self.clock.advance(canned.delay_ms)
        if canned.error is not None:
            return W.Reply(0, 0, canned.error, "", method, service, shown, float(canned.delay_ms))
        if len(canned.body) > W.MAX_REPLY_BYTES:
            return W.Reply(0, canned.status, W.TOO_BIG, "", method, service, shown, float(canned.delay_ms))
        return W.reply_from_http(canned.status, canned.body, method=method, service=service, shown_path=shown,
                                 elapsed_ms=float(canned.delay_ms))

    async def notify(self, notice: W.Notice) -> None:
        return None        # the engine lists it in the call's record; the simulator never queues
