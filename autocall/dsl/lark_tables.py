"""The one module that reads Lark's internals: its LALR tables and rule callbacks, reshaped for our parse loop.

The parser (``parser.py``) feeds the tokens of ``lexer.py`` through Lark's
LALR tables with a loop of its own, because that is several times faster
than Lark's. Lark does not promise the layout of those tables, so everything
taken from them is taken here, once, when the parser is built: a Lark
release that changes them fails with one clear message instead of an
AttributeError inside ``check``, ``simulate`` or the server.
``tests/language/test_parser_vs_lark.py`` compares our ASTs with stock Lark's
(public API only) on every example script; ``SUPPORTED`` is the Lark range it
covers, pinned in ``pyproject.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass

import lark
from lark import Lark

from autocall.errors import UserError

SUPPORTED = ">=1.2.2,<1.4"


@dataclass(frozen=True)
class Tables:
    """What the parse loop needs. ``actions[state][terminal or rule name]``: an int is the state to shift to
    (for a rule name: its goto), a tuple ``(size, callback, rule name)`` a reduction."""

    start: int
    end: int
    actions: dict[int, dict[str, object]]
    literals: dict[str, str]                 # terminal name -> its text, for keyword and punctuation terminals
    patterns: dict[str, str]                 # terminal name -> its regular expression, for the others
    rules: tuple[tuple[str, str | None], ...]   # (rule name, the first symbol's name) per rule


def build_tables(grammar: str, transformer) -> Tables:
    """Lark builds the tables and the callbacks (``transformer``'s methods) from ``grammar``; we take them."""
    parser = Lark(grammar, parser="lalr", lexer="basic", transformer=transformer,
                  keep_all_tokens=True, maybe_placeholders=False, cache=True)
    try:
        from lark.parsers.lalr_analysis import Shift

        literals = {t.name: t.pattern.value for t in parser.terminals if t.pattern.type == "str"}
        patterns = {t.name: t.pattern.value for t in parser.terminals if t.pattern.type == "re"}
        rules = tuple((rule.origin.name, rule.expansion[0].name if rule.expansion else None)
                      for rule in parser.rules)
        lalr = parser.parser.parser.parser
        table = lalr.parse_table
        reductions = {rule: (len(rule.expansion), lalr.callbacks[rule], rule.origin.name)
                      for rule in lalr.callbacks}
        actions: dict[int, dict[str, object]] = {}
        for state, entries in table.states.items():
            actions[state] = {symbol: (arg if action is Shift else reductions[arg])
                              for symbol, (action, arg) in entries.items()}
        return Tables(table.start_states["start"], table.end_states["start"], actions, literals, patterns, rules)
    except (AttributeError, KeyError, TypeError, ValueError, ImportError) as exc:
        raise UserError(f"the installed Lark {lark.__version__} is not one AutoCall's parser supports "
                        f"({exc.__class__.__name__}: {exc}); install a supported one: "
                        f"pip install 'lark{SUPPORTED}'") from None
