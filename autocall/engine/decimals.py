"""Exact decimal numbers of the language: reading texts as numbers, decimal arithmetic, rounding.

Whole numbers are Python ints; a number with a fractional part is a
``Decimal`` computed in ``CONTEXT`` (never a binary float), so
``0.1 + 0.2 == 0.3``. Sums, differences and products are exact (one that
would need more than ``MAX_DIGITS`` digits is an error, never rounded); a
quotient with a decimal side is rounded half-even to ``DIVISION_PLACES``.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow

MAX_DIGITS = 1_000
DIVISION_PLACES = 6
MAX_ROUND_PLACES = 20
# A text reads as a number when it is written like a literal, with an optional minus: "-1205", "42.50".
_NUMBER_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")

CONTEXT = Context(prec=MAX_DIGITS, rounding=ROUND_HALF_EVEN, Emax=MAX_DIGITS, Emin=-MAX_DIGITS,
                  traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
_ROUNDING = Context(prec=MAX_DIGITS, rounding=ROUND_HALF_EVEN, Emax=MAX_DIGITS, Emin=-MAX_DIGITS,
                    traps=[InvalidOperation, DivisionByZero, Overflow])
_EXACT_OPS = {"+": CONTEXT.add, "-": CONTEXT.subtract, "*": CONTEXT.multiply}


class NumberProblem(ArithmeticError):
    """A number too large to keep exactly, or a bad rounding; the caller turns it into a script error."""


def read_number(text: str) -> int | Decimal | None:
    """The number a text reads as (``"1234"`` -> 1234, ``"-42.50"`` -> Decimal("-42.50")), else None."""
    if not text.isascii() or _NUMBER_TEXT.match(text) is None:
        return None
    # Past the digits a number may have, still a number to compare with (never an int: no size limit).
    return Decimal(text) if "." in text or len(text) > MAX_DIGITS + 1 else int(text)


def literal(text: str) -> Decimal:
    """A decimal literal of a script or of the IR (``"12.05"``), exactly."""
    return Decimal(text)


def arithmetic(op: str, left: int | Decimal, right: int | Decimal) -> Decimal:
    """``+ - *`` with at least one decimal side: exact, or NumberProblem when too many digits are needed."""
    try:
        return _tidy(_EXACT_OPS[op](_decimal(left), _decimal(right)))
    except (Inexact, Overflow):
        raise NumberProblem(f"a number grew past the limit of {MAX_DIGITS:,} digits") from None


def divide(left: int | Decimal, right: int | Decimal) -> int | Decimal:
    """Whole by whole truncates toward zero; with a decimal side, rounded half-even to 6 places."""
    if right == 0:
        raise NumberProblem("division by zero")
    if isinstance(left, int) and isinstance(right, int):
        quotient = abs(left) // abs(right)
        return quotient if (left >= 0) == (right >= 0) else -quotient
    try:
        exact = _ROUNDING.divide(_decimal(left), _decimal(right))
        return _trimmed(_ROUNDING.quantize(exact, Decimal(1).scaleb(-DIVISION_PLACES)))
    except (Overflow, InvalidOperation):
        raise NumberProblem(f"a number grew past the limit of {MAX_DIGITS:,} digits") from None


def round_to(value: int | Decimal, places: int) -> int | Decimal:
    """``round(x, N)``: half-even to N places (N from 0 to 20; 0 gives a whole number)."""
    if not 0 <= places <= MAX_ROUND_PLACES:
        raise NumberProblem(f"round() takes 0 to {MAX_ROUND_PLACES} places, not {places}")
    if isinstance(value, int):
        return value
    rounded = _ROUNDING.quantize(value, Decimal(1).scaleb(-places))
    return int(rounded) if places == 0 else _tidy(rounded)


def text(value: Decimal) -> str:
    """A decimal as a script shows it: plain digits, the places it has (``12.50``), never ``1E+3``."""
    return format(value, "f")


def _decimal(value: int | Decimal) -> Decimal:
    return value if value.__class__ is Decimal else Decimal(value)      # a secret one becomes plain


def _tidy(value: Decimal) -> Decimal:
    """No negative zero (``-0.5 + 0.5`` is ``0.0``)."""
    return value.copy_abs() if value.is_zero() else value


def _trimmed(value: Decimal) -> int | Decimal:
    """A rounded quotient without trailing zeros (``7.0 / 2`` is ``3.5``, ``6.0 / 2`` is ``3``)."""
    shown = text(value)
    if "." in shown:
        shown = shown.rstrip("0").rstrip(".")
    number = Decimal(shown)
    return _tidy(number)
