"""The AGI protocol as a pure state machine: bytes in, typed events out; commands in, bytes out.

No I/O and no Twisted, in the manner of h11: feed what the socket gave with
``receive_data``, take events with ``next_event`` until it returns
``NeedData``, and turn a command into the bytes to write with ``send``.
Everything here is written from what Asterisk 22 actually sends (a session
captured from it is kept in ``tests/agi/transcripts/agi-probe-session.log``):

- the environment: ``agi_key: value`` lines, then a blank line;
- replies: ``200 result=N [(data)] [endpos=N]``, ``510 ...``, ``511 ...``,
  and the multi-line ``520-`` ... ``520 End of proper usage.``;
- the unprompted ``HANGUP`` line, sent once after the channel hangs up,
  between replies, never inside one.

Errors say whose fault they are: ``LocalProtocolError`` is our misuse (a
command built wrong, sent at the wrong time); ``RemoteProtocolError`` is a
peer that does not speak AGI (garbage, a reply nobody asked for, an endless
line). After a ``RemoteProtocolError`` the connection is in ``State.ERROR``
and must be dropped.
"""

from __future__ import annotations

import enum
import functools
import math
import re
import sys
from dataclasses import dataclass, field
from operator import itemgetter
from urllib.parse import parse_qsl, unquote

from autocall.agi import fastpaths
from autocall.engine.channel import ALL_KEYS

DTMF_KEYS = frozenset(ALL_KEYS)
DEFAULT_MAX_LINE_LENGTH = 16_384
# res_agi.c reads a command into ``char buf[AGI_BUF_LEN]`` (2048, NUL included)
# and splits it into at most MAX_ARGS (128) words; longer lines are cut.
MAX_COMMAND_BYTES = 2047
MAX_COMMAND_WORDS = 127
# A 520 usage text is a few lines; a peer sending thousands is not Asterisk.
MAX_USAGE_LINES = 1000
# A result is a C int, or GET DATA's digits (at most its max digits): a longer token is not Asterisk's,
# and turning thousands of digits into an int would stall the reactor (or raise, past 4,300 digits).
MAX_RESULT_CHARS = 256
_INT_CHARS = 20
# Asterisk sends about 25 fields and one per AGI() argument (at most 127 words): anything far past that
# is a peer filling the server's memory.
MAX_ENV_FIELDS = 512
MAX_ENV_BYTES = 256 * 1024
# How long a command may legitimately take, beyond the margin every command gets: a prompt plays at
# most as long as the longest sound `check` accepts (autocall.audio.probe.MAX_PROMPT_SECONDS).
MAX_SOUND_MS = 600_000
UNBOUNDED = None            # Dial (a bridged call) and applications: only max_call_duration bounds them


class AgiProtocolError(Exception):
    """Base of the two protocol errors; the message says what went wrong."""


class LocalProtocolError(AgiProtocolError):
    """Our side misused the protocol: a malformed command, or one sent out of turn."""


class RemoteProtocolError(AgiProtocolError):
    """The peer (Asterisk, or whatever connected) sent something that is not AGI."""


class State(enum.Enum):
    """Where the conversation is. Transitions live in ``_TRANSITIONS``."""

    ENVIRONMENT = "reading the environment"
    IDLE = "idle"
    AWAITING_REPLY = "awaiting a reply"
    USAGE = "reading a 520 usage reply"
    ERROR = "failed"

    # Enum's own __hash__ is Python code; members are singletons, so identity will do
    # (the transition table is looked up for every line).
    __hash__ = object.__hash__


# The states as module globals: the hot paths below compare with these (a global is cheaper than an
# Enum attribute).
_ENVIRONMENT, _IDLE, _AWAITING, _USAGE, _ERROR = (State.ENVIRONMENT, State.IDLE, State.AWAITING_REPLY,
                                                  State.USAGE, State.ERROR)


class NeedData:
    """Sentinel returned by ``next_event``: no complete event is buffered (h11's NEED_DATA)."""

    def __init__(self) -> None:  # pragma: no cover - a sentinel, never instantiated
        raise TypeError("NeedData is a sentinel; compare with `is NeedData`")


