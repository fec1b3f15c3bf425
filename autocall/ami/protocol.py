"""The Asterisk Manager Interface as a pure state machine: bytes in, typed messages out; actions in, bytes out.

No I/O and no Twisted (h11's shape): feed what the socket gave to
``AmiConnection.receive_data``, take messages from ``next_event`` until it
returns ``NeedData``, and write what ``send`` returns. Facts relied on are
from traffic captured from Asterisk 22.10.1 (kept in ``tests/ami/transcripts``)
and Asterisk's ``main/manager.c``:

- the server speaks first, one banner line ``Asterisk Call Manager/11.0.0``;
- then messages of ``Key: Value`` lines ending in CRLF, a blank line ending
  each message; a message is a ``Response`` (first line ``Response:``) or an
  ``Event`` (first line ``Event:``). ``OriginateResponse`` is an event that
  also carries ``Response:`` and ``ActionID:`` keys: it is classified by its
  first line, never by the keys it contains;
- keys repeat (``Variable:``, ``Output:``) and compare case-insensitively;
- before Asterisk 14, ``Command`` answered ``Response: Follows``, then
  ``Privilege``/``ActionID`` lines, then free text (blank lines included)
  up to ``--END COMMAND--`` and a blank line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator, Mapping, Union

__all__ = [
    "ASTERISK_MAX_LINE", "Action", "AmiConnection", "Banner", "ConnectionClosed", "Event", "EventList", "EventListCollector",
    "Fields", "LocalProtocolError", "Message", "NeedData", "ProtocolError", "RemoteProtocolError", "Response",
    "DEFAULT_MAX_MESSAGE_SIZE", "encode_message", "escape_variable_value", "events", "login", "logoff",
    "originate", "ping",
]

DEFAULT_MAX_MESSAGE_SIZE = 1 << 20
"""Bytes one message (or the banner) may take before it is complete; more is the peer's fault."""

ASTERISK_MAX_LINE = 1024
"""Asterisk reads action lines into a 1025-byte buffer and discards the whole message past it (manager.c)."""

_ENCODING = "utf-8"
_ERRORS = "surrogateescape"  # bytes that are not UTF-8 survive a parse/serialise round trip
_REDACTED = "***"
# The names under which a value must never be shown (Login's Secret; Key is the MD5 challenge answer).
_SECRET_FIELDS = frozenset({"secret"})
_LOGIN_SECRET_FIELDS = frozenset({"secret", "key"})
_END_COMMAND = "--END COMMAND--"
_MESSAGE_END = re.compile(rb"\n\r?\n")          # end of a line, then an empty line
_FOLLOWS_END = re.compile(rb"--END COMMAND--\r?\n\r?\n")
_FOLLOWS_START = re.compile(rb"response:[ \t]*follows\r?\n", re.IGNORECASE)
_FOLLOWS_HEADERS = frozenset({"privilege", "actionid"})


class ProtocolError(Exception):
    """The AMI conversation cannot go on; the subclass says whose fault it is."""


class LocalProtocolError(ProtocolError):
    """We were about to send something AMI cannot carry (CR/LF in a value, a misplaced ActionID...)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something that is not AMI (bad banner, oversized or malformed message)."""


class NeedData:
    """Sentinel returned by ``next_event`` (the class itself, as h11 does): feed more bytes."""

    def __new__(cls):  # pragma: no cover - a sentinel, never instantiated
        raise TypeError("NeedData is a sentinel; compare with `is`")


class ConnectionClosed:
    """Sentinel returned by ``next_event`` once the peer closed and every complete message was taken."""

    def __new__(cls):  # pragma: no cover
        raise TypeError("ConnectionClosed is a sentinel; compare with `is`")


