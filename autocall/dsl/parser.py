"""Parsing ``.dlg`` text with Lark into the typed AST, with syntax errors in a script author's words.

Lark builds the LALR tables and the callbacks from ``grammar/dialogue.lark``;
the tokens (indentation included) come from ``lexer.py`` and are fed through
those tables by ``DialogueParser._run``, whose callbacks build AST nodes
directly (no parse tree). Syntax errors are all reported in one run: after
each one the offending line is replaced by a neutral line of the same shape
and the text is parsed again.
"""

from __future__ import annotations

import re
from importlib import resources

from lark import Transformer

from autocall.dsl import ast as A
from autocall.dsl.diagnostics import DiagnosticSink
from autocall.dsl.lark_tables import build_tables
from autocall.dsl.lexer import SOFT_KEYWORDS, DialogueLexer, LexProblem, Token, make_token
from autocall.dsl.strings import StringProblem, parse_template, plain_text
from autocall.durations import parse_duration_ms
from autocall.suggest import suggest

MAX_SCRIPT_BYTES = 2 * 1024 * 1024
MAX_SYNTAX_ERRORS = 20

_LAYOUT = frozenset({"_NL", "_INDENT", "_DEDENT"})


def grammar_text() -> str:
    return resources.files("autocall").joinpath("grammar", "dialogue.lark").read_text(encoding="utf-8")


def _span(first, last=None) -> A.Span:
    """Span from a token or node to a token or node."""
    if last is None:
        last = first
    if first.__class__ is Token:
        line, column = first.line, first.column
    else:
        start = first.span
        line, column = start.line, start.column
    if last.__class__ is Token:
        return A.Span(line, column, last.end_line, last.end_column)
    end = last.span
    return A.Span(line, column, end.end_line, end.end_column)


def _token_span(token: Token) -> A.Span:
    return A.Span(token.line, token.column, token.end_line, token.end_column)


def _meaningful(children) -> list:
    return [c for c in children if not (isinstance(c, Token) and c.type in _LAYOUT)]


