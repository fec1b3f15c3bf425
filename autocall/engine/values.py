"""The language's values (strings and integers) and its operators, as the spec defines them.

A digit string computes and compares as a number when the other side is a
number; any other string against a number compares as text; comparisons never
fail. Arithmetic on a non-number fails with ``ScriptError``.

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

Value = str | int

SECRET_MASK = "***"
MAX_NUMBER_DIGITS = 1_000
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


def is_secret(value: object) -> bool:
    return isinstance(value, Secret)


def secret(value: Value) -> Value:
    """``value`` marked secret."""
    if isinstance(value, Secret):
        return value
    return SecretText(value) if isinstance(value, str) else SecretNumber(value)


def _derived(result: Value, *inputs: Value) -> Value:
    """``result``, marked secret when any of ``inputs`` is."""
    for value in inputs:
        if isinstance(value, Secret):
            return secret(result)
    return result


def is_digit_string(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit()


def to_text(value: Value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Secret):
        return SecretText(int.__repr__(value))
    return str(value)


def truthy(value: Value) -> bool:
    return value != 0 and value != ""


def bounded_number(value: int) -> int:
    if -_NUMBER_BOUND < value < _NUMBER_BOUND:
        return value
    raise ScriptError(f"a number grew past the limit of {MAX_NUMBER_DIGITS:,} digits")


def bounded_text(value: str) -> str:
    if len(value) <= MAX_TEXT_CHARS:
        return value
    raise ScriptError(f"a text grew past the limit of {MAX_TEXT_CHARS:,} characters")


def _digits_value(text: str) -> int | None:
    """A digit string's number, or None when it has more digits than a number may."""
    if len(text) > MAX_NUMBER_DIGITS:
        text = text.lstrip("0")
        if len(text) > MAX_NUMBER_DIGITS:
            return None
    return int(text) if text else 0


def _as_number(value: Value, op: str) -> int:
    if isinstance(value, int):
        return value
    if is_digit_string(value):
        number = _digits_value(value)
        if number is None:
            raise ScriptError(f"cannot use {describe(value)} as a number with '{op}': "
                              f"numbers have at most {MAX_NUMBER_DIGITS:,} digits")
        return number
    raise ScriptError(f"cannot use {describe(value)} as a number with '{op}'")


def describe(value: Value) -> str:
    if isinstance(value, Secret):
        return "a secret value"
    if isinstance(value, int):
        return str(value)
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
        result = bounded_number(_as_number(left, "+") + _as_number(right, "+"))
    if isinstance(left, Secret) or isinstance(right, Secret):
        return secret(result)
    return result


def subtract(left: Value, right: Value) -> Value:
    if left.__class__ is int and right.__class__ is int:
        result = left - right
        return result if -_NUMBER_BOUND < result < _NUMBER_BOUND else bounded_number(result)
    return _derived(bounded_number(_as_number(left, "-") - _as_number(right, "-")), left, right)


def multiply(left: Value, right: Value) -> Value:
    if left.__class__ is int and right.__class__ is int:
        result = left * right
        return result if -_NUMBER_BOUND < result < _NUMBER_BOUND else bounded_number(result)
    return _derived(bounded_number(_as_number(left, "*") * _as_number(right, "*")), left, right)


def divide(left: Value, right: Value) -> Value:
    if left.__class__ is int and right.__class__ is int and right:
        quotient = abs(left) // abs(right)
        return quotient if (left >= 0) == (right >= 0) else -quotient
    numerator, denominator = _as_number(left, "/"), _as_number(right, "/")
    if denominator == 0:
        raise ScriptError("division by zero")
    quotient = abs(numerator) // abs(denominator)
    return _derived(quotient if (numerator >= 0) == (denominator >= 0) else -quotient, left, right)


def negate(value: Value) -> Value:
    return _derived(-_as_number(value, "-"), value)


def _comparable(left: Value, right: Value) -> tuple[Value, Value]:
    if isinstance(left, int) and is_digit_string(right):
        number = _digits_value(right)
        return left, (float("inf") if number is None else number)
    if isinstance(right, int) and is_digit_string(left):
        number = _digits_value(left)
        return (float("inf") if number is None else number), right
    if isinstance(left, int) and isinstance(right, int):
        return left, right
    return to_text(left), to_text(right)


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
