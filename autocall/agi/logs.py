"""Structured log lines for the server: logfmt (``key=value``), one line per event, ``call_id`` on every call's line.

A line looks like::

    time=2026-03-02T10:30:00.123Z level=info logger=autocall.agi.server msg="call ended" call_id=1795685563.1 ...

Values with spaces, quotes, ``=`` or control characters are JSON-quoted, so
a line splits unambiguously (``grep call_id=1795685563.1`` finds a call).
Fields come from ``extra={"fields": {...}}``; ``CallLog`` adds the call's
own fields to every line logged through it, including the AGI channel's.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from json.encoder import encode_basestring as _json_string   # json.dumps(text, ensure_ascii=False), no encoder made

from autocall.errors import UserError

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_PLAIN_CHARS = r"[A-Za-z0-9\-_./:@+,;*#%()\[\]<>!?~]+"
_PLAIN = re.compile(_PLAIN_CHARS)
# Every value of a line plain at once (joined with NUL, which no plain value holds): one match, not one a field.
_ALL_PLAIN = re.compile(f"{_PLAIN_CHARS}(?:\x00{_PLAIN_CHARS})*")
_EQUALS_JOIN = "=".join      # ("key", "value") -> "key=value"
_MESSAGES: dict[str, str] = {}    # message -> its logfmt form


def logfmt_value(value: object) -> str:
    """A value as logfmt writes it: bare when it is plain, else a JSON string."""
    text = value if type(value) is str else str(value)
    if _PLAIN.fullmatch(text):
        return text
    return _json_string(text)


class LogfmtFormatter(logging.Formatter):
    """``time= level= logger= msg=`` then the record's ``fields``, then ``traceback=`` for an exception."""

    _second = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        line = self.line(record.created, record.levelname, record.name, record.getMessage(),
                         getattr(record, "fields", None))
        if record.exc_info:
            line += " traceback=" + logfmt_value(self.formatException(record.exc_info))
        return line

    def line(self, created: float, levelname: str, name: str, message: str, fields: dict | None) -> str:
        """The line of a record made of these (``created`` is ``time.time()``), without a traceback."""
        second = int(created)
        if second != self._second:                   # one strftime per second, not per line
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        shown = _MESSAGES.get(message)
        if shown is None:                            # the same few messages make most lines
            shown = logfmt_value(message)
            if len(_MESSAGES) >= 1024:
                _MESSAGES.clear()
            _MESSAGES[message] = shown
        line = (f"time={self._stamp}.{int((created - second) * 1000):03d}Z level={levelname.lower()} "
                f"logger={name} msg={shown}")
        if fields:
            values = fields.values()
            if None in values:      # left out of the line
                keys = [key for key, value in fields.items() if value is not None]
                texts = [str(value) for value in values if value is not None]
            else:
                keys = fields.keys()
                texts = list(map(str, values))
            if texts:
                # Every value plain (the usual case) is one regex match, not one a field.
                joined = "\x00".join(texts)
                if _ALL_PLAIN.fullmatch(joined) is None or joined.count("\x00") != len(texts) - 1:
                    texts = [text if _PLAIN.fullmatch(text) else _json_string(text) for text in texts]
                line += " " + " ".join(map(_EQUALS_JOIN, zip(keys, texts)))
        return line


