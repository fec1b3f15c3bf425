"""Durations as people write them (``500ms``, ``5s``, ``2m``, ``1h``, ``15d``), parsed to milliseconds."""

from __future__ import annotations

import re

from autocall.errors import UserError

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(text: str, what: str = "duration") -> int:
    """``"5s"`` -> 5000. A bare number is refused: the unit is never guessed."""
    match = _DURATION.match(text)
    if not match:
        if text.strip().isdigit():
            raise UserError(f"{what}: {text.strip()!r} has no unit; write {text.strip()}s (units: ms, s, m, h, d)")
        raise UserError(f"{what}: {text!r} is not a duration; write e.g. 500ms, 5s, 10m or 1h")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]
