"""What a call's values may put into Asterisk's Dial and Queue: the one check, used for every destination.

A script writes its destinations (``transfer "PJSIP/" + ext``), but the
values interpolated into them come from callers, contact lists and web
services. A value holding one of Dial's metacharacters would add a
destination (``&``) or an option (``,`` and the old ``|``, parentheses for
option arguments) to the command AutoCall builds, so such a value is refused
before anything is dialled, and so are control characters.
"""

from __future__ import annotations

import re

DIAL_ANSWERED = "ANSWER"
DIAL_INVALID = "INVALIDARGS"      # Asterisk's DIALSTATUS for a Dial it refuses
# What a value put into a transfer or a queue may not hold: Dial's separators of destinations (&) and of
# options (, and the old |), option arguments' parentheses, and control characters.
QUEUE_PREFIX = "queue:"      # a queue's entry among the call record's transfers: "queue:support"
DIAL_UNSAFE = re.compile(r"[&,|()\x00-\x1f\x7f-\x9f]")


def unsafe_value(name: str, text: str) -> str | None:
    """Why the value ``text`` of the variable ``name`` may not go into a Dial or Queue command, or None."""
    found = DIAL_UNSAFE.search(text)
    if found is None:
        return None
    char = found.group()
    what = f"'{char}'" if char.isprintable() else f"a control character (U+{ord(char):04X})"
    return f"the value of '{name}' contains {what}, which would add a destination or an option to Dial"
