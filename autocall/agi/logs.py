"""Structured log lines for the server: logfmt (``key=value``), one line per event, ``call_id`` on every call's line.

A line looks like::

    time=2026-03-02T10:30:00.123Z level=info logger=autocall.agi.server msg="call ended" call_id=1795685563.1 ...

Values with spaces, quotes, ``=`` or control characters are JSON-quoted, so
a line splits unambiguously (``grep call_id=1795685563.1`` finds a call).
Fields come from ``extra={"fields": {...}}``; ``CallLog`` adds the call's
own fields to every line logged through it, including the AGI channel's.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

from autocall.errors import UserError

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_PLAIN = re.compile(r"[A-Za-z0-9\-_./:@+,;*#%()\[\]<>!?~]+")


def logfmt_value(value: object) -> str:
    """A value as logfmt writes it: bare when it is plain, else a JSON string."""
    text = value if type(value) is str else str(value)
    if _PLAIN.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=False)


class LogfmtFormatter(logging.Formatter):
    """``time= level= logger= msg=`` then the record's ``fields``, then ``traceback=`` for an exception."""

    _second = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:                   # one strftime per second, not per line
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        parts = [f"time={self._stamp}.{int(record.msecs):03d}Z level={record.levelname.lower()} "
                 f"logger={record.name} msg={logfmt_value(record.getMessage())}"]
        fields = getattr(record, "fields", None)
        if fields:
            parts.extend(f"{key}={logfmt_value(value)}" for key, value in fields.items() if value is not None)
        if record.exc_info:
            parts.append("traceback=" + logfmt_value(self.formatException(record.exc_info)))
        return " ".join(parts)


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
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    logger = logging.getLogger("autocall")
    logger.setLevel(parse_level(level))
    logger.addHandler(handler)
    logger.propagate = False
    return handler
