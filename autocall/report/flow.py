"""The dialogue's flow graph with the period's traffic: each arrow labelled with the calls that took it and
drawn thicker for more, each state coloured by the share of callers who hung up there (DOT for Graphviz)."""

from __future__ import annotations

from autocall.engine.ir import Program
from autocall.engine.record import EXIT_END, EXIT_ERROR, EXIT_HANGUP
from autocall.graph import build_graph
from autocall.graph.dot import _html, _quote

MIN_PEN, MAX_PEN = 1.0, 9.0
IDLE = "#ced4da"
ENDINGS = {EXIT_HANGUP: ("caller hung up", "#e03131"), EXIT_ERROR: ("error", "#862e9c"),
           EXIT_END: ("dialogue ended the call", "#1f2933")}
START_ID = "(start)"


def hangup_colour(share: float | None) -> str:
    """White for no hang-ups, to full red at half the callers or more."""
    level = min((share or 0) * 2, 1.0)
    green_blue = round(255 - level * (255 - 49))
    return f"#ff{green_blue:02x}{green_blue:02x}" if level else "#ffffff"


def flow_dot(program: Program, states: dict[str, dict], title: str) -> str:
    """DOT text: the IR's states and arrows, with the traffic of ``states`` (the report's entries of this
    script: ``entered``, ``visits``, ``exits``). Arrows no call took are thin and grey; states the calls went
    through that the script no longer has are drawn dashed."""
    graph = build_graph(program)
    traffic = {entry["state"]: entry for entry in states.values()}
    lines = [f"digraph {_quote(program.name)} {{",
             f"    graph [label={_quote(title)}, labelloc=t, fontname=\"Helvetica\", fontsize=14, "
             "nodesep=0.35, ranksep=0.55];",
             '    node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
             '    edge [fontname="Helvetica", fontsize=10];',
             f"    {_quote(START_ID)} [shape=circle, style=filled, fillcolor=black, label=\"\", width=0.18, "
             "fixedsize=true];"]
    starts = sum(entry["entered"] for entry in traffic.values() if entry["state"] == program.start)
    busiest = max([starts, *(count for entry in traffic.values() for count in entry["exits"].values())]) or 1
    lines.append(f"    {_quote(START_ID)} -> {_quote(program.start)} [label={_quote(f'{starts:,}')}, "
                 f"penwidth={_pen(starts, busiest)}];")
    names = list(graph.nodes) + [name for name in traffic if name not in graph.nodes]
    for name in names:
        entry = traffic.get(name)
        rows = [f"<b>{_html(name)}</b>"]
        if entry:
            share = entry["hangup_share"] or 0
            rows.append(f'<font point-size="9">{entry["entered"]:,} calls, {share * 100:.0f}% hung up here</font>')
        else:
            rows.append('<font point-size="9">no calls</font>')
        style = '"rounded,filled,dashed"' if name not in graph.nodes else '"rounded,filled"'
        fill = hangup_colour(entry["hangup_share"]) if entry else "#f8f9fa"
        colour = "#495057" if entry else IDLE
        lines.append(f"    {_quote(name)} [label=<{'<br/>'.join(rows)}>, style={style}, fillcolor={_quote(fill)}, "
                     f"color={_quote(colour)}];")
    used_endings = set()
    drawn = set()
    for name, entry in traffic.items():
        for target, count in entry["exits"].items():
            if target in ENDINGS:
                used_endings.add(target)
            drawn.add((name, target))
            share = count / entry["visits"] if entry["visits"] else 0
            lines.append(f"    {_quote(name)} -> {_quote(target)} [label={_quote(f'{count:,} ({share:.0%})')}, "
                         f"penwidth={_pen(count, busiest)}, color=\"#1c7ed6\", fontcolor=\"#1864ab\"];")
    for edge in graph.edges:
        if edge.target is not None and (edge.source, edge.target) not in drawn and edge.source != edge.target:
            drawn.add((edge.source, edge.target))
            lines.append(f"    {_quote(edge.source)} -> {_quote(edge.target)} [label=\"0\", color={_quote(IDLE)}, "
                         f"fontcolor={_quote(IDLE)}, style=dashed];")
    for ending in sorted(used_endings):
        label, colour = ENDINGS[ending]
        lines.append(f"    {_quote(ending)} [shape=plaintext, style=\"\", label={_quote(label)}, "
                     f"fontcolor={_quote(colour)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _pen(count: int, busiest: int) -> str:
    return f"{MIN_PEN + (MAX_PEN - MIN_PEN) * count / busiest:.2f}"
