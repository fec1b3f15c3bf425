"""Ages and points in time as people write them for reports and retention: ``7d``, ``12h``, ``2026-03-01``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from autocall.durations import parse_duration_ms
from autocall.errors import UserError

_AGE = re.compile(r"^\s*(\d+)\s*(d|w)\s*$")
_DAY_S = 86_400


def parse_age_s(text: str, what: str) -> float:
    """``"365d"`` -> seconds; also weeks (``2w``) and the durations of scripts (``12h``, ``30m``)."""
    match = _AGE.match(text)
    if match:
        return int(match.group(1)) * _DAY_S * (7 if match.group(2) == "w" else 1)
    try:
        return parse_duration_ms(text, what) / 1000
    except UserError:
        raise UserError(f"{what}: {text!r} is not an age; write e.g. 7d, 2w, 12h or 30m") from None


def parse_when(text: str, now: float, what: str, end_of_day: bool = False) -> float:
    """A point in time as epoch seconds: an age before ``now`` (``7d``), a date (local midnight; with
    ``end_of_day`` the midnight after it, so ``--until 2026-03-31`` includes that day) or an ISO 8601
    time (local when it has no offset)."""
    text = text.strip()
    if text and text[0].isdigit() and text[-1] in "dwhms" and not text[-1:].isdigit() and "-" not in text:
        return now - parse_age_s(text, what)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{what} {text!r}: not a date or an age; write e.g. 2026-03-01, "
                        "2026-03-01T09:00, or 7d for seven days ago") from None
    date_only = len(text) == 10
    if moment.tzinfo is None:
        moment = moment.astimezone()        # local time
    if date_only and end_of_day:
        moment = (moment.replace(tzinfo=None) + timedelta(days=1)).astimezone()
    return moment.timestamp()
