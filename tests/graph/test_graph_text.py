"""IR expressions rendered back to source: the text the graph's condition labels show must parse to the
same IR (checked by property over random expressions), with no parentheses beyond what precedence needs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autocall.graph.text import expression_text, key_text, template_text

HEADER = 'dialogue t\nvar a = 1\nvar b = "x"\nhours office = "mon-fri 09:00-17:00" in "Europe/Rome"\nstart s\n'


def condition_ir(compile_text, source: str) -> list:
    result = compile_text(f"{HEADER}state s:\n    if {source}:\n        hangup\n    set a = a + len(b)\n")
    assert result.ok, result.render()
    return result.program.states["s"]["code"][0]["cond"]


@pytest.mark.parametrize("source", [
    'a == 1',
    'not within(office)',
    'b == "1234"',
    'a + 1 < 3 and b != ""',
    'a - (a - 1) > -a',
    '(a + 1) * 2 >= 4 or not a == 2',
    'not (a or b)',
    '(a == 1) == (b == "x")',
    'len(b) <= a / 2',
    'b == "say \\"hi\\" {{literal}} {b} {a|digits}"',
])
def test_conditions_render_back_as_written(compile_text, source):
    assert expression_text(condition_ir(compile_text, source)) == source


def test_keys_render_as_the_script_writes_them():
    assert [key_text(k) for k in ("1", "0", "*", "#", "101", "*9", "#")] == \
        ["1", "0", "star", "hash", '"101"', '"*9"', "hash"]


def test_templates_escape_quotes_braces_and_backslashes():
    parts = ['a "q" {x} \\ ', {"var": "pin", "format": "digits"}, {"var": "n", "format": None}]
    assert template_text(parts) == '"a \\"q\\" {{x}} \\\\ {pin|digits}{n}"'


# -- property: render, parse again, same IR -------------------------------------------------------

atoms = st.one_of(
    st.builds(lambda n: ["int", n], st.integers(0, 999)),
    st.builds(lambda t: ["str", [t]] if t else ["str", []], st.text("ab xyz{}\"\\", max_size=6)),
    st.sampled_from([["var", "a"], ["var", "b"], ["call", "within", [["var", "office"]]]]),
)


def _extend(children):
    binary = st.builds(lambda op, l, r: ["bin", op, l, r],
                       st.sampled_from(["or", "and", "==", "!=", "<", ">=", "+", "-", "*", "/"]), children, children)
    return st.one_of(binary, st.builds(lambda e: ["not", e], children), st.builds(lambda e: ["neg", e], children),
                     st.builds(lambda e: ["call", "len", [e]], children))


expressions = st.recursive(atoms, _extend, max_leaves=8)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(expressions)
def test_any_expression_renders_to_text_that_parses_to_the_same_ir(compile_text, expr):
    text = expression_text(expr)
    assert condition_ir(compile_text, text) == _normalised(expr), text


def _normalised(expr: list) -> list:
    """The IR the compiler makes for an empty string literal: ``["str", []]``; otherwise unchanged."""
    if expr[0] == "str":
        return ["str", [part for part in expr[1] if part != ""]]
    if expr[0] == "bin":
        return ["bin", expr[1], _normalised(expr[2]), _normalised(expr[3])]
    if expr[0] in ("not", "neg"):
        return [expr[0], _normalised(expr[1])]
    if expr[0] == "call":
        return ["call", expr[1], [_normalised(a) for a in expr[2]]]
    return expr