class _AstBuilder(Transformer):
    """Lark callbacks (one per grammar rule) building AST nodes; string problems go to ``sink``."""

    def __init__(self) -> None:
        super().__init__()
        self.sink: DiagnosticSink | None = None
        for rule, cls in A.STATEMENT_RULES.items():
            if not hasattr(type(self), rule):
                setattr(self, rule, self._statement_builder(cls))

    # -- helpers ------------------------------------------------------------------------
    def _template(self, token: Token) -> A.Template:
        try:
            return parse_template(str(token), token.line, token.column)
        except StringProblem as problem:
            self._string_problem(token, problem)
            return problem.template or A.Template((plain_text_safe(str(token)),), _token_span(token))

    def _plain(self, token: Token) -> str:
        try:
            return plain_text(str(token))
        except StringProblem as problem:
            self._string_problem(token, problem)
            return plain_text_safe(str(token))

    def _string_problem(self, token: Token, problem: StringProblem) -> None:
        for each in problem.problems:
            column = token.column + each.offset
            self.sink.error(each.message, A.Span(token.line, column, token.line, column + each.length))

    @staticmethod
    def _name(token: Token) -> A.Name:
        return A.Name(str(token), _token_span(token))

    # -- top level --------------------------------------------------------------------------
    def start(self, c):
        return c[0]

    def start_items(self, c):
        if not c:
            return []
        items = c[0]
        if not isinstance(c[1], Token):
            items.append(c[1])
        return items

    def dialogue_decl(self, c):
        c = _meaningful(c)
        return A.DialogueDecl(self._name(c[1]), _span(c[0], c[1]))

    def voice_decl(self, c):
        c = _meaningful(c)
        return A.SettingDecl("voice", (self._plain(c[1]), _token_span(c[1])), _span(c[0], c[1]))

    def currency_decl(self, c):
        c = _meaningful(c)
        return A.SettingDecl("currency", (self._plain(c[1]), _token_span(c[1])), _span(c[0], c[1]))

    def rate_decl(self, c):
        c = _meaningful(c)
        return A.SettingDecl("rate", A.Count(int(c[1].value), _token_span(c[1])), _span(c[0], c[1]))

    def timeout_decl(self, c):
        c = _meaningful(c)
        return A.SettingDecl("timeout", c[1], _span(c[0], c[1]))

    def tries_decl(self, c):
        c = _meaningful(c)
        return A.SettingDecl("tries", A.Count(int(c[1].value), _token_span(c[1])), _span(c[0], c[1]))

    def param_decl(self, c):
        c = _meaningful(c)
        default = c[3] if len(c) > 3 else None
        return A.ParamDecl(self._name(c[1]), default, _span(c[0], c[-1]))

    def var_decl(self, c):
        c = _meaningful(c)
        return A.VarDecl(self._name(c[1]), c[3], _span(c[0], c[3]))

    def prompt_decl(self, c):
        c = _meaningful(c)
        return A.PromptDecl(self._name(c[1]), c[3], _span(c[0], c[3]))

    def hours_decl(self, c):
        c = _meaningful(c)
        spec = c[3]
        tz = c[5] if len(c) > 5 else None
        return A.HoursDecl(self._name(c[1]), self._plain(spec), _token_span(spec),
                           self._plain(tz) if tz is not None else None,
                           _token_span(tz) if tz is not None else None, _span(c[0], c[-1]))

    def service_decl(self, c):
        c = _meaningful(c)
        return A.ServiceDecl(self._name(c[1]), self._plain(c[3]), _token_span(c[3]), _span(c[0], c[3]))

    def start_decl(self, c):
        c = _meaningful(c)
        return A.StartDecl(self._name(c[1]), _span(c[0], c[1]))

    def include_decl(self, c):
        c = _meaningful(c)
        return A.IncludeDecl(self._plain(c[1]), _token_span(c[1]), _span(c[0], c[1]))

    def state_decl(self, c):
        c = _meaningful(c)
        return A.StateDecl(self._name(c[1]), c[3], _span(c[0], c[2]))

    def stmt(self, c):
        return c[0]

    def block(self, c):
        return tuple(c[2])

    def stmts(self, c):
        if len(c) == 1:
            return [c[0]]
        c[0].append(c[1])
        return c[0]

    def menu_items(self, c):
        if len(c) == 2:
            return [c[0]]
        c[0].append(c[1])
        return c[0]

    # -- statements ---------------------------------------------------------------------------
    # A rule ``NAME_stmt`` without a method here builds the AST statement class named NAME (``wait_stmt``
    # -> ``A.Wait``) from its children in field order: built in ``__init__`` by ``_statement_builder``.
    def __default__(self, data, children, meta):
        if data.endswith("_stmt"):
            raise TypeError(f"the grammar rule '{data}' has no AST builder; name it after an AST "
                            "statement (NAME_stmt) or add a method to _AstBuilder")
        return super().__default__(data, children, meta)   # Lark's own helper rules (inlined)

    def _statement_builder(self, cls: type):
        """The callback of ``cls``'s rule: its fields from the children in order (see ``_statement_plan``)."""
        converters = _statement_plan(cls)
        rest = converters[-1] is tuple if converters else False
        if rest:
            converters = converters[:-1]
        # an earlier tuple field is one child that is a list (``destinations``)
        converters = [_list_to_tuple if convert is tuple else convert for convert in converters]
        fixed = len(converters)

        def build(children):
            values = [c for c in children if c.__class__ is not Token or c[0] in _OPERANDS]
            fields = [values[position] if convert is None else convert(self, values[position])
                      for position, convert in enumerate(converters)]
            if rest:
                fields.append(tuple(values[fixed:]))
            last = values[-1] if values else children[0]
            if last.__class__ is list:          # a statement ending in a list (several destinations)
                last = last[-1]
            return cls(*fields, _span(children[0], last))
        return build

    def destinations(self, c):
        if len(c) == 1:
            return [c[0]]
        c[0].append(c[-1])
        return c[0]

    def if_stmt(self, c):
        c = _meaningful(c)
        first = A.Branch(c[1], c[3], _span(c[0], c[2]))
        return A.If((first, *c[4:]), _span(c[0], c[2]))

    def elif_clause(self, c):
        c = _meaningful(c)
        return A.Branch(c[1], c[3], _span(c[0], c[2]))

    def else_clause(self, c):
        c = _meaningful(c)
        return A.Branch(None, c[2], _span(c[0], c[1]))

    def menu_stmt(self, c):
        c = _meaningful(c)
        head = c[0]
        colon = next(i for i, x in enumerate(c) if isinstance(x, Token) and x.type == "COLON")
        before, items = c[1:colon], c[colon + 1]
        prompt = None
        if before and not isinstance(before[0], A.Option):
            prompt, before = before[0], before[1:]
        choices, handlers = [], {"invalid": [], "timeout": [], "failure": []}
        for item in items:
            if isinstance(item, A.Choice):
                choices.append(item)
            else:
                handlers[item[0]].append(item[1])
        extra = tuple(h for kind in ("invalid", "timeout") for h in handlers[kind][1:])
        extra += tuple(A.Handler("failure", f, None, f.span) for f in handlers["failure"][1:])
        return A.Menu(prompt, tuple(before), tuple(choices),
                      handlers["invalid"][0] if handlers["invalid"] else None,
                      handlers["timeout"][0] if handlers["timeout"] else None,
                      handlers["failure"][0] if handlers["failure"] else None,
                      _span(head, c[colon]), extra)

    def choice_item(self, c):
        target = c[2]
        return A.Choice(c[0], self._name(target) if target.type == "NAME" else None, _span(c[0], target))

    def repeat_target(self, c):
        return c[0]

    def invalid_item(self, c):
        return ("invalid", self._handler("invalid", c))

    def timeout_item(self, c):
        return ("timeout", self._handler("timeout", c))

    def _handler(self, kind, c):
        action = c[1]
        if isinstance(action, A.Name):
            return A.Handler(kind, action, None, _span(c[0], action))
        return A.Handler(kind, None, action, _span(c[0], action))

    def failure_item(self, c):
        return ("failure", self._name(c[2]))

    def goto_handler(self, c):
        return self._name(c[1])

    def say_handler(self, c):
        return A.TtsRef(self._template(c[1]), _span(c[0], c[1]))

    def play_handler(self, c):
        return c[1]

    # -- options -------------------------------------------------------------------------------
    def _option(kind, convert=lambda self, tok: tok):  # noqa: N805 - factory used in the class body
        def build(self, c):
            if len(c) == 1:
                return A.Option(kind, True, _token_span(c[0]))
            return A.Option(kind, convert(self, c[1]), _span(c[0], c[1]))
        return build

    _count = staticmethod(lambda self, tok: A.Count(int(tok.value), _token_span(tok)))
    digits_option = _option("digits", _count)
    max_count_option = _option("max", _count)
    tries_option = _option("tries", _count)
    terminator_option = _option("terminator")
    prompt_option = _option("prompt")
    secret_option = _option("secret")
    beep_option = _option("beep")
    timeout_option = _option("timeout")
    interdigit_option = _option("interdigit")
    max_time_option = _option("max")
    silence_option = _option("silence")
    callerid_option = _option("callerid")
    announce_option = _option("announce")
    recorded_option = _option("record")
    into_option = _option("into", lambda self, tok: _AstBuilder._name(tok))
    del _option, _count

    def ring_all_option(self, c):
        return A.Option("ring", "all", _span(c[0], c[-1]))

    def ring_in_order_option(self, c):
        return A.Option("ring", "in order", _span(c[0], c[-1]))

    def with_option(self, c):
        return A.Option("with", tuple(c[1]), _span(c[0], c[1][-1]))

    def with_pairs(self, c):
        if len(c) == 1:
            return [c[0]]
        c[0].append(c[2])
        return c[0]

    def with_pair(self, c):
        key = c[0]
        text = self._plain(key) if key.type == "STRING" else str(key)
        return A.Pair(text, _token_span(key), c[2], _span(key, c[2]))

    def key(self, c):
        token = c[0]
        if isinstance(token, A.Key):
            return token
        if token.type == "STRING":
            return A.Key(self._plain(token), _token_span(token), quoted=True)
        return A.Key(str(token), _token_span(token), quoted=False)

    def star_key(self, c):
        return A.Key("*", _token_span(c[0]), quoted=False)

    def hash_key(self, c):
        return A.Key("#", _token_span(c[0]), quoted=False)

    def duration(self, c):
        token = c[0]
        text = str(token)
        if token.type == "INT":
            return A.Duration(int(text), _token_span(token), unit_missing=True)
        return A.Duration(parse_duration_ms(text), _token_span(token))   # the lexer made it a valid one

    # -- prompts ------------------------------------------------------------------------------------
    def tts_ref(self, c):
        return A.TtsRef(self._template(c[0]), _token_span(c[0]))

    def named_ref(self, c):
        return A.NamedRef(str(c[0]), _token_span(c[0]))

    def prompt_file(self, c):
        return A.FileRef(self._plain(c[1]), _span(c[0], c[1]))

    def prompt_sound(self, c):
        return A.SoundRef(self._plain(c[1]), _span(c[0], c[1]))

    # -- expressions -------------------------------------------------------------------------------
    def int_lit(self, c):
        return A.IntLit(int(c[0].value), _token_span(c[0]))

    def decimal_lit(self, c):
        return A.DecimalLit(c[0].value, _token_span(c[0]))

    def string_lit(self, c):
        return A.StrLit(self._template(c[0]), _token_span(c[0]))

    def name_ref(self, c):
        return A.NameRef(str(c[0]), _token_span(c[0]))

    def path_ref(self, c):
        name, *path = str(c[0]).split(".")
        return A.PathRef(name, tuple(path), _token_span(c[0]))

    def call(self, c):
        args = tuple(x for x in c[2:-1] if not isinstance(x, Token) and x is not None)
        return A.Call(str(c[0]), _token_span(c[0]), args, _span(c[0], c[-1]))

    def group(self, c):
        return c[1]

    def expr(self, c):
        return _Precedence(c[0], self.sink).parse()

    def run(self, c):
        if len(c) == 1:
            return c[0]
        items = c[0]
        items.append(c[1])
        items.extend(c[2])
        return items

    def operand(self, c):
        if len(c) == 1:
            return [c[0]]
        inner = c[1]
        inner.insert(0, c[0])
        return inner


