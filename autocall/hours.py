"""Weekly schedules (``"mon-fri 09:00-18:00, sat 10:00-13:00"``): parsing and "is this moment inside?".

Shared by the language (``hours`` and ``within()``) and campaigns (``--window``).
A range whose end is earlier than its start runs past midnight into the next
day (``fri 22:00-02:00`` covers Friday night); ``24:00`` is the end of a day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PART = re.compile(r"^(?P<days>[a-z]+(?:\s*-\s*[a-z]+)?(?:\s*\+\s*[a-z]+(?:\s*-\s*[a-z]+)?)*)\s+"
                   r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$")


class HoursError(ValueError):
    """A schedule that cannot be read; the message says what to write instead."""


@dataclass(frozen=True)
class Window:
    """Open on ``day`` (0 = Monday) from ``start`` to ``end`` minutes after midnight (end may pass 1440)."""

    day: int
    start: int
    end: int


@dataclass(frozen=True)
class Schedule:
    windows: tuple[Window, ...]
    timezone: str | None

    def contains(self, moment: datetime) -> bool:
        """Is the aware datetime ``moment`` inside the schedule (in the schedule's time zone)?"""
        local = moment.astimezone(zone(self.timezone))
        minute = local.hour * 60 + local.minute
        today = local.weekday()
        for window in self.windows:
            if window.day == today and window.start <= minute < window.end:
                return True
            if window.end > 1440 and (window.day + 1) % 7 == today and minute < window.end - 1440:
                return True
        return False

    def next_opening(self, moment: datetime) -> datetime | None:
        """The first minute at or after ``moment`` that is inside, within a week; None if never."""
        if not self.windows:
            return None
        tz = zone(self.timezone)
        local = moment.astimezone(tz).replace(second=0, microsecond=0)
        if local < moment.astimezone(tz):
            local += timedelta(minutes=1)
        candidates = []
        for offset in range(0, 8):
            day = (local + timedelta(days=offset)).date()
            for window in self.windows:
                if window.day != day.weekday():
                    continue
                start = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(minutes=window.start)
                end = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(minutes=window.end)
                if end <= local:
                    continue
                candidates.append(max(start, local))
        return min(candidates).astimezone(timezone.utc) if candidates else None

    def to_json(self) -> dict:
        return {"timezone": self.timezone, "windows": [[w.day, w.start, w.end] for w in self.windows]}

    @classmethod
    def from_json(cls, data: dict) -> "Schedule":
        return cls(tuple(Window(*w) for w in data["windows"]), data.get("timezone"))


def zone(name: str | None):
    """The ZoneInfo for ``name``, or the server's local zone for None."""
    if name is None:
        return datetime.now().astimezone().tzinfo
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(f"unknown time zone '{name}' (write an Area/City name such as \"Europe/Rome\")") from None


def check_timezone(name: str) -> None:
    zone(name)


def _minutes(text: str, allow_24: bool) -> int:
    hours, minutes = (int(x) for x in text.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        raise HoursError(f"'{text}' is not a time of day (write HH:MM from 00:00 to 24:00)")
    return hours * 60 + minutes


def _days(text: str) -> list[int]:
    found: list[int] = []
    for piece in text.split("+"):
        piece = piece.strip()
        if piece == "daily":
            found.extend(range(7))
            continue
        first, _, last = (p.strip() for p in piece.partition("-"))
        for name in (first, last) if last else (first,):
            if name not in DAYS:
                raise HoursError(f"'{name}' is not a day (write mon, tue, wed, thu, fri, sat, sun, "
                                 "a range such as mon-fri, or daily)")
        a = DAYS.index(first)
        b = DAYS.index(last) if last else a
        found.extend((a + i) % 7 for i in range((b - a) % 7 + 1))
    return found


def parse_schedule(spec: str, timezone_name: str | None = None) -> Schedule:
    """Read ``"DAYS HH:MM-HH:MM, ..."``; raise HoursError saying what is wrong."""
    if timezone_name is not None:
        check_timezone(timezone_name)
    windows: list[Window] = []
    parts = [p.strip() for p in spec.lower().split(",")]
    if not spec.strip():
        raise HoursError("empty schedule (write e.g. \"mon-fri 09:00-18:00\")")
    for part in parts:
        match = _PART.match(part)
        if not match:
            raise HoursError(f"'{part}' is not DAYS HH:MM-HH:MM (e.g. \"mon-fri 09:00-18:00\")")
        start = _minutes(match["start"], allow_24=False)
        end = _minutes(match["end"], allow_24=True)
        if end == start:
            raise HoursError(f"'{part}' opens and closes at the same time")
        if end < start:
            end += 1440
        for day in _days(match["days"]):
            windows.append(Window(day, start, end))
    return Schedule(tuple(windows), timezone_name)
