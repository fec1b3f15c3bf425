"""The language's values (strings and integers) and its operators, as the spec defines them.

A digit string computes and compares as a number when the other side is a
number; any other string against a number compares as text; comparisons never
fail. Arithmetic on a non-number fails with ``ScriptError``.
"""

from __future__ import annotations

Value = str | int


class ScriptError(Exception):
    """A run-time error of the script (the call ends with ``ended_by: error``)."""


def is_digit_string(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit()


def to_text(value: Value) -> str:
    return value if isinstance(value, str) else str(value)


def truthy(value: Value) -> bool:
    return value != 0 and value != ""


def _as_number(value: Value, op: str) -> int:
    if isinstance(value, int):
        return value
    if is_digit_string(value):
        return int(value)
    raise ScriptError(f"cannot use {describe(value)} as a number with '{op}'")


def describe(value: Value) -> str:
    if isinstance(value, int):
        return str(value)
    shown = value if len(value) <= 30 else value[:27] + "..."
    return f'the text "{shown}"'


def add(left: Value, right: Value) -> Value:
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    return _as_number(left, "+") + _as_number(right, "+")


def subtract(left: Value, right: Value) -> Value:
    return _as_number(left, "-") - _as_number(right, "-")


def multiply(left: Value, right: Value) -> Value:
    return _as_number(left, "*") * _as_number(right, "*")


def divide(left: Value, right: Value) -> Value:
    numerator, denominator = _as_number(left, "/"), _as_number(right, "/")
    if denominator == 0:
        raise ScriptError("division by zero")
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator >= 0) else -quotient


def negate(value: Value) -> Value:
    return -_as_number(value, "-")


def _comparable(left: Value, right: Value) -> tuple[Value, Value]:
    if isinstance(left, int) and is_digit_string(right):
        return left, int(right)
    if isinstance(right, int) and is_digit_string(left):
        return int(left), right
    if isinstance(left, int) and isinstance(right, int):
        return left, right
    return to_text(left), to_text(right)


def compare(op: str, left: Value, right: Value) -> int:
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
    return " ".join(ch for ch in to_text(value) if not ch.isspace())


ARITHMETIC = {"+": add, "-": subtract, "*": multiply, "/": divide}
COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