# Tokens that are operands of a statement (the rest are its keyword, punctuation and layout).
_OPERANDS = frozenset({"NAME", "STRING", "INT", "DECIMAL", "DURATION"})
# How a statement's field is made from a token, by the field's annotation in ast.py.
_CONVERTERS = {"Name": lambda self, token: _AstBuilder._name(token), "Template": _AstBuilder._template,
               "Count": lambda self, token: A.Count(int(token.value), _token_span(token))}


def _list_to_tuple(builder, child: list) -> tuple:
    return tuple(child)


def _statement_plan(cls: type) -> list:
    """One converter per field of ``cls`` before its span: None keeps the child, ``tuple`` takes the rest."""
    converters = []
    for name in cls._fields:
        if name == "span":
            break
        annotation = cls.__annotations__[name]
        converters.append(tuple if annotation.startswith("tuple[") else _CONVERTERS.get(annotation))
    return converters


class _Precedence:
    """Precedence climbing over the flat run the grammar's ``expr`` rule yields.

    Loosest first: ``or``, ``and``, ``not``, comparisons (which do not chain),
    ``+ -``, ``* /``, unary ``-``.
    """

    BINARY = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
              "+": 5, "-": 5, "*": 6, "/": 6}
    COMPARISON = 4

    def __init__(self, items, sink: DiagnosticSink) -> None:
        self.items = items
        self.index = 0
        self.sink = sink

    def parse(self):
        return self._binary(1)

    def _binary(self, level: int, first=None):
        left = self._unary() if first is None else first
        items = self.items
        while self.index < len(items):
            op = str(items[self.index])
            prec = self.BINARY[op]
            if prec < level:
                break
            self.index += 1
            right = self._binary(prec + 1)
            left = A.Binary(op, left, right, _span(left, right))
            if prec == self.COMPARISON and self.index < len(items) \
                    and self.BINARY[str(items[self.index])] == self.COMPARISON:
                token = items[self.index]
                self.sink.error("comparisons do not chain; write 'a < b and b < c'", _token_span(token))
        return left

    def _unary(self):
        items = self.items
        prefixes = []
        while isinstance(items[self.index], Token) and items[self.index].type in ("NOT", "MINUS"):
            prefixes.append(items[self.index])
            self.index += 1
        operand = items[self.index]
        self.index += 1
        # minus signs after the last ``not`` bind to the operand itself ...
        while prefixes and prefixes[-1].type == "MINUS":
            sign = prefixes.pop()
            operand = A.Negate(operand, _span(sign, operand))
        # ... and ``not`` covers a whole comparison: ``not a == b`` is ``not (a == b)``.
        if prefixes:
            operand = self._binary(self.COMPARISON, first=operand)
            while prefixes:
                prefix = prefixes.pop()
                node = A.Not if prefix.type == "NOT" else A.Negate
                operand = node(operand, _span(prefix, operand))
        return operand


