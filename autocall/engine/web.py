"""A script's web requests, without I/O: the path built from a template, the reply as a value, its texts.

The FastAGI server and campaigns perform requests with ``autocall.web.client``;
the simulator answers them from canned replies. Both give a ``Reply``, and
both build the path with ``build_path``, so a value can never change the
host or climb out of the service's path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Protocol, Sequence
from urllib.parse import quote, urlsplit

from autocall.engine.json_paths import as_value, count_items, lookup, split_path

Value = str | int

SECRET_MASK = "***"
MAX_REPLY_BYTES = 1_048_576
REPLY_FIELDS = ("ok", "status", "error", "data")

# The error texts a script sees in NAME.error (the spec words the first five).
REFUSED = "connection refused"
NOT_JSON = "reply is not JSON"
TOO_BIG = "reply over 1 MB"
HOST_NOT_FOUND = "host not found"
CUT_OFF = "connection closed before the reply was complete"
NO_REPLY = "connection closed without a reply"
TLS_FAILED = "secure connection failed"


def timed_out(timeout_s: float) -> str:
    """``timeout after 3s`` (``2.5s``, ``0.5s``)."""
    return f"timeout after {format_seconds(timeout_s)}"


def http_error(status: int) -> str:
    return f"HTTP {status}"


def format_seconds(seconds: float) -> str:
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


def encode_segment(value: Value) -> str:
    """A value as exactly one path segment: every byte but unreserved ones percent-encoded; ``.`` and
    ``..`` (which a server would resolve) as ``%2E`` and ``%2E%2E``."""
    text = value if isinstance(value, str) else str(value)
    if text == ".":
        return "%2E"
    if text == "..":
        return "%2E%2E"
    return quote(text, safe="")


def build_path(literals: Sequence[str], values: Sequence[Value], *,
               is_secret: Callable[[Value], bool] = lambda value: False) -> tuple[str, str]:
    """``literals[0] + segment(values[0]) + literals[1] + ...``: ``(path, shown)``.

    ``literals`` are the template's text between its ``{...}`` (one more than
    ``values``); ``shown`` is the path for logs and records, with ``***``
    for each value ``is_secret`` says is secret.
    """
    if len(literals) != len(values) + 1:
        raise ValueError("build_path needs one more literal part than values")
    path, shown = [literals[0]], [literals[0]]
    for value, literal in zip(values, literals[1:]):
        path.append(encode_segment(value))
        shown.append(SECRET_MASK if is_secret(value) else encode_segment(value))
        path.append(literal)
        shown.append(literal)
    return "".join(path), "".join(shown)


def join_url(base: str, path: str) -> str:
    """``base + path``; ``ValueError`` when there is no base (``"no URL"``) or the result would reach another
    host, scheme or path than the base's."""
    if not base:
        raise ValueError("no URL")
    if not path.startswith("/"):
        raise ValueError(path)            # "@host/..." would change the host; the compiler refuses it too
    url = base + path
    want, got = urlsplit(base), urlsplit(url)
    if (want.scheme, want.netloc) != (got.scheme, got.netloc) or not got.path.startswith(want.path):
        raise ValueError(url)
    return url


def split_template(template: str) -> tuple[list[str], list[str]]:
    """``"/a/{x}/b{y}"`` -> ``(["/a/", "/b", ""], ["x", "y"])``: a path template's literals and names."""
    literals, names = [], []
    rest = template
    while True:
        start = rest.find("{")
        end = rest.find("}", start + 1) if start >= 0 else -1
        if start < 0 or end < 0:
            literals.append(rest)
            return literals, names
        literals.append(rest[:start])
        names.append(rest[start + 1:end].strip())
        rest = rest[end + 1:]