def _field(key: str, doc: str | None = None) -> property:
    return property(lambda self: self.fields.get(key, ""), doc=doc or f"``{key}`` ('' when absent).")


@dataclass(frozen=True, slots=True)
class Environment:
    """The ``agi_*`` block Asterisk sends first; ``fields`` keeps every key as sent (``agi_`` included)."""

    fields: dict[str, str]

    def get(self, key: str, default: str = "") -> str:
        """A field by its name with or without the ``agi_`` prefix."""
        if not key.startswith("agi_"):
            key = "agi_" + key
        return self.fields.get(key, default)

    network_script = _field("agi_network_script",
                            "``agi_network_script`` as sent: the path after the host, query string included.")

    @property
    def script(self) -> str:
        """The script path without the query string, percent-decoded (``digits?lang=de`` -> ``digits``)."""
        return unquote(self.network_script.partition("?")[0])

    @property
    def safe_script(self) -> str | None:
        """``script`` if it names a file inside the scripts folder, else None (``..``, absolute, empty)."""
        name = self.script
        if not name or "\\" in name or "\x00" in name or name.startswith("/"):
            return None
        if any(part in ("", ".", "..") for part in name.split("/")):
            return None
        return name

    @property
    def query(self) -> dict[str, str]:
        """The query string as a dict (``?company=Acme&x=1``); a repeated name keeps its last value."""
        query = self.network_script.partition("?")[2]
        return dict(parse_qsl(query, keep_blank_values=True)) if query else {}

    @property
    def args(self) -> list[str]:
        """``agi_arg_1``, ``agi_arg_2``... in order (the arguments of ``AGI()`` after the URL)."""
        found = []
        for key, value in self.fields.items():
            if key.startswith("agi_arg_") and key[8:].isdigit():
                found.append((int(key[8:]), value))
        return [value for _, value in sorted(found)]

    callerid = _field("agi_callerid")
    calleridname = _field("agi_calleridname")
    channel = _field("agi_channel")
    uniqueid = _field("agi_uniqueid")
    extension = _field("agi_extension", "The dialled extension (``s`` when the call entered at ``s``).")
    dnid = _field("agi_dnid")
    context = _field("agi_context")
    language = _field("agi_language")

    def to_bytes(self) -> bytes:
        """The block as Asterisk sends it (used by the fake Asterisk and round-trip tests)."""
        return "".join(f"{key}: {value}\n" for key, value in self.fields.items()).encode() + b"\n"


@dataclass(frozen=True, slots=True)
class Response:
    """One reply line: ``200 result=...``, or another code (510, 511) with its text in ``data``.

    For 200: ``result`` is the integer after ``result=`` (None when it is not
    one: ``result= (timeout)``, or GET DATA digits with ``*``);
    ``result_text`` is that token as sent (GET DATA's digits, leading zeros
    kept); ``data`` the text in parentheses; ``endpos`` the sample offset.
    """

    code: int
    result: int | None = None
    data: str | None = None
    endpos: int | None = None
    result_text: str = ""
    raw: str = field(default="", compare=False)

    @property
    def timeout(self) -> bool:
        """The ``(timeout)`` marker (GET DATA, RECORD FILE)."""
        return self.data == "timeout"

    @classmethod
    def ok(cls, result: int | str, data: str | None = None, endpos: int | None = None) -> Response:
        """A 200 reply built from values (as the fake Asterisk answers)."""
        text = str(result)
        return cls(200, _int_or_none(text), data, endpos, text)

    def to_bytes(self) -> bytes:
        if self.code != 200:
            return f"{self.code} {self.data or ''}\n".encode()
        line = f"200 result={self.result_text}"
        if self.data is not None:
            line += f" ({self.data})"
        if self.endpos is not None:
            line += f" endpos={self.endpos}"
        return line.encode() + b"\n"


@dataclass(frozen=True, slots=True)
class UsageError:
    """The event for a 520 reply (bad command syntax); ``lines`` is the usage text between the frame lines.

    An event, not an exception: the connection stays usable after it.
    """

    lines: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        if not self.lines:
            return b"520 Invalid command syntax.  Proper usage not available.\n"
        body = "".join(line + "\n" for line in self.lines)
        return (f"520-Invalid command syntax.  Proper usage follows:\n{body}"
                "520 End of proper usage.\n").encode()


