"""DOT and Mermaid output: valid syntax (DOT checked by the real Graphviz when installed), labels escaped,
parallel edges merged into one labelled arrow, and a traced call's states and arrows highlighted."""

from __future__ import annotations

import re
import shutil

import pytest

from autocall.errors import UserError
from autocall.graph import build_graph, render_dot, render_image, render_mermaid, trace_path
from autocall.graph.dot import ACCENT

SCRIPT = """dialogue shop
start main
state main:
    menu "Choose." interdigit 2s:
        1 -> sales
        2 -> sales
        "101" -> desk
        star -> repeat
        failure -> bye
state sales:
    if caller == "<vip> & \\"co\\"":
        goto desk
    transfer "PJSIP/sales"
    goto bye
state desk:
    transfer "PJSIP/101"
state bye:
    say "Bye."
    hangup
"""

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


@pytest.fixture
def program(compile_text):
    result = compile_text(SCRIPT)
    assert result.ok, result.render()
    return result.program


def test_dot_has_a_node_per_state_and_a_start_and_end_markers(program):
    text = render_dot(build_graph(program))
    assert text.startswith('digraph "shop" {') and text.rstrip().endswith("}")
    for state in ("main", "sales", "desk", "bye"):
        assert f'"{state}" [label=<<b>{state}</b>' in text
    assert '"(start)" -> "main";' in text
    assert '"desk (end)" [shape=doublecircle' in text and '"bye" -> "bye (end)" [label="hangup"];' in text


def test_dot_merges_keys_of_one_menu_into_one_arrow(program):
    text = render_dot(build_graph(program))
    assert '"main" -> "sales" [label="1, 2"];' in text
    assert '"main" -> "desk" [label="\\"101\\""];' in text
    assert '"main" -> "main" [label="star: repeat", style=dashed];' in text


def test_dot_escapes_quotes_and_html_in_labels(program):
    text = render_dot(build_graph(program))
    assert '"sales" -> "desk" [label="if caller == \\"<vip> & \\\\\\"co\\\\\\"\\""];' in text
    assert 'transfer &quot;PJSIP/sales&quot;' in text


def test_a_plain_end_is_not_labelled_beside_another_reason_to_end(program):
    text = render_dot(build_graph(program))
    assert '"desk" -> "desk (end)" [label="answered"];' in text


def test_dot_highlights_the_traced_call_and_greys_the_rest(program):
    graph = build_graph(program)
    trace = trace_path(graph, program, ["main", "sales", "bye"],
                       [{"state": "main", "op": "menu", "keys": "2", "outcome": "match"}], "hangup")
    text = render_dot(graph, trace, title="the call")
    assert 'label="the call"' in text
    assert re.search(r'"main" \[label=<[^\n]*fillcolor="#fff1c2"', text)
    assert re.search(r'"desk" \[label=<[^\n]*color="gray60"', text)
    assert f'"main" -> "sales" [label="1, 2", color="{ACCENT}"' in text
    assert '"main" -> "desk" [label="\\"101\\"", color="gray70"' in text
    assert f'"bye (end)" [shape=doublecircle, style=filled, fillcolor="{ACCENT}"' in text


@needs_dot
@pytest.mark.parametrize("fmt, magic", [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_graphviz_accepts_the_dot_text(program, fmt, magic):
    graph = build_graph(program)
    trace = trace_path(graph, program, ["main", "desk"])
    for text in (render_dot(graph), render_dot(graph, trace)):
        assert magic in render_image(text, fmt)[:1000]


def test_a_missing_graphviz_is_a_user_error_naming_the_fix(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(UserError, match=r"install graphviz \(apt-get install graphviz\) or write .dot/.mmd"):
        render_image("digraph {}", "svg")


@needs_dot
def test_graphviz_failing_is_a_user_error_with_its_message():
    with pytest.raises(UserError, match="Graphviz's dot failed"):
        render_image("digraph { this is not dot", "svg")


def test_mermaid_is_a_flowchart_with_safe_ids(program):
    text = render_mermaid(build_graph(program))
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    assert "    callstart((start)) --> s_main" in lines
    assert '    s_main -->|"1, 2"| s_sales' in lines
    assert '    s_main -.->|"star: repeat"| s_main' in lines
    assert '    s_bye -->|"hangup"| e_bye' in lines
    assert '    e_bye(("end"))' in lines
    # Mermaid's `end` keyword never appears as an id: every id is prefixed.
    assert not re.search(r"(^|\s)end(\s|$|\[|\()", text)


def test_mermaid_escapes_what_it_would_parse(program):
    text = render_mermaid(build_graph(program))
    assert '|"if caller == #quot;#lt;vip#gt; #amp; \\#quot;co\\#quot;#quot;"|' in text
    assert '"#quot;101#quot;"' in text


def test_mermaid_highlight_styles_the_traced_links_by_their_number(program):
    graph = build_graph(program)
    trace = trace_path(graph, program, ["main", "desk"],
                       [{"state": "main", "op": "menu", "keys": "101", "outcome": "match"}], "hangup")
    lines = render_mermaid(graph, trace).splitlines()
    links = [line for line in lines if "-->" in line or "-.->" in line]
    styled = next(line for line in lines if line.strip().startswith("linkStyle"))
    numbers = [int(n) for n in styled.split()[1].split(",")]
    assert [links[n].strip() for n in numbers] == ["callstart((start)) --> s_main",
                                                     's_main -->|"#quot;101#quot;"| s_desk',
                                                     's_desk -->|"answered"| e_desk']
    assert "    class s_main,s_desk,e_desk visited" in lines
