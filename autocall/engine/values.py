"""The language's values (texts and numbers) and its operators, as the spec defines them.

Numbers are whole (``int``) or decimal (``Decimal``, exact: ``decimals.py``).
A text that reads as a number (``"1234"``, ``"-1205"``, ``"42.50"``) computes
and compares as one when the other side is a number; any other text against a
number compares as text; comparisons never fail. Arithmetic on a non-number
fails with ``ScriptError``.

Secrets: a ``gather ... secret`` value is a ``SecretText``, and every value
computed from a secret (a copy, text built from it, a sum, a comparison, its
length) is secret too (``SecretText``/``SecretNumber``). The value works as
usual inside the script; whatever shows a value outside it (records, logs,
error messages) asks ``is_secret`` and shows ``SECRET_MASK`` instead.

Bounds: a number has at most ``MAX_NUMBER_DIGITS`` digits and a text at most
``MAX_TEXT_CHARS`` characters; an operation that would go past either is a
``ScriptError`` of that call (``set n = n * n`` in a loop would otherwise
grow without end and stall every call on the server).
"""

from __future__ import annotations

from decimal import Decimal

from autocall.engine import decimals

Value = str | int | Decimal

SECRET_MASK = "***"
MAX_NUMBER_DIGITS = decimals.MAX_DIGITS
MAX_TEXT_CHARS = 100_000
_NUMBER_BOUND = 10 ** MAX_NUMBER_DIGITS


class ScriptError(Exception):
    """A run-time error of the script (the call ends with ``ended_by: error``)."""


class Secret:
    """Marks a value derived from a secret gather (``isinstance(value, Secret)``)."""

    __slots__ = ()

    def __repr__(self) -> str:       # a stray %r in a log or an error message shows the mask, not the value
        return repr(SECRET_MASK)


class SecretText(Secret, str):
    __slots__ = ()


class SecretNumber(Secret, int):
    __slots__ = ()


class SecretDecimal(Secret, Decimal):
    __slots__ = ()


def is_secret(value: object) -> bool:
    return isinstance(value, Secret)


def secret(value: Value) -> Value:
    """``value`` marked secret."""
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return SecretText(value)
    return SecretDecimal(value) if isinstance(value, Decimal) else SecretNumber(value)


def _derived(result: Value, *inputs: Value) -> Value:
    """``result``, marked secret when any of ``inputs`` is."""
    for value in inputs:
        if isinstance(value, Secret):
            return secret(result)
    return result


def number_of(value: Value) -> int | Decimal | None:
    """The number a value is or reads as, else None."""
    if isinstance(value, str):
        return decimals.read_number(value)
    return value