@dataclass(frozen=True, slots=True)
class HangupNotice:
    """The unprompted ``HANGUP`` line: the channel hung up. Never the reply to a command."""

    def to_bytes(self) -> bytes:
        return b"HANGUP\n"


HANGUP_NOTICE = HangupNotice()
Event = Environment | Response | UsageError | HangupNotice

# Internal transition triggers that are not events handed to the caller.
_SEND = "send"
_USAGE_START = "520-"

_TRANSITIONS: dict[tuple[State, object], State] = {
    (State.ENVIRONMENT, Environment): State.IDLE,
    (State.IDLE, _SEND): State.AWAITING_REPLY,
    (State.AWAITING_REPLY, Response): State.IDLE,
    (State.AWAITING_REPLY, UsageError): State.IDLE,      # the one-line "520 ..." form
    (State.AWAITING_REPLY, _USAGE_START): State.USAGE,
    (State.USAGE, UsageError): State.IDLE,
    (State.IDLE, HangupNotice): State.IDLE,
    (State.AWAITING_REPLY, HangupNotice): State.AWAITING_REPLY,
}
# The transitions the fast paths take, read from the table (never written out again).
_AFTER_ENVIRONMENT = _TRANSITIONS[(State.ENVIRONMENT, Environment)]
_AFTER_SEND = _TRANSITIONS[(State.IDLE, _SEND)]
_AFTER_REPLY = _TRANSITIONS[(State.AWAITING_REPLY, Response)]
_AFTER_REPLY_AND_HANGUP = _TRANSITIONS[(_AFTER_REPLY, HangupNotice)]


def _int_or_none(text: str) -> int | None:
    digits = text[1:] if text[:1] == "-" else text
    return int(text) if len(text) <= _INT_CHARS and digits.isdigit() and digits.isascii() else None


# One line of an environment block, for the one-pass parse (``_environment_block``): a key of the
# plain ASCII characters Asterisk uses, a colon, at most one space dropped, the value to the end of
# the line. Anything else (CR, odd keys) is left to the line-by-line parse, which says what is wrong.
_ENV_LINE = re.compile(r"^(agi_[A-Za-z0-9_]*):[ ]?(.*)$", re.MULTILINE)
_KEY = itemgetter(0)
_VALUE = itemgetter(1)


def _shown(line: bytes) -> str:
    """A received line for an error message: repr, cut to a readable length."""
    return repr(line[:80]) + ("..." if len(line) > 80 else "")


@functools.lru_cache(maxsize=1024)
def _parse_ok(line: bytes) -> Response:
    """Parse ``200 result=V[ (data)][ endpos=N]``: splits, no regex, and memoised, since
    the same few lines (``200 result=0``) make most of the traffic and events are immutable."""
    rest = line[11:]  # after b"200 result="
    space = rest.find(b" ")
    if space < 0:
        value, tail = rest, b""
    else:
        value, tail = rest[:space], rest[space + 1:]
    if len(value) > MAX_RESULT_CHARS:
        raise RemoteProtocolError(f"Asterisk sent a result of {len(value)} characters (no AGI reply has one "
                                  f"over {MAX_RESULT_CHARS}): {_shown(line)}")
    data = endpos = None
    if tail:
        if tail[:1] == b"(":
            if tail[-1:] == b")":
                data, tail = tail[1:-1], b""
            else:
                close = tail.rfind(b") endpos=")
                if close < 0:
                    raise RemoteProtocolError(f"Asterisk sent a reply with unbalanced data: {_shown(line)}")
                data, tail = tail[1:close], tail[close + 2:]
        if tail:
            if tail[:7] != b"endpos=" or not tail[7:].isdigit():
                raise RemoteProtocolError(f"Asterisk sent a reply this server cannot parse: {_shown(line)}")
            endpos = int(tail[7:])
    text = value.decode("utf-8", "replace")
    return Response(200, _int_or_none(text), None if data is None else data.decode("utf-8", "replace"),
                    endpos, text, line.decode("utf-8", "replace"))