def plain_text_safe(raw: str) -> str:
    return raw[1:-1] if len(raw) >= 2 else raw


# -- the parser --------------------------------------------------------------------------------------

_WORDS = {
    "NAME": "a name", "DOTTED": "a name", "STRING": "a quoted string", "INT": "a number", "DECIMAL": "a number",
    "DURATION": "a duration such as 5s", "_NL": "the end of the line", "_INDENT": "an indented block",
    "_DEDENT": "the end of the block", "$END": "the end of the file", "COMPARE": "a comparison",
    "PLUS": "'+'", "MINUS": "'-'", "MUL": "'*' or '/'",
}


class _SyntaxProblem(Exception):
    """The parser met ``token`` where only ``expected`` terminals could go."""

    def __init__(self, token: Token, expected: set[str]) -> None:
        super().__init__(token.type)
        self.token = token
        self.expected = expected


class DialogueParser:
    """One parser; ``parse(text, path, sink)`` returns a Script. Not reentrant: one per thread.

    Lark builds the LALR tables and the callbacks from ``grammar/dialogue.lark``;
    the loop that feeds tokens through them lives here (``_run``), with the
    lexer of ``lexer.py``, because parse speed matters for large scripts.
    """

    def __init__(self) -> None:
        self._builder = _AstBuilder()
        tables = build_tables(grammar_text(), self._builder)
        self._literals = tables.literals
        # The keywords are the grammar's: a statement is a rule ``*_stmt`` that begins with its keyword.
        self.statement_keywords = self._leading_keywords(tables.rules, "_stmt")
        self.declaration_keywords = self._leading_keywords(tables.rules, "_decl")
        self.reserved_words = frozenset(word for word in self._literals.values()
                                        if word[0].isalpha() and word not in SOFT_KEYWORDS)
        self._lexer = DialogueLexer({value: name for name, value in self._literals.items()}, tables.patterns)
        self._start, self._end, self._actions = tables.start, tables.end, tables.actions
        # ``elif``/``else`` where no ``if`` can go on: said as such, and neutralised as an ``if``.
        self._orphans = frozenset(name for name, value in self._literals.items() if value in ("elif", "else"))

    def _leading_keywords(self, rules, suffix: str) -> tuple[str, ...]:
        found: dict[str, None] = {}
        for origin, first in rules:
            if origin.endswith(suffix) and first in self._literals:
                found[self._literals[first]] = None
        return tuple(found)

    def _run(self, text: str):
        """Feed the tokens of ``text`` through the LALR tables; return the value of ``start``."""
        table, soft = self._actions, self._lexer.soft_keyword_types
        state_stack = [self._start]
        value_stack: list = []
        push_state, push_value = state_stack.append, value_stack.append
        token = None
        for token in self._lexer.tokens(text):
            kind = token[0]
            while True:
                actions = table[state_stack[-1]]
                entry = actions.get(kind)
                if entry is None:
                    if kind in soft and "NAME" in actions:
                        kind = "NAME"
                        token = make_token(kind, *token[1:])
                        continue
                    raise _SyntaxProblem(token, {t for t in actions if t.isupper()})
                if entry.__class__ is int:
                    push_state(entry)
                    push_value(token)
                    break
                size, callback, origin = entry
                if size:
                    children = value_stack[-size:]
                    del state_stack[-size:]
                    del value_stack[-size:]
                else:
                    children = []
                push_value(callback(children))
                push_state(table[state_stack[-1]][origin])
        end = make_token("$END", "", len(text), token.end_line if token else 1, token.end_column if token else 1)
        while True:
            actions = table[state_stack[-1]]
            entry = actions.get("$END")
            if entry is None:
                raise _SyntaxProblem(end, {t for t in actions if t.isupper()})
            if entry.__class__ is int:
                return value_stack[-1]
            size, callback, origin = entry
            children = value_stack[-size:] if size else []
            if size:
                del state_stack[-size:]
                del value_stack[-size:]
            value_stack.append(callback(children))
            state_stack.append(table[state_stack[-1]][origin])
            if state_stack[-1] == self._end:
                return value_stack[-1]

    # -- entry point -----------------------------------------------------------------------------
    def parse(self, text: str, path: str, sink: DiagnosticSink) -> A.Script | None:
        """The Script; after syntax errors (all reported to ``sink``) the Script read around them.

        Each syntax error's line is replaced by a neutral line of the same shape (``_neutralise``) and
        the text is read again, so parsing resynchronises at the next statement or state. The lines
        replaced are in ``Script.recovered``: what is said about them afterwards is not the author's.
        None when the text could not be read to its end (too many errors, or a line that cannot be
        neutralised).
        """
        lines = _check_tabs(text, sink)
        reported = len(sink.items)
        if reported:
            text = "".join(line.replace("\t", " " * 4) for line in lines)
        tab_lines = {d.span.line for d in sink.items if d.span}
        attempt = text if text.endswith("\n") else text + "\n"
        recovered: dict[int, int] = {}          # line -> how many times it was neutralised
        _comment_choices(attempt, sink)
        while True:
            self._builder.sink = sink
            try:
                declarations = self._run(attempt)
            except (_SyntaxProblem, LexProblem) as exc:
                lines = attempt.splitlines(keepends=True)
                line_no = self._error_line(exc, lines)
                if line_no > len(lines) or recovered.get(line_no, 0) >= 2:
                    return None
                if line_no in recovered:        # our own neutral line does not fit: blank it, quietly
                    recovered[line_no] += 1
                    attempt = "".join(_neutralise(lines, line_no, self.reserved_words, blank=True))
                    continue
                self._report(exc, lines, sink, tab_lines)
                reported += 1
                if reported >= MAX_SYNTAX_ERRORS:
                    sink.error(f"too many syntax errors; stopping after {MAX_SYNTAX_ERRORS}", None)
                    return None
                if isinstance(exc, _SyntaxProblem) and exc.expected == {"_INDENT"}:
                    # A line ending in ':' with no block under it: read that line as a plain one instead
                    # (reading the line under it as the block would report each following line in turn).
                    opener = _opener_line(lines, line_no)
                    if opener is not None:
                        recovered[line_no] = 0      # a second error there is the same mistake: quiet
                        line_no = opener
                recovered[line_no] = 1
                keyword_alone = isinstance(exc, _SyntaxProblem) and exc.token.type in self._orphans
                attempt = "".join(_neutralise(lines, line_no, self.reserved_words, orphan=keyword_alone))
                continue
            finally:
                self._builder.sink = None
            recovered_lines = frozenset(recovered) | frozenset(tab_lines) if reported else frozenset()
            return A.Script(path, declarations, recovered_lines)

    # -- syntax errors in words ---------------------------------------------------------------------
    def _error_line(self, exc, lines: list[str]) -> int:
        if isinstance(exc, LexProblem):
            return exc.line
        token = exc.token
        if token.type in _LAYOUT or token.type == "$END":
            return _next_code_position(lines, token)[0]
        return token.line

    def _report(self, exc, lines: list[str], sink: DiagnosticSink, quiet_lines: set[int]) -> None:
        if isinstance(exc, LexProblem):
            if exc.line not in quiet_lines:
                sink.error(exc.message, A.Span(exc.line, exc.column, exc.line, exc.column + exc.length))
            return
        token = exc.token
        if token.type in _LAYOUT or token.type == "$END":
            line, column = _next_code_position(lines, token)
        else:
            line, column = token.line, token.column
        width = len(token.value) if token.type not in _LAYOUT else 1
        if line not in quiet_lines:
            sink.error(self._describe(token, exc.expected), A.Span(line, column, line, column + max(width, 1)))

    def _describe(self, token: Token, expected: set[str]) -> str:
        words = {self._word(t) for t in expected}
        statement_words = {f"'{k}'" for k in self.statement_keywords}
        declaration_words = {f"'{k}'" for k in self.declaration_keywords}
        if token.type == "_INDENT":
            return "unexpected indentation (this line is indented more than the block it is in)"
        if token.type in self._orphans and (len(words & statement_words) >= 5 or "_DEDENT" in expected):
            return (f"'{token}' without an 'if': {token} follows the block of an 'if' (or 'elif'), "
                    "at the same indentation as that 'if'")
        if token.value == "=" and "a comparison" in words:
            return "'=' assigns (in set and var); to compare write '=='"
        if token.value == "*" and "'star'" in words:
            return "the * key is written star (or \"*\" in quotes); a bare * multiplies"
        if token.value == "#" and "'hash'" in words:
            return "the # key is written hash (or \"#\" in quotes); a bare # starts a comment"
        if len(words & declaration_words) >= 5:
            if token.type == "NAME" and token.column == 1:
                return f"unknown declaration '{token}'" + suggest(str(token), self.declaration_keywords)
            words = (words - declaration_words) | {"a declaration"}
        if len(words & statement_words) >= 5:
            if token.type == "NAME":
                return f"unknown statement '{token}'" + suggest(str(token), self.statement_keywords)
            words = (words - statement_words) | {"a statement"}
        if token.type == "INT" and "a duration such as 5s" in words:
            return f"{token} has no unit; write {token}s"
        if token.type in self._literals and self._literals[token.type] in self.reserved_words and "a name" in words:
            return f"'{token}' is a reserved word and cannot be used as a name"
        return f"expected {_join(sorted(words, key=_word_order))}, found {self._found(token)}"

    @staticmethod
    def _found(token: Token) -> str:
        if token.type == "$END":
            return "the end of the file"
        if token.type == "_NL":
            return "the end of the line"
        if token.type == "_DEDENT":
            return "the end of the block"
        if token.type == "STRING":
            return f"the string {token}"
        return f"'{token}'"

    def _word(self, terminal: str) -> str:
        if terminal in _WORDS:
            return _WORDS[terminal]
        if terminal in self._literals:
            return f"'{self._literals[terminal]}'"
        return terminal.lower()


