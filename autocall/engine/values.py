"""The language's values (texts and numbers) and its operators, as the spec defines them.

Numbers are whole (``int``) or decimal (``Decimal``, exact: ``decimals.py``).
A text that reads as a number (``"1234"``, ``"-1205"``, ``"42.50"``) computes
and compares as one when the other side is a number; any other text against a
number compares as text; comparisons never fail. Arithmetic on a non-number
fails with ``ScriptError``.
"""

from __future__ import annotations

from decimal import Decimal

from autocall.engine import decimals

Value = str | int | Decimal


class ScriptError(Exception):
    """A run-time error of the script (the call ends with ``ended_by: error``)."""


def number_of(value: Value) -> int | Decimal | None:
    """The number a value is or reads as, else None."""
    if isinstance(value, str):
        return decimals.read_number(value)
    return value


def to_text(value: Value) -> str:
    if isinstance(value, str):
        return value
    return decimals.text(value) if value.__class__ is Decimal else str(value)


def exported(value: Value) -> str | int:
    """A value as it leaves the call (records, events, JSON): decimals as their exact text."""
    return decimals.text(value) if value.__class__ is Decimal else value


def truthy(value: Value) -> bool:
    return value != 0 and value != ""


def _as_number(value: Value, op: str) -> int | Decimal:
    if isinstance(value, int):
        return value
    number = number_of(value)
    if number is None:
        raise ScriptError(f"cannot use {describe(value)} as a number with '{op}'")
    return number


def _exact(op: str, left: int | Decimal, right: int | Decimal) -> int | Decimal:
    """``+ - *`` of two numbers: ints stay ints, a decimal side makes the result decimal."""
    if left.__class__ is int and right.__class__ is int:
        return left + right if op == "+" else left - right if op == "-" else left * right
    try:
        return decimals.arithmetic(op, left, right)
    except decimals.NumberProblem as exc:
        raise ScriptError(str(exc)) from None


def describe(value: Value) -> str:
    if not isinstance(value, str):
        return to_text(value)
    shown = value if len(value) <= 30 else value[:27] + "..."
    return f'the text "{shown}"'


def add(left: Value, right: Value) -> Value:
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    return _exact("+", _as_number(left, "+"), _as_number(right, "+"))


def subtract(left: Value, right: Value) -> Value:
    return _exact("-", _as_number(left, "-"), _as_number(right, "-"))


def multiply(left: Value, right: Value) -> Value:
    return _exact("*", _as_number(left, "*"), _as_number(right, "*"))


def divide(left: Value, right: Value) -> Value:
    try:
        return decimals.divide(_as_number(left, "/"), _as_number(right, "/"))
    except decimals.NumberProblem as exc:
        raise ScriptError(str(exc)) from None


def negate(value: Value) -> Value:
    number = _as_number(value, "-")
    return -number if number else number


def absolute(value: Value) -> Value:
    """``abs(x)``."""
    return abs(_as_number(value, "abs()"))


def rounded(value: Value, places: Value = 0) -> Value:
    """``round(x, N)``: half-even to N places."""
    number, count = _as_number(value, "round()"), _as_number(places, "round()")
    if count.__class__ is not int:
        raise ScriptError(f"round() takes a whole number of places, not {to_text(count)}")
    try:
        return decimals.round_to(number, count)
    except decimals.NumberProblem as exc:
        raise ScriptError(str(exc)) from None


def _comparable(left: Value, right: Value) -> tuple:
    left_text, right_text = isinstance(left, str), isinstance(right, str)
    if not left_text and not right_text:
        return left, right
    if left_text and right_text:
        return left, right
    number = number_of(left if left_text else right)
    if number is None:
        return to_text(left), to_text(right)
    return (number, right) if left_text else (left, number)


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
