"""A fast tokenizer for ``.dlg`` text, plugged into Lark in place of its own lexer.

Keywords are always keywords (the language reserves them), so one compiled
regular expression tokenizes the whole file. Indentation is tracked here too:
after each newline the lexer emits ``_INDENT`` or ``_DEDENT`` tokens, as
Python's tokenizer does.
"""

from __future__ import annotations

import re
from operator import itemgetter


MAX_NESTING = 32

# Option words may also name things (the spec's own example declares
# ``prompt beep``): they are keywords only where the grammar expects them.
SOFT_KEYWORDS = frozenset({"file", "sound", "in", "digits", "max", "terminator", "interdigit",
                           "secret", "callerid", "silence", "beep", "invalid", "failure", "currency",
                           "ring", "all", "order", "announce",
                           "service", "fetch", "send", "notify", "from", "with", "into"})

# One match per token, from the grammar's terminal patterns (``grammar/dialogue.lark``): leading blanks
# (WS) are skipped by the prefix; the most frequent kinds come first. NL is a line end (after an optional
# comment), any blank or comment-only lines after it, and the next line's indentation: the grammar's
# ``_NL`` as Lark's Indenter reads it. The groups' names are the token types.
def _non_capturing(pattern: str) -> str:
    """The grammar's groups made non-capturing (the token's kind is the one named group that matched)."""
    return re.sub(r"(?<!\\)\((?!\?)", "(?:", pattern)


def _token_regex(patterns: dict[str, str], punctuation: list[str]) -> re.Pattern:
    patterns = {name: _non_capturing(pattern) for name, pattern in patterns.items()}
    comment = f"(?:{patterns['COMMENT']})"
    blank = f"(?:{patterns['WS']})?"
    line_end = r"\r?\n"
    punct = "|".join(re.escape(p) for p in sorted(punctuation, key=len, reverse=True))
    kinds = [
        ("DOTTED", patterns["DOTTED"]),
        ("WORD", patterns["NAME"]),
        ("NL", f"{comment}?{line_end}(?:{blank}{comment}?{line_end})*[ ]*"),
        ("STRING", patterns["STRING"]),
        ("DURATION", patterns["DURATION"]),
        ("DECIMAL", patterns["DECIMAL"]),
        ("INT", patterns["INT"]),
        ("COMPARE", patterns["COMPARE"]),
        ("PUNCT", f"{punct}|{patterns['MUL']}"),
        ("COMMENT", comment),
        ("END", r"\Z"),
        ("ERROR", "."),
    ]
    return re.compile(blank + "(?:" + "|".join(f"(?P<{name}>{pattern})" for name, pattern in kinds) + ")",
                      re.DOTALL)


class LexProblem(Exception):
    """Text the lexer cannot read: a stray character, an unterminated string, bad indentation."""

    def __init__(self, message: str, line: int, column: int, length: int = 1) -> None:
        super().__init__(message)
        self.message, self.line, self.column, self.length = message, line, column, length


class Token(tuple):
    """A token: ``(type, value, start_pos, line, column)``; ``type`` is a grammar terminal's name.

    A tuple built in C (``make_token``), because the lexer makes a great many
    of them; where a token ends is derived when asked.
    """

    __slots__ = ()

    type = property(itemgetter(0))
    value = property(itemgetter(1))
    start_pos = property(itemgetter(2))
    line = property(itemgetter(3))
    column = property(itemgetter(4))

    @property
    def end_pos(self) -> int:
        return self[2] + len(self[1])

    @property
    def end_line(self) -> int:
        return self[3] + self[1].count("\n")

    @property
    def end_column(self) -> int:
        value = self[1]
        last = value.rfind("\n")
        return self[4] + len(value) if last < 0 else len(value) - last

    def __str__(self) -> str:
        return self[1]

    def __repr__(self) -> str:
        return f"Token({self[0]!r}, {self[1]!r}, {self[3]}:{self[4]})"


def make_token(type_: str, value: str, start_pos: int, line: int, column: int) -> Token:
    return _new(Token, (type_, value, start_pos, line, column))


_new = tuple.__new__


class DialogueLexer:
    """Turns text into Tokens named after the grammar's terminals (``literals``: keyword text -> name;
    ``patterns``: terminal name -> regular expression, as Lark read them from the grammar)."""

    def __init__(self, literals: dict[str, str], patterns: dict[str, str]) -> None:
        self._keywords = {value: name for value, name in literals.items() if value[0].isalpha()}
        self._punct = {value: name for value, name in literals.items() if not value[0].isalpha()}
        self._punct.update({"*": "MUL", "/": "MUL"})
        self.soft_keyword_types = frozenset(self._keywords[word] for word in SOFT_KEYWORDS)
        self._token = _token_regex(patterns, list(self._punct))

    def tokens(self, text: str):
        """Soft keywords come out as keywords; the parser turns them into NAMEs where a name is due."""
        keywords, punct, new = self._keywords, self._punct, _new
        line, line_start, end = 1, 0, len(text)
        levels = [0]
        for found in self._token.finditer(text):
            kind = found.lastgroup
            if kind == "COMMENT" or kind == "END":
                continue
            value = found.group(kind)
            pos = found.end() - len(value)
            if kind == "WORD":
                yield new(Token, (keywords.get(value, "NAME"), value, pos, line, pos - line_start + 1))
            elif kind == "NL":
                start = found.start()   # a line's end is reported right after its last token
                yield new(Token, ("_NL", value, start, line, start - line_start + 1))
                stop = found.end()
                line += value.count("\n")
                line_start = pos + value.rfind("\n") + 1
                indent = stop - line_start
                if stop < end and text[stop] in "\t\f":
                    raise LexProblem("tab in indentation; indent with spaces only", line, indent + 1)
                if stop >= end:
                    indent = 0
                if indent > levels[-1]:
                    if len(levels) > MAX_NESTING:
                        raise LexProblem(f"blocks are nested more than {MAX_NESTING} deep; "
                                         "move the inner part into a state of its own", line, indent + 1)
                    levels.append(indent)
                    yield new(Token, ("_INDENT", "", stop, line, 1))
                else:
                    while indent < levels[-1]:
                        levels.pop()
                        yield new(Token, ("_DEDENT", "", stop, line, 1))
                    if indent != levels[-1]:
                        raise LexProblem("this line's indentation matches no enclosing block "
                                         f"(indent it by {levels[-1]} spaces, like the lines above)",
                                         line, 1, max(indent, 1))
            elif kind == "ERROR":
                raise self._problem(text, pos, line, line_start)
            elif kind == "PUNCT":
                yield new(Token, (punct[value], value, pos, line, pos - line_start + 1))
            else:
                yield new(Token, (kind, value, pos, line, pos - line_start + 1))
        while len(levels) > 1:
            levels.pop()
            yield new(Token, ("_DEDENT", "", end, line, 1))

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
        if char.isalpha():
            start = pos
            while start > line_start and (text[start - 1].isalnum() or text[start - 1] == "_"):
                start -= 1
            word = re.match(r"\w+", text[start:])[0]
            return LexProblem(f"'{word}' is not a name: names are ASCII letters, digits and '_' "
                              f"('{shown}' is not one of them)", line, start - line_start + 1, len(word))
        return LexProblem(f"unexpected character '{shown}'", line, column)