def _word_order(word: str) -> tuple[int, str]:
    return (0 if word.startswith("'") else 1, word)


def _join(words: list[str]) -> str:
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _next_code_position(lines: list[str], token: Token) -> tuple[int, int]:
    """Where the line after a layout token starts (layout tokens sit on the newline before it)."""
    start = (token.end_line or token.line or 1)
    if token.type == "$END":
        start = len(lines)
        last = lines[-1].rstrip("\r\n") if lines else ""
        return start, len(last) + 1
    if token.type == "_NL":
        line = token.line
        return line, token.column
    for index in range(start - 1, len(lines)):
        stripped = lines[index].strip()
        if stripped and not stripped.startswith("#"):
            return index + 1, len(lines[index]) - len(lines[index].lstrip(" ")) + 1
    return len(lines), 1


_TAB_IN_INDENT = re.compile(r"^[ ]*\t", re.MULTILINE)


def _check_tabs(text: str, sink: DiagnosticSink) -> list[str]:
    """Report every tab in indentation (the text's lines are returned; empty when there is none)."""
    if _TAB_IN_INDENT.search(text) is None:
        return []
    lines = text.splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            column = indent.index("\t") + 1
            sink.error("tab in indentation; indent with spaces only", A.Span(number, column, number, column + 1))
    return lines


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _opener_line(lines: list[str], line_no: int) -> int | None:
    """The code line before ``line_no`` when it ends with ':' (it opens a block), else None."""
    for index in range(line_no - 2, -1, -1):
        code = lines[index].split("#", 1)[0].rstrip() if '"' not in lines[index] else lines[index].rstrip()
        if code.strip():
            return index + 1 if code.endswith(":") else None
    return None