class LogfmtHandler(logging.StreamHandler):
    """What ``setup_logging`` installs: a ``StreamHandler`` with a ``LogfmtFormatter`` that can also take
    a line without a ``LogRecord`` (``log_line``).

    ``hold_lines(call_later)`` makes those lines wait, up to ``delay`` seconds, to be formatted and
    written together (the server's one line a call: one write for a hundred calls, formatted in one
    loop). Order is kept: any other line, ``flush()`` and ``close()`` write the waiting ones first.
    Each line keeps the time it was logged at.
    """

    def __init__(self, stream=None) -> None:
        super().__init__(stream)
        self._held: list[tuple] = []
        self._call_later = None
        self._delay = 0.0
        self._owner: int | None = None
        self._timer = None

    def hold_lines(self, call_later, delay: float = 0.1) -> None:
        """Hold ``write_line``'s lines for up to ``delay`` s; ``call_later(delay, f)`` (the reactor's, used from
        the thread calling this) schedules the write. ``hold_lines(None)`` writes them at once again."""
        self.write_held()
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()
        self._call_later, self._delay = call_later, delay
        self._owner = threading.get_ident() if call_later is not None else None

    def write_line(self, level: int, name: str, message: str, fields: dict) -> None:
        item = (time.time(), level, name, message, fields)
        if self._owner is not None and threading.get_ident() == self._owner:
            with self.lock:
                held = self._held
                held.append(item)
                if len(held) == 1 and self._timer is None:
                    self._timer = self._call_later(self._delay, self._timer_fired)
        else:
            self._write([item])

    def _timer_fired(self) -> None:
        self._timer = None
        self.write_held()

    def write_held(self) -> None:
        """Write the lines held so far (at once)."""
        if self._held:
            with self.lock:
                held, self._held = self._held, []
                self._write(held)

    def _write(self, items: list[tuple]) -> None:
        try:
            line = self.formatter.line
            terminator = self.terminator
            text = "".join([line(created, logging.getLevelName(level), name, message, fields) + terminator
                            for created, level, name, message, fields in items])
            with self.lock:
                stream = self.stream
                stream.write(text)
                if hasattr(stream, "flush"):
                    stream.flush()
        except Exception:
            for _, level, name, message, fields in items:
                record = logging.LogRecord(name, level, "", 0, message, (), None)
                record.fields = fields
                self.handleError(record)

    def emit(self, record: logging.LogRecord) -> None:
        if self._held:
            self.write_held()
        super().emit(record)

    def flush(self) -> None:
        if self._held:
            self.write_held()
        super().flush()

    def close(self) -> None:
        if self._held:
            self.write_held()
        super().close()


def _sole_logfmt_handler(logger: logging.Logger) -> LogfmtHandler | None:
    """The one handler a line of ``logger`` goes to, if it is a plain ``LogfmtHandler`` (no filters, its
    own formatter) and nothing on the way filters; else None."""
    found = None
    current = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if (found is not None or type(handler) is not LogfmtHandler or handler.filters
                    or type(handler.formatter) is not LogfmtFormatter):
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    return found


def log_line(logger: logging.Logger, level: int, message: str, fields: dict) -> None:
    """``logger.log(level, message, extra={"fields": fields})``, for a line logged often (the server's one
    line a call): when it goes only to ``setup_logging``'s handler it is formatted and written at once,
    without a ``LogRecord`` or the handler chain (the same line, a fraction of the cost); any other
    set-up (other handlers, filters, pytest's capture) gets the ordinary record."""
    if not logger.isEnabledFor(level):
        return
    handler = _sole_logfmt_handler(logger)
    if handler is None or level < handler.level or logger.disabled:
        logger.log(level, message, extra={"fields": fields})
    else:
        handler.write_line(level, logger.name, message, fields)


class CallLog(logging.LoggerAdapter):
    """A logger for one call: its ``extra`` fields (``call_id``, ``script``...) go on every line.

    ``log.info("msg", fields={...})`` adds fields for that line only.
    """

    def process(self, msg, kwargs):
        more = kwargs.pop("fields", None)
        kwargs["extra"] = {"fields": {**self.extra, **more} if more else self.extra}
        return msg, kwargs


def log_event(logger: logging.Logger, level: int, message: str, **fields: object) -> None:
    """One structured line (built only when the level is enabled)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={"fields": fields})


def parse_level(name: str) -> int:
    try:
        return LEVELS[str(name).lower()]
    except KeyError:
        raise UserError(f"log_level = {name!r} is not a level; use one of {', '.join(LEVELS)}") from None


def setup_logging(level: str = "info", stream=None) -> logging.Handler:
    """Send ``autocall.*`` logs as logfmt lines to ``stream`` (stderr); returns the handler (to remove it).

    The lines carry no source location, thread or process (the formatter
    does not show them), so the logging module is told not to compute them:
    the "Optimization" advice of the logging documentation, worth a good part
    of the cost of the server's one line per call.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = LogfmtHandler(stream or sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    logger = logging.getLogger("autocall")
    logger.setLevel(parse_level(level))
    logger.addHandler(handler)
    logger.propagate = False
    return handler