@dataclass(frozen=True)
class Reply:
    """What a ``fetch``/``send`` gave: ``ok`` 1 for a 2xx with a JSON or empty body, ``status`` (0 when
    nothing came back), ``error`` (``""`` when ok), ``data`` (the JSON value, ``""`` when none).

    ``method``, ``service``, ``path`` (secret values masked) and ``elapsed_ms`` describe the request for
    the call's record and log.
    """

    ok: int
    status: int
    error: str
    data: Any = ""
    method: str = ""
    service: str = ""
    path: str = ""
    elapsed_ms: float = 0.0
    headers: dict = field(default_factory=dict, repr=False, compare=False)   # reply headers, lower-case names

    def read(self, path: str | Iterable[str]) -> Value:
        """``NAME.ok``/``status``/``error``, or ``NAME.data...``: the value at ``path`` (``""`` when none)."""
        segments = split_path(path)
        if not segments:
            return ""
        head, rest = segments[0], segments[1:]
        if head == "data":
            return as_value(lookup(self.data, rest))
        if rest or head not in REPLY_FIELDS:
            return ""
        return getattr(self, head)

    def count(self, path: str | Iterable[str]) -> int | None:
        """``len(NAME.data...)`` of an object or list: its items; None for other values."""
        segments = split_path(path)
        if not segments or segments[0] != "data":
            return None
        return count_items(lookup(self.data, segments[1:]))

    def entry(self) -> dict:
        """The request as the call's record and log keep it (never a header or a body)."""
        return {"method": self.method, "service": self.service, "path": self.path, "status": self.status,
                "ok": self.ok, "error": self.error, "ms": round(self.elapsed_ms, 1)}




# The value of a fetch/send target before its statement has run: every field reads "".
NOT_YET = Reply("", "", "", "")


def no_reply(method: str, service: str, path: str) -> str:
    """What a request gets where nothing answers it (the simulator without a matching canned reply)."""
    return f"no reply for {method} {service} {path}"


def reply_from_http(status: int, body: bytes, *, method: str, service: str, shown_path: str,
                    elapsed_ms: float, headers: dict | None = None) -> Reply:
    """The ``Reply`` of an HTTP answer: ok for a 2xx with a JSON or empty body (every client says it so)."""
    from autocall.engine.json_paths import parse_json
    try:
        data = parse_json(body)
        parsed = True
    except ValueError:
        data, parsed = "", False
    if 200 <= status < 300:
        ok, error = (1, "") if parsed else (0, NOT_JSON)
    else:
        ok, error = 0, http_error(status)
    return Reply(ok, status, error, data, method, service, shown_path, elapsed_ms, headers or {})


@dataclass(frozen=True)
class WebRequest:
    """One ``fetch`` (GET, ``query``) or ``send`` (POST, ``body``) as the engine asks a ``WebPort`` for it.

    ``path`` is encoded (``build_path``); ``shown_path``, ``shown_query`` and ``shown_body`` have the
    values of secret gathers as ``***`` (for logs, records and ``simulate`` output).
    """

    service: str
    method: str
    path: str
    shown_path: str
    script_url: str
    timeout_s: float
    call_id: str
    query: dict | None = None
    body: dict | None = None
    shown_query: dict | None = None
    shown_body: dict | None = None


@dataclass(frozen=True)
class Notice:
    """One ``notify``: queued (durably) by the ``WebPort`` before the call goes on."""

    service: str
    path: str
    script_url: str
    body: dict
    call_id: str


class NotifyFailed(Exception):
    """A ``notify`` could not be queued (the database refused it): the call ends in error, nothing is lost
    silently."""


class WebPort(Protocol):
    """How a call reaches the business's services; each runtime gives the engine one.

    ``request`` returns an awaitable of a ``Reply`` and never fails (a service that is down is a
    ``Reply`` with ok 0); ``notify`` returns an awaitable that completes once the notice is queued,
    or fails with ``NotifyFailed``.
    """

    def request(self, request: WebRequest) -> Awaitable[Reply]: ...

    def notify(self, notice: Notice) -> Awaitable[None]: ...


def unanswered(request: WebRequest) -> Reply:
    """The reply of a request nothing answers: status 0, ``no reply for GET crm /accounts/5550100``."""
    return Reply(0, 0, no_reply(request.method, request.service, request.shown_path), "", request.method,
                 request.service, request.shown_path, 0.0)


class NoWeb:
    """The port of a runtime with no services: every request is unanswered, every notice dropped
    (the engine still lists it in the call's record)."""

    async def request(self, request: WebRequest) -> Reply:
        return unanswered(request)

    async def notify(self, notice: Notice) -> None:
        return None
