"""Graphviz output: the flow graph as DOT text, and SVG/PNG through Graphviz's ``dot`` when installed."""

from __future__ import annotations

from autocall.errors import UserError
from autocall.graph.layout import Arrow, arrows, ended_in
from autocall.graph.model import Graph
from autocall.graph.path import Trace

ACCENT = "#d9480f"
VISITED_FILL = "#fff1c2"
START_ID = "(start)"          # no state name contains parentheses or spaces
IMAGE_FORMATS = ("svg", "png")
MISSING_DOT = "install graphviz (apt-get install graphviz) or write .dot/.mmd"


def render_dot(graph: Graph, trace: Trace | None = None, title: str | None = None) -> str:
    """DOT text: a box per state (its name, then notable statements), labelled arrows, a dot where a call
    ends. With ``trace``, the states and arrows of that call are drawn in colour and the rest greyed."""
    lines = [f"digraph {_quote(graph.name)} {{",
             f"    graph [label={_quote(title or graph.name)}, labelloc=t, fontname=\"Helvetica\", "
             "fontsize=14, nodesep=0.4, ranksep=0.5];",
             '    node [shape=box, style="rounded", fontname="Helvetica", fontsize=12, margin="0.15,0.06"];',
             '    edge [fontname="Helvetica", fontsize=10];',
             f"    {_quote(START_ID)} [shape=circle, style=filled, fillcolor=black, label=\"\", "
             "width=0.18, fixedsize=true];",
             f"    {_quote(START_ID)} -> {_quote(graph.start)}{_attrs(_edge_style(trace, bool(trace and trace.steps)))};"]
    for node in graph.nodes.values():
        rows = [f"<b>{_html(node.name)}</b>"] + [f'<font point-size="10">{_html(d)}</font>' for d in node.details]
        attrs = {"label": "<" + "<br/>".join(rows) + ">"}
        if trace is not None:
            attrs.update({"style": '"rounded,filled"', "fillcolor": _quote(VISITED_FILL), "color": _quote(ACCENT),
                          "penwidth": "2"} if node.name in trace.visited
                         else {"color": '"gray60"', "fontcolor": '"gray40"'})
        lines.append(f"    {_quote(node.name)}{_attrs(attrs)};")
    for state in graph.ending_states():
        fill = ACCENT if ended_in(trace, state) else ("gray60" if trace is not None else "black")
        lines.append(f"    {_quote(_end_id(state))} [shape=doublecircle, style=filled, fillcolor={_quote(fill)}, "
                     f"color={_quote(fill)}, label=\"\", width=0.12, fixedsize=true];")
    for arrow in arrows(graph):
        lines.append(f"    {_arrow(arrow, trace)}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _arrow(arrow: Arrow, trace: Trace | None) -> str:
    target = _end_id(arrow.source) if arrow.target is None else arrow.target
    attrs = {"label": _quote("\n".join(arrow.label_lines()))}
    if arrow.dashed:
        attrs["style"] = "dashed"
    attrs.update(_edge_style(trace, arrow.lit(trace)))
    return f"{_quote(arrow.source)} -> {_quote(target)}{_attrs(attrs)};"


def _edge_style(trace: Trace | None, lit: bool) -> dict[str, str]:
    if trace is None:
        return {}
    if lit:
        return {"color": _quote(ACCENT), "fontcolor": _quote(ACCENT), "penwidth": "2.2"}
    return {"color": '"gray70"', "fontcolor": '"gray55"'}


def _end_id(state: str) -> str:
    return f"{state} (end)"


def _attrs(attrs: dict[str, str]) -> str:
    return " [" + ", ".join(f"{k}={v}" for k, v in attrs.items()) + "]" if attrs else ""


def _quote(text: str) -> str:
    """A DOT quoted string; backslashes doubled (DOT gives ``\\n``, ``\\N``... meanings), newlines as ``\\n``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def render_image(dot_text: str, fmt: str) -> bytes:
    """SVG or PNG bytes from DOT text through Graphviz's ``dot``; a UserError if it is missing or fails."""
    import shutil
    import subprocess

    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"not an image format: {fmt!r}")
    program = shutil.which("dot")
    if program is None:
        raise UserError(f"writing .{fmt} needs Graphviz's 'dot', which is not installed; {MISSING_DOT}")
    try:
        done = subprocess.run([program, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"Graphviz's dot could not run ({exc}); {MISSING_DOT}") from None
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UserError(f"Graphviz's dot failed ({reason[0] if reason else f'exit {done.returncode}'}); "
                        "write .dot instead and report the problem")
    return done.stdout