_NAMED = re.compile(r"(dialogue|start|var|param|prompt|hours|state|gather|record|set)[ ]+([A-Za-z_][A-Za-z0-9_]*)\b")
# A neutral line keeping the name a broken line defines, so the rest of the script still finds it.
_KEEP_NAME = {"dialogue": "dialogue {}", "start": "start {}", "var": "var {} = 0", "param": "param {} = \"\"",
              "prompt": "prompt {} = \"\"", "hours": "hours {} = \"daily 00:00-23:59\"", "state": "state {}:",
              "gather": "gather {}", "record": "record {}", "set": "set {} = 0"}
_NEUTRAL_CHOICE = '"*#*#*#" -> repeat'      # a menu line no real menu has: no duplicate key with the author's


def _neutralise(lines: list[str], line_no: int, reserved: frozenset[str], *, blank: bool = False,
                orphan: bool = False) -> list[str]:
    """Replace line ``line_no`` by a harmless line of the same shape, so parsing can go on."""
    lines = list(lines)
    index = line_no - 1
    if index >= len(lines):
        return lines
    line = lines[index]
    indent = _indent_of(line)
    stripped = line.strip()
    previous = next((lines[i] for i in range(index - 1, -1, -1)
                     if lines[i].strip() and not lines[i].strip().startswith("#")), "")
    if previous and indent > _indent_of(previous) and not previous.rstrip().endswith(":"):
        # Unexpected indentation: drop this line and the rest of its over-indented run.
        lines[index] = "\n"
        for follow in range(index + 1, len(lines)):
            if lines[follow].strip() and _indent_of(lines[follow]) < indent:
                break
            lines[follow] = "\n"
        return lines
    pad = " " * indent
    word = stripped.split(" ", 1)[0].split(":", 1)[0] if stripped else ""
    named = _NAMED.match(stripped)
    following = next((lines[i] for i in range(index + 1, len(lines))
                      if lines[i].strip() and not lines[i].strip().startswith("#")), "")
    opens_block = bool(following) and _indent_of(following) > indent
    parent = next((lines[i] for i in range(index - 1, -1, -1)
                   if lines[i].strip() and _indent_of(lines[i]) < indent), "")
    in_menu = parent.strip().startswith("menu")
    if named and named[2] in reserved:
        named = None
    if blank:
        replacement = ("if 1:" if indent else f"state __recover_{line_no}:") if opens_block else ""
    elif opens_block:
        if indent == 0:
            replacement = f"state {named[2]}:" if named and named[1] == "state" else f"state __recover_{line_no}:"
        elif word in ("menu", "elif", "else") and not orphan:
            replacement = {"menu": "menu:", "elif": "elif 1:", "else": "else:"}[word]
        else:
            replacement = "if 1:"
    elif in_menu:
        replacement = _NEUTRAL_CHOICE
    elif named and (indent == 0) == (named[1] in ("dialogue", "start", "var", "param", "prompt", "hours")):
        replacement = _KEEP_NAME[named[1]].format(named[2])
    elif indent == 0:
        replacement = ""
    else:
        replacement = "answer"
    if replacement.startswith("state ") and not opens_block:
        replacement = ""
    lines[index] = pad + replacement + "\n" if replacement else "\n"
    return lines


_COMMENT_CHOICE = re.compile(r"^([ ]+)#[ ]*->[ ]*[A-Za-z_][A-Za-z0-9_]*[ ]*\r?$", re.MULTILINE)


def _comment_choices(text: str, sink: DiagnosticSink) -> None:
    """Warn at a comment inside a menu that reads like a choice (``# -> bob``): the # key is ``hash``."""
    lines = None
    for found in _COMMENT_CHOICE.finditer(text):
        if lines is None:
            lines = text.splitlines()
        number = text.count("\n", 0, found.start()) + 1
        indent = len(found[1])
        parent = next((lines[i] for i in range(number - 2, -1, -1)
                       if lines[i].strip() and not lines[i].lstrip().startswith("#")
                       and _indent_of(lines[i]) < indent), "")
        if parent.strip().startswith("menu"):
            sink.warning("this comment looks like a menu choice, but # starts a comment: "
                         "the # key is written hash (or \"#\" in quotes)",
                         A.Span(number, indent + 1, number, len(found[0].rstrip()) + 1))
