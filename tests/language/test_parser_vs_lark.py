"""Our fast parser (own lexer, own loop over Lark's tables) gives the same AST as stock Lark, public API only.

Stock Lark here: the same grammar, Lark's contextual lexer and its ``Indenter``
post-lexer, the same callbacks (``_AstBuilder``). Every example script, and
every golden script of the diagnostics tests that parses cleanly, must give an
equal AST (spans included). The Lark versions this covers are pinned in
pyproject.toml (``autocall.dsl.lark_tables.SUPPORTED``).
"""

from __future__ import annotations

from pathlib import Path

import lark
import pytest
from lark import Lark
from lark.indenter import Indenter

from autocall.dsl import ast as A
from autocall.dsl.diagnostics import DiagnosticSink
from autocall.dsl.lark_tables import SUPPORTED
from autocall.dsl.lexer import make_token
from autocall.dsl.parser import DialogueParser, _AstBuilder, grammar_text

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = sorted((ROOT / "tests/language/golden").glob("*.dlg"))


def _parses(path: Path) -> bool:
    sink = DiagnosticSink(str(path))
    return DialogueParser().parse(path.read_text(encoding="utf-8"), str(path), sink) is not None and not sink.items


# Every example, and the golden scripts of the diagnostics tests that have no syntax error.
SCRIPTS = sorted((ROOT / "scripts_examples").glob("*.dlg")) + [path for path in GOLDEN if _parses(path)]


class DialogueIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types: list = []
    CLOSE_PAREN_types: list = []
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def process(self, stream):
        # Our callbacks take our token type (a tuple with the same attributes).
        for token in super().process(stream):
            yield make_token(token.type, str(token), token.start_pos or 0, token.line or 1, token.column or 1)


@pytest.fixture(scope="module")
def fast() -> DialogueParser:
    return DialogueParser()


@pytest.fixture(scope="module")
def stock():
    builder = _AstBuilder()
    parser = Lark(grammar_text(), parser="lalr", lexer="contextual", postlex=DialogueIndenter(),
                  transformer=builder, keep_all_tokens=True, maybe_placeholders=False)
    return parser, builder


def test_the_installed_lark_is_a_supported_one():
    from packaging.specifiers import SpecifierSet
    assert lark.__version__ in SpecifierSet(SUPPORTED)
    pinned = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"lark{SUPPORTED}"' in pinned


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_fast_parser_and_stock_lark_give_the_same_ast(script, fast, stock):
    text = script.read_text(encoding="utf-8")
    text = text if text.endswith("\n") else text + "\n"
    sink = DiagnosticSink(str(script))
    ours = fast.parse(text, str(script), sink)
    assert ours is not None and not sink.items
    parser, builder = stock
    builder.sink = DiagnosticSink(str(script))
    try:
        theirs = A.Script(str(script), parser.parse(text))
    finally:
        builder.sink = None
    assert len(ours.declarations) == len(theirs.declarations)
    for mine, other in zip(ours.declarations, theirs.declarations):
        assert mine == other


def test_a_lark_whose_tables_moved_gives_one_clear_message(monkeypatch):
    from autocall.dsl import lark_tables
    from autocall.errors import UserError

    class Reorganised(Lark):        # as if a Lark release moved its LALR tables elsewhere
        def __init__(self, *args, **options) -> None:
            super().__init__(*args, **options)
            self.parser = object()

    monkeypatch.setattr(lark_tables, "Lark", Reorganised)
    with pytest.raises(UserError, match=r"the installed Lark .* is not one AutoCall's parser supports.*pip install"):
        lark_tables.build_tables(grammar_text(), _AstBuilder())