class AgiConnection:
    """One FastAGI conversation, server side. Pure: the caller does all I/O.

    ``max_line_length`` bounds any line, complete or still arriving, so an
    endless line is refused before it eats memory.
    """

    __slots__ = ("_state", "_lines", "_pos", "_partial", "_max_line", "_fields", "_usage", "_error", "hung_up",
                 "_env_bytes")

    def __init__(self, max_line_length: int = DEFAULT_MAX_LINE_LENGTH) -> None:
        self._state = _ENVIRONMENT
        self._lines: list[bytes] = []
        self._pos = 0
        self._partial = b""
        self._max_line = max_line_length
        self._fields: dict[str, str] | None = {}
        self._usage: list[str] | None = None
        self._error: str | None = None
        self.hung_up = False            # Asterisk's HANGUP line has been parsed (a HangupNotice given)
        self._env_bytes = 0

    @property
    def state(self) -> State:
        return self._state

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; parsing happens in ``next_event``."""
        if self._partial:
            data = self._partial + data
        parts = data.split(b"\n")
        self._partial = parts.pop()
        if parts:
            if self._pos < len(self._lines):
                parts[:0] = self._lines[self._pos:]
            self._lines = parts
            self._pos = 0

    def next_event(self) -> Event | type[NeedData]:
        """The next complete event, or ``NeedData``. Raises ``RemoteProtocolError`` on garbage."""
        if self._state is _ERROR:
            raise RemoteProtocolError(f"the connection already failed: {self._error}")
        if self._state is _ENVIRONMENT and not self._fields and fastpaths.enabled:
            environment = self._environment_block()
            if environment is not None:
                return environment
        try:
            while True:
                if self._pos >= len(self._lines):
                    if len(self._partial) > self._max_line:
                        raise RemoteProtocolError(
                            f"the peer sent a line longer than {self._max_line} bytes without an end")
                    return NeedData
                line = self._lines[self._pos]
                self._pos += 1
                if line[-1:] == b"\r":
                    line = line[:-1]
                if len(line) > self._max_line:
                    raise RemoteProtocolError(f"the peer sent a line longer than {self._max_line} bytes")
                state = self._state
                if state is _AWAITING or state is _IDLE:
                    if line[:11] == b"200 result=":
                        event: Event = _parse_ok(line)
                    elif line == b"HANGUP":
                        event = HANGUP_NOTICE
                        self.hung_up = True
                    elif line[:4] == b"520-":
                        self._transition(_USAGE_START, line)
                        self._usage = []
                        continue
                    elif line[:4] == b"520 ":
                        event = UsageError()
                    elif line[:3].isdigit() and line[3:4] == b" " and line[:3] != b"200":
                        event = Response(int(line[:3]), None, line[4:].decode("utf-8", "replace"),
                                         None, "", line.decode("utf-8", "replace"))
                    else:
                        raise RemoteProtocolError(
                            f"Asterisk sent a line that is not an AGI reply: {_shown(line)}")
                elif state is _USAGE:
                    if line[:4] != b"520 ":
                        if len(self._usage) >= MAX_USAGE_LINES:
                            raise RemoteProtocolError(f"a 520 usage reply ran past {MAX_USAGE_LINES} lines")
                        self._usage.append(line.decode("utf-8", "replace"))
                        continue
                    event = UsageError(tuple(self._usage))
                    self._usage = None
                elif state is _ENVIRONMENT:
                    if line:
                        self._add_field(line)
                        continue
                    if not self._fields:
                        raise RemoteProtocolError("the peer sent an empty environment")
                    event = Environment(self._fields)
                    self._fields = None
                self._transition(type(event), line)
                return event
        except RemoteProtocolError as exc:
            self._state = _ERROR
            self._error = str(exc)
            raise

    def _environment_block(self) -> Environment | None:
        """The whole environment in one pass, when its blank line is buffered (see ``_plain_environment``)."""
        lines, pos = self._lines, self._pos
        try:
            end = lines.index(b"", pos)
        except ValueError:
            return None
        count = end - pos
        if count == 0:
            return None
        environment = self._plain_environment(b"\n".join(lines[pos:end]) if count > 1 else lines[pos], count)
        if environment is not None:
            self._pos = end + 1
        return environment

    def _plain_environment(self, block: bytes, count: int) -> Environment | None:
        """``count`` lines of environment (without the blank line) parsed at once, or None to go line by line.

        One decode and one regex instead of an event per line; the fields are
        exactly those of the line-by-line parse, which handles everything
        else (a block still arriving, CR line ends, a line this pass does not
        recognise: it raises the error there). On success the state moves on.
        """
        if len(block) > self._max_line or b"\r" in block:
            return None
        pairs = _ENV_LINE.findall(block.decode("utf-8", "replace"))
        if len(pairs) != count:
            return None
        self._fields = None
        self._state = _AFTER_ENVIRONMENT
        # Interned keys are shared by every connection's environment; a repeated key keeps its last value.
        return Environment(dict(zip(map(sys.intern, map(_KEY, pairs)), map(_VALUE, pairs))))

    # --- shortcuts for the common segments: all or nothing, the same events as receive_data + next_event ---

    def quick_environment(self, data: bytes) -> Environment | None:
        """If nothing is buffered and ``data`` is exactly a whole plain environment block, its event; else
        None and nothing consumed (feed ``data`` to ``receive_data`` then)."""
        if (self._state is not _ENVIRONMENT or self._fields or self._partial
                or self._pos < len(self._lines) or data[-2:] != b"\n\n"):
            return None
        end = len(data) - 2
        if end <= 0 or data.find(b"\n\n") != end:
            return None
        return self._plain_environment(data[:end], data.count(b"\n", 0, end) + 1)

    def quick_reply(self, data: bytes) -> Response | None:
        """If a command awaits its reply, nothing is buffered and ``data`` is exactly one ``200`` line, its
        event; else None and nothing consumed (feed ``data`` to ``receive_data`` then). ``data`` may also
        end with Asterisk's ``HANGUP`` line (the last reply of a call often does): then ``hung_up`` says so
        (the ``HangupNotice`` event, which next_event would have given after the reply)."""
        if (self._state is not _AWAITING or self._partial or self._pos < len(self._lines)
                or data[:11] != b"200 result="):
            return None
        end = data.find(b"\n")
        if end < 0 or end > self._max_line or b"\r" in data:
            return None
        rest = len(data) - end
        if rest != 1 and (rest != 8 or data[end:] != b"\nHANGUP\n"):
            return None
        try:
            event = _parse_ok(data[:end])
        except RemoteProtocolError:
            return None          # next_event raises it, and fails the connection as it should
        if rest == 8:
            self.hung_up = True         # the HangupNotice next_event would give after the reply
            self._state = _AFTER_REPLY_AND_HANGUP
        else:
            self._state = _AFTER_REPLY
        return event

    def _add_field(self, line: bytes) -> None:
        key, colon, value = line.partition(b":")
        if not colon or key[:4] != b"agi_" or b" " in key:
            raise RemoteProtocolError(f"the peer sent garbage instead of an AGI environment: {_shown(line)}")
        if value[:1] == b" ":
            value = value[1:]
        self._env_bytes += len(line)
        if self._env_bytes > MAX_ENV_BYTES:
            raise RemoteProtocolError(f"the peer sent an environment over {MAX_ENV_BYTES} bytes")
        if len(self._fields) >= MAX_ENV_FIELDS:
            raise RemoteProtocolError(f"the peer sent an environment of more than {MAX_ENV_FIELDS} fields")
        # Interned keys are shared by every connection's environment.
        self._fields[sys.intern(key.decode("ascii", "replace"))] = value.decode("utf-8", "replace")

    def _transition(self, trigger: object, line: bytes) -> None:
        new_state = _TRANSITIONS.get((self._state, trigger))
        if new_state is None:
            raise RemoteProtocolError(f"Asterisk sent {_shown(line)} while {self._state.value} "
                                      "(a reply to no command)")
        self._state = new_state

    def send(self, command: Command) -> bytes:
        """The bytes that send ``command``; one command at a time, after the environment."""
        if self._state is _IDLE:        # the one state that may send, taken at once
            self._state = _AFTER_SEND
            return command.data
        new_state = _TRANSITIONS.get((self._state, _SEND))
        if new_state is None:
            raise LocalProtocolError(f"cannot send {command.name} while {self._state.value}; "
                                     "AGI allows one command at a time, after the environment")
        self._state = new_state
        return command.data


# --- commands -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Command:
    """A serialised AGI command: ``name`` is its verb (``STREAM FILE``), ``line`` the text sent."""

    name: str
    line: str
    data: bytes = field(repr=False, compare=False, default=b"")
    # The longest Asterisk may take to answer, in ms, beyond the margin every command gets (0: at once;
    # None: no bound but the call's own maximum duration).
    max_ms: int | None = field(repr=False, compare=False, default=0)

    def taking(self, max_ms: int | None) -> Command:
        """This command, said to take up to ``max_ms`` (None: unbounded)."""
        return Command(self.name, self.line, self.data, max_ms)

    @staticmethod
    def build(name: str, *args: str) -> Command:
        """``name`` followed by ``args`` quoted for Asterisk's parse_args()."""
        return _build(name, *args)

    @classmethod
    def raw(cls, line: str, name: str | None = None) -> Command:
        """A command line sent as written (tests, or a command without a builder)."""
        if "\n" in line or "\r" in line or "\x00" in line:
            raise LocalProtocolError(f"command {line!r} contains a line break or NUL")
        data = line.encode() + b"\n"
        if len(data) > MAX_COMMAND_BYTES:
            raise LocalProtocolError(f"command {line[:40]!r}... is {len(data)} bytes; "
                                     f"Asterisk reads at most {MAX_COMMAND_BYTES}")
        return cls(name or line, line, data)