class Fields:
    """Ordered ``Key: Value`` pairs: duplicates kept, keys looked up case-insensitively, original case kept."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Iterable[tuple[str, object]] | Mapping[str, object] = ()) -> None:
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        self._pairs: tuple[tuple[str, str], ...] = tuple((str(key), _text(value)) for key, value in items)

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        return self._pairs

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value under ``key`` (any case), else ``default``."""
        folded = key.lower()
        for name, value in self._pairs:
            if name.lower() == folded:
                return value
        return default

    def get_all(self, key: str) -> list[str]:
        """Every value under ``key`` (any case), in order: ``Variable:``, ``Output:``..."""
        folded = key.lower()
        return [value for name, value in self._pairs if name.lower() == folded]

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fields) and other._pairs == self._pairs

    def __hash__(self) -> int:
        return hash(self._pairs)

    def __repr__(self) -> str:
        shown = [(key, _REDACTED if key.lower() in _SECRET_FIELDS else value) for key, value in self._pairs]
        return f"Fields({shown!r})"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Banner:
    """The line the server sends first; ``version`` is the protocol version after the slash (``11.0.0``)."""

    version: str
    text: str


@dataclass(frozen=True)
class Response:
    """The reply to one action. ``status``: ``Success``, ``Error``, ``Follows``, ``Goodbye``...

    ``fields`` holds every line as sent (``Response`` and ``ActionID`` included);
    ``output`` the free text of a legacy ``Response: Follows`` (and any line
    without a colon, which Asterisk should not send otherwise).
    """

    action_id: str | None
    status: str
    message: str | None
    fields: Fields
    output: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Asterisk accepted the action (``Success``, or ``Follows`` for legacy command output)."""
        return self.status.lower() in ("success", "follows")

    @property
    def starts_event_list(self) -> bool:
        """``EventList: start``: events carrying this ActionID follow, up to ``EventList: Complete``."""
        return (self.fields.get("EventList") or "").lower() == "start"


@dataclass(frozen=True)
class Event:
    """An unsolicited message; ``action_id`` is set on ``OriginateResponse`` and on event-list items."""

    name: str
    action_id: str | None
    fields: Fields
    output: tuple[str, ...] = ()

    @property
    def completes_event_list(self) -> bool:
        return (self.fields.get("EventList") or "").lower() == "complete"


Message = Union[Response, Event]


@dataclass(frozen=True)
class EventList:
    """What a list action (``Status``, ``CoreShowChannels``...) returned: the response, its events, the closing event."""

    response: Response
    events: tuple[Event, ...]
    complete: Event | None


class EventListCollector:
    """Gathers the events that follow a ``Response`` with ``EventList: start``, by ActionID."""

    def __init__(self, response: Response) -> None:
        self.response = response
        self._events: list[Event] = []
        self._complete: Event | None = None

    def add(self, event: Event) -> bool:
        """Take one event of this list; True once the ``EventList: Complete`` event has come."""
        if event.action_id != self.response.action_id:
            raise LocalProtocolError(f"event {event.name} belongs to ActionID {event.action_id!r}, "
                                     f"not to {self.response.action_id!r}")
        if event.completes_event_list:
            self._complete = event
            return True
        self._events.append(event)
        return False

    @property
    def done(self) -> bool:
        return self._complete is not None or not self.response.starts_event_list

    def result(self) -> EventList:
        return EventList(self.response, tuple(self._events), self._complete)


@dataclass(frozen=True)
class Action:
    """One request: ``name`` (the ``Action:`` line), ordered ``fields``, and the ``ActionID`` (None: no id line).

    ``repr``/``str`` mask secrets, so an action can be logged or shown in an
    assertion without leaking the AMI password.
    """

    name: str
    fields: Fields = field(default_factory=Fields)
    action_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.fields, Fields):
            object.__setattr__(self, "fields", Fields(self.fields))

    def with_action_id(self, action_id: str) -> Action:
        return replace(self, action_id=action_id)

    def redacted_pairs(self) -> list[tuple[str, str]]:
        hidden = _LOGIN_SECRET_FIELDS if self.name.lower() == "login" else _SECRET_FIELDS
        return [(key, _REDACTED if key.lower() in hidden else value) for key, value in self.fields]

    def __repr__(self) -> str:
        return f"Action(name={self.name!r}, fields={self.redacted_pairs()!r}, action_id={self.action_id!r})"

    __str__ = __repr__


def _check_line(key: str, value: str) -> None:
    if not key or key != key.strip() or ":" in key or any(c in key for c in "\r\n"):
        raise LocalProtocolError(f"{key!r} cannot be an AMI key (empty, colon, line break or edge spaces)")
    if "\r" in value or "\n" in value:
        # A line break would end the line early and let the rest pass for another header
        # (e.g. a number "1\r\nAction: Hangup"): refuse it rather than send it.
        raise LocalProtocolError(f"the value of {key} contains a line break; AMI values are one line")


def encode_message(pairs: Iterable[tuple[str, str]]) -> bytes:
    """``Key: Value`` lines with CRLF and the closing blank line; refuses what AMI cannot carry."""
    lines = []
    for key, value in pairs:
        _check_line(key, value)
        lines.append(f"{key}: {value}\r\n")
    if not lines:
        raise LocalProtocolError("an AMI message needs at least one line")
    return ("".join(lines) + "\r\n").encode(_ENCODING, _ERRORS)


def _action_pairs(action: Action) -> list[tuple[str, str]]:
    if not action.name:
        raise LocalProtocolError("an action needs a name")
    for key, _ in action.fields:
        if key.lower() in ("action", "actionid"):
            # Two ActionID lines make Asterisk pick one unpredictably (Nami #24): one place only.
            raise LocalProtocolError(f"{key} is set by Action(name=..., action_id=...), not in the fields")
    pairs = [("Action", action.name)]
    if action.action_id is not None:
        pairs.append(("ActionID", action.action_id))
    return pairs + list(action.fields)


class AmiConnection:
    """One AMI session, client side: ``receive_data``/``next_event`` to read, ``send`` to write."""

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_message_size = max_message_size
        self.banner: Banner | None = None
        self._buffer = bytearray()
        self._start = 0            # first byte not yet consumed
        self._scanned = 0          # where the search for the end of the current message resumes
        self._closed = False
        self._error: RemoteProtocolError | None = None

    # -- reading -------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` means the peer closed the connection."""
        if self._closed and data:
            raise LocalProtocolError("data received after the connection was closed")
        if not data:
            self._closed = True
            return
        if self._start:
            del self._buffer[:self._start]
            self._scanned -= self._start
            self._start = 0
        self._buffer += data

    def next_event(self) -> Banner | Response | Event | type[NeedData] | type[ConnectionClosed]:
        """The next complete item, ``NeedData`` if more bytes are needed, ``ConnectionClosed`` at the end."""
        if self._error is not None:
            raise self._error
        try:
            item = self._banner() if self.banner is None else self._message()
        except RemoteProtocolError as exc:
            self._error = exc
            raise
        if item is NeedData and self._closed:
            rest = bytes(self._buffer[self._start:])
            if rest.strip():
                self._error = RemoteProtocolError(
                    f"connection closed in the middle of a message ({len(rest)} bytes unfinished)")
                raise self._error
            return ConnectionClosed
        return item

    def _banner(self) -> Banner | type[NeedData]:
        end = self._buffer.find(b"\n", self._start)
        if end < 0:
            self._check_size(len(self._buffer) - self._start, "the banner line")
            return NeedData
        text = self._buffer[self._start:end].decode(_ENCODING, _ERRORS).rstrip("\r")
        self._consume(end + 1)
        if "Call Manager/" not in text:
            raise RemoteProtocolError(f"not an Asterisk Manager: it greeted with {text[:80]!r}")
        self.banner = Banner(version=text.rsplit("/", 1)[1].strip(), text=text)
        return self.banner

    def _message(self) -> Response | Event | type[NeedData]:
        # Blank lines between messages carry nothing; skip them (a lone "\r" may be half of one).
        while True:
            if self._buffer.startswith(b"\r\n", self._start):
                self._consume(self._start + 2)
            elif self._buffer.startswith(b"\n", self._start):
                self._consume(self._start + 1)
            else:
                break
        if len(self._buffer) - self._start < 2:
            return NeedData
        first_line_end = self._buffer.find(b"\n", self._start)
        if first_line_end < 0:
            self._check_size(len(self._buffer) - self._start, "a message")
            return NeedData
        follows = _FOLLOWS_START.match(self._buffer, self._start) is not None
        pattern = _FOLLOWS_END if follows else _MESSAGE_END
        match = pattern.search(self._buffer, max(self._start, self._scanned))
        if match is None:
            self._check_size(len(self._buffer) - self._start, "a message")
            # Resume a few bytes back next time: the terminator may straddle two reads.
            self._scanned = max(self._start, len(self._buffer) - len(_END_COMMAND) - 4)
            return NeedData
        block = self._buffer[self._start:match.end()].decode(_ENCODING, _ERRORS)
        self._consume(match.end())
        self._check_size(len(block), "a message")
        lines = [line.rstrip("\r") for line in block.split("\n")]
        return _parse_follows(lines) if follows else _classify(*_split_lines(lines))

    def _consume(self, end: int) -> None:
        self._start = end
        self._scanned = end

    def _check_size(self, size: int, what: str) -> None:
        if size > self.max_message_size:
            raise RemoteProtocolError(f"{what} is longer than {self.max_message_size} bytes")

    # -- writing -------------------------------------------------------------------------
    def send(self, action: Action) -> bytes:
        """The bytes of ``action``: ``Action:``, then ``ActionID:``, then the fields in order, CRLF framed."""
        data = encode_message(_action_pairs(action))
        for line in data.split(b"\r\n"):
            if len(line) + 2 > ASTERISK_MAX_LINE:
                key = line.split(b":", 1)[0].decode(_ENCODING, "replace")
                raise LocalProtocolError(f"the {key} line is {len(line) + 2} bytes; Asterisk drops any action "
                                         f"with a line over {ASTERISK_MAX_LINE}")
        return data


