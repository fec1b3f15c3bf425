"""Mermaid output (``.mmd``): the flow graph as a ``flowchart``, for Markdown pages and wikis."""

from __future__ import annotations

from autocall.graph.dot import ACCENT, VISITED_FILL
from autocall.graph.layout import arrows, ended_in
from autocall.graph.model import Graph
from autocall.graph.path import Trace

START_ID = "callstart"   # state ids are prefixed s_, end markers e_: no clash, and never Mermaid's `end`


def render_mermaid(graph: Graph, trace: Trace | None = None, title: str | None = None) -> str:
    """Mermaid ``flowchart TD`` text; with ``trace``, the call's states and arrows are highlighted."""
    lines = ["flowchart TD", f"    %% {_comment(title or graph.name)}"]
    links: list[bool] = []   # Mermaid numbers links in order of appearance; linkStyle needs those numbers

    lines.append(f"    {START_ID}((start)) --> {_state_id(graph.start)}")
    links.append(bool(trace and trace.steps))
    for node in graph.nodes.values():
        text = "<br/>".join([_escape(node.name)] + [_escape(d) for d in node.details])
        lines.append(f'    {_state_id(node.name)}["{text}"]')
    for state in graph.ending_states():
        lines.append(f'    {_end_id(state)}(("end"))')
    for arrow in arrows(graph):
        target = _end_id(arrow.source) if arrow.target is None else _state_id(arrow.target)
        label = "<br/>".join(_escape(line) for line in arrow.label_lines())
        link = "-.->" if arrow.dashed else "-->"
        lines.append(f'    {_state_id(arrow.source)} {link}|"{label}"| {target}')
        links.append(arrow.lit(trace))

    ends = [START_ID] + [_end_id(state) for state in graph.ending_states()]
    lines.append("    classDef terminal fill:#222,stroke:#222,color:#fff")
    lines.append(f"    class {','.join(ends)} terminal")
    if trace is not None:
        lines.append(f"    classDef visited fill:{VISITED_FILL},stroke:{ACCENT},stroke-width:2px")
        visited = [_state_id(name) for name in graph.nodes if name in trace.visited]
        visited += [_end_id(state) for state in graph.ending_states() if ended_in(trace, state)]
        if visited:
            lines.append(f"    class {','.join(visited)} visited")
        lit = [str(number) for number, on in enumerate(links) if on]
        if lit:
            lines.append(f"    linkStyle {','.join(lit)} stroke:{ACCENT},stroke-width:3px")
    return "\n".join(lines) + "\n"


def _state_id(name: str) -> str:
    return f"s_{name}"


def _end_id(name: str) -> str:
    return f"e_{name}"


def _escape(text: str) -> str:
    """Text inside a quoted Mermaid label: Mermaid's entity codes for the characters it would parse."""
    text = text.replace("#", "#35;")
    for char, code in (('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("|", "#124;"), ("&", "#amp;")):
        text = text.replace(char, code)
    return text


def _comment(text: str) -> str:
    return " ".join(text.split())