# Commands are immutable and a call repeats the same few (WAIT FOR DIGIT 2000, a prompt's
# STREAM FILE): memoised, typed so that a _Verbatim argument never stands for a plain one.
@functools.lru_cache(maxsize=4096, typed=True)
def _build(name: str, *args: str) -> Command:
    if len(name.split()) + len(args) > MAX_COMMAND_WORDS:
        raise LocalProtocolError(f"{name}: more than {MAX_COMMAND_WORDS} words")
    return Command.raw(" ".join((name, *map(quote_arg, args))), name)


class _Verbatim(str):
    """An argument already in its wire form (quoted digit sets)."""


def quote_arg(arg: str) -> str:
    """Quote one argument so Asterisk's parse_args() gives it back unchanged."""
    if type(arg) is _Verbatim:
        return arg
    if not isinstance(arg, str):
        raise LocalProtocolError(f"AGI arguments are strings, not {type(arg).__name__} ({arg!r})")
    if not arg:
        return '""'
    if " " in arg or "\t" in arg or '"' in arg or "\\" in arg:
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def _digits(digits: str, what: str) -> _Verbatim:
    """Escape/terminator digits, always quoted as Asterisk's docs and the transcripts show (``"12"``, ``""``)."""
    if not isinstance(digits, str) or not set(digits) <= DTMF_KEYS:
        raise LocalProtocolError(f"{what}: {digits!r} is not a set of DTMF keys (0-9, *, #)")
    return _Verbatim(f'"{digits}"')


