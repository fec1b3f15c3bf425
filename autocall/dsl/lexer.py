"""A fast tokenizer for ``.dlg`` text, plugged into Lark in place of its own lexer.

Keywords are always keywords (the language reserves them), so one compiled
regular expression tokenizes the whole file. Indentation is tracked here too:
after each newline the lexer emits ``_INDENT`` or ``_DEDENT`` tokens, as
Python's tokenizer does.
"""

from __future__ import annotations

import re


MAX_NESTING = 32

# Option words may also name things (the spec's own example declares
# ``prompt beep``): they are keywords only where the grammar expects them.
SOFT_KEYWORDS = frozenset({"file", "sound", "in", "digits", "max", "terminator", "interdigit",
                           "secret", "callerid", "silence", "beep", "invalid", "failure"})

_TOKEN = re.compile(r"""
    (?P<NL>(?:[ \t\f]*(?:\#[^\n]*)?\r?\n)+[ ]*)
  | (?P<WS>[ \t\f]+)
  | (?P<COMMENT>\#[^\n]*)
  | (?P<STRING>"(?:\\.|[^"\\\n])*")
  | (?P<DURATION>[0-9]+(?:ms|s|m|h)(?![A-Za-z0-9_]))
  | (?P<INT>[0-9]+)
  | (?P<WORD>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<COMPARE>==|!=|<=|>=|<|>)
  | (?P<PUNCT>->|[=:,()+\-*/])
""", re.VERBOSE)


class LexProblem(Exception):
    """Text the lexer cannot read: a stray character, an unterminated string, bad indentation."""

    def __init__(self, message: str, line: int, column: int, length: int = 1) -> None:
        super().__init__(message)
        self.message, self.line, self.column, self.length = message, line, column, length


class Token:
    """A token: its terminal ``type`` (a grammar terminal name), text and position (1-based)."""

    __slots__ = ("type", "value", "line", "column", "end_line", "end_column", "start_pos", "end_pos")

    def __init__(self, type_: str, value: str, start_pos: int, line: int, column: int,
                 end_line: int, end_column: int, end_pos: int) -> None:
        self.type = type_
        self.value = value
        self.start_pos = start_pos
        self.line = line
        self.column = column
        self.end_line = end_line
        self.end_column = end_column
        self.end_pos = end_pos

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Token({self.type!r}, {self.value!r}, {self.line}:{self.column})"


class DialogueLexer:
    """Turns text into Tokens named after the grammar's terminals (``literals``: keyword text -> name)."""

    def __init__(self, literals: dict[str, str]) -> None:
        self._keywords = {value: name for value, name in literals.items() if value[0].isalpha()}
        self._punct = {value: name for value, name in literals.items() if not value[0].isalpha()}
        self._punct.update({"*": "MUL", "/": "MUL"})
        self.soft_keyword_types = frozenset(self._keywords[word] for word in SOFT_KEYWORDS)

    def tokens(self, text: str):
        """Soft keywords come out as keywords; the parser turns them into NAMEs where a name is due."""
        keywords, punct = self._keywords, self._punct
        match = _TOKEN.match
        pos, line, line_start, end = 0, 1, 0, len(text)
        levels = [0]
        while pos < end:
            found = match(text, pos)
            if found is None:
                raise self._problem(text, pos, line, line_start)
            kind = found.lastgroup
            value = found.group()
            stop = found.end()
            column = pos - line_start + 1
            if kind == "NL":
                newlines = value.count("\n")
                last_nl = value.rfind("\n")
                indent = stop - (pos + last_nl + 1)
                nl = Token("_NL", value, pos, line, column, line + newlines, indent + 1, stop)
                yield nl
                line += newlines
                line_start = pos + last_nl + 1
                if stop < end and text[stop] in "\t\f":
                    raise LexProblem("tab in indentation; indent with spaces only", line, indent + 1)
                if stop >= end:
                    indent = 0
                if indent > levels[-1]:
                    if len(levels) > MAX_NESTING:
                        raise LexProblem(f"blocks are nested more than {MAX_NESTING} deep; "
                                         "move the inner part into a state of its own", line, indent + 1)
                    levels.append(indent)
                    yield Token("_INDENT", "", stop, line, 1, line, indent + 1, stop)
                else:
                    while indent < levels[-1]:
                        levels.pop()
                        yield Token("_DEDENT", "", stop, line, 1, line, indent + 1, stop)
                    if indent != levels[-1]:
                        raise LexProblem("this line's indentation matches no enclosing block "
                                         f"(indent it by {levels[-1]} spaces, like the lines above)",
                                         line, 1, max(indent, 1))
            elif kind == "WS" or kind == "COMMENT":
                pass
            else:
                if kind == "WORD":
                    kind = keywords.get(value, "NAME")
                elif kind == "PUNCT":
                    kind = punct[value]
                yield Token(kind, value, pos, line, column, line, column + len(value), stop)
            pos = stop
        while len(levels) > 1:
            levels.pop()
            yield Token("_DEDENT", "", end, line, 1, line, 1, end)

    @staticmethod
    def _problem(text: str, pos: int, line: int, line_start: int) -> LexProblem:
        column = pos - line_start + 1
        char = text[pos]
        if char == '"':
            stop = text.find("\n", pos)
            stop = len(text) if stop < 0 else stop
            return LexProblem('unterminated string (close it with " on the same line)', line, column,
                              max(stop - pos, 1))
        shown = char if char.isprintable() and not char.isspace() else repr(char)[1:-1]
        return LexProblem(f"unexpected character '{shown}'", line, column)
