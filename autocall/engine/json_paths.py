"""JSON replies as the language reads them: parsing a reply body and reading dotted paths from it.

Pure (no I/O). The rules (docs/language.md, "Talking to other systems"):
JSON text is text; a whole number (written without a fraction or an
exponent) is a number; any other number is text as written (``42.50``
stays ``"42.50"``); ``true``/``false`` are ``1``/``0``; ``null``, a path
that does not exist, and an object or list used as a value are ``""``.
``count_items`` is what ``len()`` of an object or list gives. Reading never
fails.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

Value = str | int

MAX_NUMBER_DIGITS = 1_000     # a longer whole number stays text (as the engine's numbers are bounded too)


class NumberText(str):
    """A JSON number kept as written (a fraction, an exponent, or too many digits): text to the script."""

    __slots__ = ()


def _parse_int(text: str) -> int | NumberText:
    digits = text.lstrip("-")
    return int(text) if len(digits) <= MAX_NUMBER_DIGITS else NumberText(text)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_float=NumberText, parse_int=_parse_int, parse_constant=_refuse_constant)


def parse_json(body: bytes | str) -> Any:
    """The JSON value of a reply body (UTF-8, a BOM allowed); ``""`` for an empty body.

    Raises ``ValueError`` for anything that is not JSON, including a body
    nested too deeply for the parser.
    """
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError("not UTF-8") from exc
    if not body.strip():
        return ""
    try:
        return _DECODER.decode(body)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc


def split_path(path: str | Iterable[str]) -> tuple[str, ...]:
    """``"items.0.name"`` -> ``("items", "0", "name")`` (a sequence of segments is taken as it is)."""
    if isinstance(path, str):
        return tuple(path.split(".")) if path else ()
    return tuple(path)


def lookup(data: Any, path: str | Iterable[str]) -> Any:
    """The JSON value at ``path`` (objects by key, lists by index from 0), or None when it does not exist."""
    node = data
    for segment in split_path(path):
        if isinstance(node, dict):
            if segment not in node:
                return None
            node = node[segment]
        elif isinstance(node, list):
            if not (segment.isascii() and segment.isdigit()):
                return None
            index = int(segment)
            if index >= len(node):
                return None
            node = node[index]
        else:
            return None
    return node


def as_value(node: Any) -> Value:
    """A JSON value as a script value (see the module docstring)."""
    if node is True:
        return 1
    if node is False:
        return 0
    if type(node) is int:
        return node
    if isinstance(node, str):
        return str(node)           # a NumberText becomes plain text
    return ""                      # null, object, list (and anything else)


def read_path(data: Any, path: str | Iterable[str]) -> Value:
    """The script value at ``path`` in ``data``; ``""`` when there is none."""
    return as_value(lookup(data, path))


def count_items(node: Any) -> int | None:
    """``len()`` of an object or a list (its items); None for any other value (``len`` of its text applies)."""
    if isinstance(node, (dict, list)):
        return len(node)
    return None
