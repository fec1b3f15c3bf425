"""String literals: unescaping ``\\"`` and ``\\\\``, and splitting ``{name|form}`` interpolations."""

from __future__ import annotations

import re

from autocall.dsl.ast import Interpolation, Span, Template
from autocall.engine.spoken import FORMS
from autocall.suggest import suggest

FORMATS = FORMS
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*\Z")


class StringProblem(Exception):
    """A malformed string literal; ``offset`` counts characters from the opening quote.

    ``problems`` holds every problem of the literal (this one first), so all are reported at once.
    """

    def __init__(self, message: str, offset: int, length: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.length = length
        self.problems: list[StringProblem] = [self]
        self.template: Template | None = None       # the literal read around the problems, when it was


def unescape(raw: str, problems: list[StringProblem] | None = None) -> tuple[str, list[int]]:
    """Text of a quoted literal without escapes, and for each character its offset in ``raw``.

    A bad escape raises, or with ``problems`` is noted there and kept as written.
    """
    text: list[str] = []
    offsets: list[int] = []
    index = 1
    end = len(raw) - 1
    while index < end:
        char = raw[index]
        if char == "\\":
            nxt = raw[index + 1] if index + 1 < end else ""
            if nxt not in ('"', "\\"):
                shown = "\\" + nxt if nxt else "\\"
                problem = StringProblem(f"unknown escape '{shown}' in string (only \\\" and \\\\ are escapes)",
                                        index, 2)
                if problems is None:
                    raise problem
                problems.append(problem)
                nxt = nxt or "\\"
            text.append(nxt)
            offsets.append(index)
            index += 2
            continue
        text.append(char)
        offsets.append(index)
        index += 1
    return "".join(text), offsets


def plain_text(raw: str) -> str:
    """A literal whose braces mean nothing (file names, voices, hours)."""
    return unescape(raw)[0]


def parse_template(raw: str, line: int, column: int) -> Template:
    """Split a quoted literal at ``{...}``; ``{{``/``}}`` are literal braces. Raises with every problem."""
    if "{" not in raw and "}" not in raw and "\\" not in raw:
        return Template((raw[1:-1],) if len(raw) > 2 else (), Span(line, column, line, column + len(raw)))
    problems: list[StringProblem] = []
    text, offsets = unescape(raw, problems)
    parts: list[str | Interpolation] = []
    buffer: list[str] = []
    index = 0
    length = len(text)

    def span_at(start: int, stop: int) -> Span:
        first = offsets[start] if start < len(offsets) else len(raw) - 1
        last = offsets[stop - 1] + 1 if 0 < stop <= len(offsets) else first + 1
        return Span(line, column + first, line, column + last)

    while index < length:
        char = text[index]
        if char == "{":
            if index + 1 < length and text[index + 1] == "{":
                buffer.append("{")
                index += 2
                continue
            close = text.find("}", index + 1)
            reopen = text.find("{", index + 1)
            if close < 0 or 0 <= reopen < close:
                problems.append(StringProblem("unclosed '{' in string (write {{ for a literal brace)",
                                              offsets[index]))
                index += 1
                continue
            inner = text[index + 1:close]
            name, _, fmt = inner.partition("|")
            name, fmt = name.strip(), fmt.strip()
            if not _IDENTIFIER.match(name):
                problems.append(StringProblem(f"'{{{inner}}}' is not a variable to interpolate "
                                              "(write {name}, or {{ for a literal brace)", offsets[index],
                                              offsets[close] - offsets[index] + 1))
            elif "|" in inner and fmt not in FORMATS:
                problems.append(StringProblem(f"unknown format '|{fmt}'" + (suggest(fmt, FORMATS) or
                                              f" (formats: {', '.join('|' + f for f in FORMATS)})"),
                                              offsets[index], offsets[close] - offsets[index] + 1))
            else:
                if buffer:
                    parts.append("".join(buffer))
                    buffer = []
                name, *path = name.split(".")
                parts.append(Interpolation(name, fmt or None, span_at(index, close + 1), tuple(path)))
            index = close + 1
            continue
        if char == "}":
            if index + 1 < length and text[index + 1] == "}":
                buffer.append("}")
                index += 2
                continue
            problems.append(StringProblem("a lone '}' in string (write }} for a literal brace)", offsets[index]))
            index += 1
            continue
        buffer.append(char)
        index += 1
    if buffer:
        parts.append("".join(buffer))
    template = Template(tuple(parts), Span(line, column, line, column + len(raw)))
    if problems:
        problems[0].problems = problems
        problems[0].template = template
        raise problems[0]
    return template