def to_text(value: Value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return SecretText(decimals.text(value)) if isinstance(value, Secret) else decimals.text(value)
    if isinstance(value, Secret):
        return SecretText(int.__repr__(value))
    return str(value)


def exported(value: Value) -> str | int:
    """A value as it leaves the call (records, events, JSON): decimals as their exact text."""
    return to_text(value) if isinstance(value, Decimal) else value


def truthy(value: Value) -> bool:
    return value != 0 and value != ""


def bounded_number(value: int | Decimal) -> int | Decimal:
    if -_NUMBER_BOUND < value < _NUMBER_BOUND:
        return value
    raise ScriptError(f"a number grew past the limit of {MAX_NUMBER_DIGITS:,} digits")


def bounded_text(value: str) -> str:
    if len(value) <= MAX_TEXT_CHARS:
        return value
    raise ScriptError(f"a text grew past the limit of {MAX_TEXT_CHARS:,} characters")


def _as_number(value: Value, op: str) -> int | Decimal:
    if not isinstance(value, str):
        return value
    number = decimals.read_number(value)
    if number is None:
        raise ScriptError(f"cannot use {describe(value)} as a number with '{op}'")
    if not -_NUMBER_BOUND < number < _NUMBER_BOUND:
        raise ScriptError(f"cannot use {describe(value)} as a number with '{op}': "
                          f"numbers have at most {MAX_NUMBER_DIGITS:,} digits")
    return number


def _exact(op: str, left: int | Decimal, right: int | Decimal) -> int | Decimal:
    """``+ - *`` of two numbers: ints stay ints, a decimal side makes the result decimal (exact)."""
    if isinstance(left, Decimal) or isinstance(right, Decimal):
        try:
            return bounded_number(decimals.arithmetic(op, left, right))
        except decimals.NumberProblem:
            raise ScriptError(f"a number grew past the limit of {MAX_NUMBER_DIGITS:,} digits") from None
    return bounded_number(left + right if op == "+" else left - right if op == "-" else left * right)


def describe(value: Value) -> str:
    if isinstance(value, Secret):
        return "a secret value"
    if not isinstance(value, str):
        return to_text(value)
    shown = value if len(value) <= 30 else value[:27] + "..."
    return f'the text "{shown}"'


def add(left: Value, right: Value) -> Value:
    if left.__class__ is int and right.__class__ is int:     # the usual case first: two plain numbers
        result = left + right
        return result if -_NUMBER_BOUND < result < _NUMBER_BOUND else bounded_number(result)
    if isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_TEXT_CHARS:
            bounded_text(left + right)
        result = left + right
    else:
        result = _exact("+", _as_number(left, "+"), _as_number(right, "+"))
    if isinstance(left, Secret) or isinstance(right, Secret):
        return secret(result)
    return result


def subtract(left: Value, right: Value) -> Value:
    if left.__class__ is int and right.__class__ is int:
        result = left - right
        return result if -_NUMBER_BOUND < result < _NUMBER_BOUND else bounded_number(result)
    return _derived(_exact("-", _as_number(left, "-"), _as_number(right, "-")), left, right)


def multiply(left: Value, right: Value) -> Value:
    if left.__class__ is int and right.__class__ is int:
        result = left * right
        return result if -_NUMBER_BOUND < result < _NUMBER_BOUND else bounded_number(result)
    return _derived(_exact("*", _as_number(left, "*"), _as_number(right, "*")), left, right)


def divide(left: Value, right: Value) -> Value:
    if left.__class__ is int and right.__class__ is int and right:
        quotient = abs(left) // abs(right)
        return quotient if (left >= 0) == (right >= 0) else -quotient
    try:
        quotient = decimals.divide(_as_number(left, "/"), _as_number(right, "/"))
    except decimals.NumberProblem as exc:
        raise ScriptError(str(exc)) from None
    return _derived(quotient, left, right)


def negate(value: Value) -> Value:
    number = _as_number(value, "-")
    return _derived(-number if number else number, value)


def absolute(value: Value) -> Value:
    """``abs(x)``."""
    return _derived(abs(_as_number(value, "abs()")), value)


def rounded(value: Value, places: Value = 0) -> Value:
    """``round(x, N)``: half-even to N places."""
    number, count = _as_number(value, "round()"), _as_number(places, "round()")
    if not isinstance(count, int):
        raise ScriptError(f"round() takes a whole number of places, not {describe(count)}")
    try:
        return _derived(decimals.round_to(number, int(count)), value, places)
    except decimals.NumberProblem as exc:
        raise ScriptError(str(exc)) from None


def _comparable(left: Value, right: Value) -> tuple:
    """Two numbers, or two texts: a text that reads as a number against a number is that number."""
    left_text, right_text = isinstance(left, str), isinstance(right, str)
    if not left_text and not right_text:
        return left, right
    if left_text and right_text:
        return left, right
    number = decimals.read_number(left if left_text else right)
    if number is None:
        return to_text(left), to_text(right)
    return (number, right) if left_text else (left, number)


def compare(op: str, left: Value, right: Value) -> int:
    if isinstance(left, Secret) or isinstance(right, Secret):
        return secret(_compare(op, left, right))
    return _compare(op, left, right)


def _compare(op: str, left: Value, right: Value) -> int:
    a, b = _comparable(left, right)
    if op == "==":
        result = a == b
    elif op == "!=":
        result = a != b
    elif op == "<":
        result = a < b
    elif op == "<=":
        result = a <= b
    elif op == ">":
        result = a > b
    else:
        result = a >= b
    return 1 if result else 0


def spoken_digits(value: Value) -> str:
    """``{x|digits}``: one character at a time, ``"1234"`` -> ``"1 2 3 4"``."""
    return _derived(" ".join(ch for ch in to_text(value) if not ch.isspace()), value)


def masked(value: Value) -> Value:
    """What may be shown of ``value`` outside the script."""
    return SECRET_MASK if isinstance(value, Secret) and value != "" else value


ARITHMETIC = {"+": add, "-": subtract, "*": multiply, "/": divide}
COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