def _ms(value: int, what: str, allow_forever: bool = False) -> str:
    """A whole number of milliseconds (``-1``, "forever", where Asterisk allows it)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < (-1 if allow_forever else 0):
        raise LocalProtocolError(f"{what}: {value!r} is not a time in milliseconds")
    return str(value)


def _name(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise LocalProtocolError(f"{what}: an empty name is not allowed")
    return value


def parse_command_line(line: str) -> list[str]:
    """Split a command line as Asterisk's res_agi.c parse_args() does (the inverse of ``Command.build``).

    Words split on spaces and tabs; double quotes group (and, coming off
    whitespace, start a word even if empty); a backslash makes the next
    character literal.
    """
    words: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and current is None:
                current = []
                words.append("")
        elif char in " \t" and not quoted and not escaped:
            if current is not None:
                words[-1] = "".join(current)
                current = None
        elif char == "\\" and not escaped:
            escaped = True
        else:
            if current is None:
                current = []
                words.append("")
            current.append(char)
            escaped = False
    if current is not None:
        words[-1] = "".join(current)
    return words


def answer() -> Command:
    return Command.build("ANSWER")


@functools.lru_cache(maxsize=1024, typed=True)
def stream_file(filename: str, escape_digits: str = "", offset: int | None = None) -> Command:
    """Play ``filename`` (no extension); a key in ``escape_digits`` stops it."""
    offset_arg = () if offset is None else (_ms(offset, "STREAM FILE offset"),)
    return Command.build("STREAM FILE", _name(filename, "STREAM FILE"),
                         _digits(escape_digits, "STREAM FILE"), *offset_arg).taking(MAX_SOUND_MS)


@functools.lru_cache(maxsize=1024, typed=True)
def wait_for_digit(timeout_ms: int) -> Command:
    """``-1`` waits forever."""
    return Command.build("WAIT FOR DIGIT", _ms(timeout_ms, "WAIT FOR DIGIT", allow_forever=True)).taking(
        UNBOUNDED if timeout_ms < 0 else timeout_ms)


def get_data(filename: str, timeout_ms: int | None = None, max_digits: int | None = None) -> Command:
    args = [_name(filename, "GET DATA")]
    if timeout_ms is not None or max_digits is not None:
        args.append(_ms(timeout_ms if timeout_ms is not None else 0, "GET DATA timeout"))
    if max_digits is not None:
        args.append(_ms(max_digits, "GET DATA max digits"))
    # The prompt, then the timeout again after each digit (max_digits of them; Asterisk's default is 1024).
    waits = (timeout_ms if timeout_ms is not None else 6000) * ((max_digits or 1024) + 1)
    return Command.build("GET DATA", *args).taking(UNBOUNDED if timeout_ms == 0 else MAX_SOUND_MS + waits)


def record_file(filename: str, fmt: str = "wav", escape_digits: str = "", timeout_ms: int = -1,
                beep: bool = False, silence_s: int | None = None) -> Command:
    """Record to ``filename.fmt``; ends on a key in ``escape_digits``, ``timeout_ms`` (-1: none) or silence.

    ``BEEP`` and ``s=N`` (whole seconds) follow the timeout: res_agi.c takes a
    7th/8th word without ``=`` as "beep", and ``s=N`` as the silence to stop on.
    """
    args = [_name(filename, "RECORD FILE"), _name(fmt, "RECORD FILE format"),
            _digits(escape_digits, "RECORD FILE"), _ms(timeout_ms, "RECORD FILE timeout", allow_forever=True)]
    if beep:
        args.append("BEEP")
    if silence_s is not None:
        args.append("s=" + _ms(silence_s, "RECORD FILE silence"))
    return Command.build("RECORD FILE", *args).taking(UNBOUNDED if timeout_ms < 0 else timeout_ms)


def exec_app(application: str, options: str = "") -> Command:
    """Run a dialplan application; ``options`` is one argument (comma-separated as in the dialplan)."""
    if not isinstance(application, str) or not application.isidentifier():
        raise LocalProtocolError(f"EXEC: {application!r} is not an application name")
    command = Command.build("EXEC", application, *([options] if options else []))
    if application == "Wait":
        try:
            return command.taking(math.ceil(float(options) * 1000))
        except (ValueError, OverflowError):
            pass
    return command.taking(UNBOUNDED)      # Dial: a bridged call may last as long as the call may


def set_variable(name: str, value: str) -> Command:
    return Command.build("SET VARIABLE", _name(name, "SET VARIABLE"), value)


@functools.lru_cache(maxsize=256, typed=True)
def get_variable(name: str) -> Command:
    return Command.build("GET VARIABLE", _name(name, "GET VARIABLE"))


def get_full_variable(expression: str, channel: str | None = None) -> Command:
    return Command.build("GET FULL VARIABLE", _name(expression, "GET FULL VARIABLE"),
                         *([channel] if channel else []))


def hangup(channel: str | None = None) -> Command:
    return Command.build("HANGUP", *([channel] if channel else []))


def noop(text: str = "") -> Command:
    return Command.build("NOOP", *([text] if text else []))


def verbose(message: str, level: int = 1) -> Command:
    if level not in (1, 2, 3, 4):
        raise LocalProtocolError(f"VERBOSE: level {level!r} is not 1-4")
    return Command.build("VERBOSE", message, str(level))


def channel_status() -> Command:
    """The state of our channel: ``200 result=6`` when up; ``511`` once it is dead."""
    return Command.build("CHANNEL STATUS")
