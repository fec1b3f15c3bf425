"""Telephone numbers as AutoCall stores and compares them (contact lists, the do-not-call list, ``optout``).

The rule (E.164-ish, documented in docs/campaigns.md):

1. spaces, dashes, dots and parentheses are dropped (``+39 (06) 555-1234`` -> ``+39065551234``);
2. a leading ``+`` is kept; a leading ``00`` is the international prefix and becomes ``+``;
3. anything else must be digits;
4. 3 to 15 digits (15 is E.164's maximum; 3 allows short internal numbers such as ``101``).

No country code is guessed: ``0655512345`` and ``+39655512345`` are different
numbers. Two contacts are duplicates when their normalised numbers are equal.
"""

from __future__ import annotations

MIN_DIGITS = 3
MAX_DIGITS = 15
_DROPPED = str.maketrans("", "", " \t-.()\u00a0")


class NumberError(ValueError):
    """A number that cannot be normalised; the message says why, in a few words."""


def normalise_number(text: str) -> str:
    """The number in its stored form (``+`` and digits, or digits); NumberError says what is wrong."""
    raw = (text or "").strip()
    if not raw:
        raise NumberError("empty number")
    compact = raw.translate(_DROPPED)
    plus = compact.startswith("+")
    digits = compact[1:] if plus else compact
    if not plus and digits.startswith("00") and len(digits) > 2:
        plus, digits = True, digits[2:]
    if not digits.isdigit() or not digits.isascii():
        bad = next((c for c in digits if not (c.isascii() and c.isdigit())), "")
        where = "a + that is not at the start" if bad == "+" else f"{bad!r}"
        raise NumberError(f"not a phone number ({where} is not allowed; use digits, a leading + or 00)")
    if len(digits) < MIN_DIGITS:
        raise NumberError(f"too short ({len(digits)} digits, at least {MIN_DIGITS})")
    if len(digits) > MAX_DIGITS:
        raise NumberError(f"too long ({len(digits)} digits, at most {MAX_DIGITS})")
    return ("+" if plus else "") + digits


def try_normalise(text: str) -> str | None:
    """The normalised number, or None when it is not one (for callers that only compare)."""
    try:
        return normalise_number(text)
    except NumberError:
        return None