def _split_lines(lines: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    pairs: list[tuple[str, str]] = []
    output: list[str] = []
    for line in lines:
        if not line:
            continue
        key, colon, value = line.partition(":")
        if not colon or not key.strip():
            output.append(line)
            continue
        # Asterisk writes "Key: Value"; exactly one space is the separator, the rest is the value.
        pairs.append((key, value[1:] if value.startswith(" ") else value))
    return pairs, output


def _classify(pairs: list[tuple[str, str]], output: list[str]) -> Response | Event:
    if not pairs:
        raise RemoteProtocolError(f"a message without any 'Key: Value' line: {output[:1]!r}")
    fields = Fields(pairs)
    first = pairs[0][0].lower()
    if first == "event" or (first != "response" and "Event" in fields):
        return Event(name=fields["Event"], action_id=fields.get("ActionID"), fields=fields, output=tuple(output))
    if first == "response" or "Response" in fields:
        return Response(action_id=fields.get("ActionID"), status=fields["Response"], message=fields.get("Message"),
                        fields=fields, output=tuple(output))
    raise RemoteProtocolError(f"a message that is neither a Response nor an Event (starts with {pairs[0][0]!r})")


def _parse_follows(lines: list[str]) -> Response:
    """Legacy ``Response: Follows`` (Asterisk < 14 ``Command``): headers, free text, ``--END COMMAND--``."""
    while lines and not lines[-1]:
        lines.pop()
    last = lines.pop()                               # "...--END COMMAND--", text may share its line
    head = last[:-len(_END_COMMAND)]
    status_key, _, status = lines[0].partition(":")
    pairs = [(status_key, status.strip())]
    index = 1
    while index < len(lines):
        key, colon, value = lines[index].partition(":")
        if not colon or key.lower() not in _FOLLOWS_HEADERS:
            break
        pairs.append((key, value[1:] if value.startswith(" ") else value))
        index += 1
    output = lines[index:] + ([head] if head else [])
    fields = Fields(pairs)
    return Response(action_id=fields.get("ActionID"), status="Follows", message=fields.get("Message"),
                    fields=fields, output=tuple(output))


# -- actions -------------------------------------------------------------------------------
def login(username: str, secret: str, events: str | None = "call", action_id: str | None = None) -> Action:
    """``Login`` with a plain secret; ``events`` (``on``, ``off``, ``call,agi``...) limits the event flood.

    The returned action's ``repr`` masks the secret.
    """
    fields: list[tuple[str, str]] = [("Username", username), ("Secret", secret)]
    if events is not None:
        fields.append(("Events", events))
    return Action("Login", Fields(fields), action_id)


def logoff(action_id: str | None = None) -> Action:
    """``Logoff``: Asterisk answers ``Response: Goodbye`` and closes the connection."""
    return Action("Logoff", Fields(), action_id)


def ping(action_id: str | None = None) -> Action:
    """``Ping``: Asterisk answers ``Response: Success`` with ``Ping: Pong`` and a ``Timestamp``."""
    return Action("Ping", Fields(), action_id)


def events(mask: str, action_id: str | None = None) -> Action:
    """``Events``: change which event classes this session receives (``on``, ``off``, ``call,agi``)."""
    return Action("Events", Fields([("EventMask", mask)]), action_id)


_VARIABLE_NAME = re.compile(r"^[A-Za-z0-9_()\-.]+$")


def escape_variable_value(value: str) -> str:
    """Quote a value for one ``Variable: NAME=value`` line.

    Asterisk splits each ``Variable:`` header at commas, honouring double
    quotes and backslash escapes, which it removes (``man_do_variable_value``
    with ``AST_STANDARD_APP_ARGS``). A backslash before ``\\``, ``"`` and ``,``
    makes the value arrive exactly as given.
    """
    return re.sub(r'([\\",])', r"\\\1", value)


def originate(channel: str, *, action_id: str | None = None,
              context: str | None = None, exten: str | None = None, priority: int | str | None = None,
              application: str | None = None, data: str | None = None,
              timeout_ms: int | None = None, caller_id: str | None = None,
              variables: Iterable[tuple[str, str]] | Mapping[str, str] = (),
              account: str | None = None, channel_id: str | None = None, async_: bool = True,
              extra: Iterable[tuple[str, str]] = ()) -> Action:
    """``Originate``: dial ``channel``; once answered, run ``context,exten,priority`` or ``application(data)``.

    Field order follows the captured transcripts (Channel, Async, Timeout,
    CallerID, Context/Exten/Priority or Application/Data, one ``Variable`` line
    per variable). ``Async: true`` makes Asterisk reply at once
    ("Originate successfully queued") and report the call later in an
    ``OriginateResponse`` event with the same ActionID.
    """
    if not channel or "/" not in channel:
        raise LocalProtocolError(f"Originate needs a channel such as PJSIP/100@trunk, not {channel!r}")
    dialplan = context is not None or exten is not None
    if dialplan == (application is not None):
        raise LocalProtocolError("Originate needs either context/exten/priority or application/data, not both")
    if data is not None and application is None:
        raise LocalProtocolError("Originate data is for an application; give application= too")
    fields: list[tuple[str, str]] = [("Channel", channel)]
    if async_:
        fields.append(("Async", "true"))
    if timeout_ms is not None:
        if int(timeout_ms) <= 0:
            raise LocalProtocolError(f"Originate timeout must be positive milliseconds, not {timeout_ms!r}")
        fields.append(("Timeout", str(int(timeout_ms))))
    if caller_id:
        fields.append(("CallerID", caller_id))
    if dialplan:
        if not context or not exten:
            raise LocalProtocolError("Originate to the dialplan needs both context and exten")
        fields += [("Context", context), ("Exten", exten), ("Priority", str(1 if priority is None else priority))]
    else:
        fields.append(("Application", application))
        if data is not None:
            fields.append(("Data", data))
    if account:
        fields.append(("Account", account))
    if channel_id:
        fields.append(("ChannelId", channel_id))
    items = variables.items() if isinstance(variables, Mapping) else variables
    for name, value in items:
        if not _VARIABLE_NAME.match(name):
            raise LocalProtocolError(f"{name!r} is not a channel variable name (letters, digits, _ . - ( ))")
        fields.append(("Variable", f"{name}={escape_variable_value(_text(value))}"))
    fields += list(extra)
    return Action("Originate", Fields(fields), action_id)
