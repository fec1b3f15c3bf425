"""What both renderers draw: parallel edges merged into one arrow, and which parts a trace lights up."""

from __future__ import annotations

from dataclasses import dataclass

from autocall.graph.model import END, KEY, REPEAT, Edge, Graph
from autocall.graph.path import Trace


@dataclass
class Arrow:
    """One drawn arrow: every edge between two nodes (repeats drawn apart, dashed)."""

    source: str
    target: str | None      # None: the source state's end marker
    dashed: bool
    edges: list[Edge]

    def label_lines(self) -> list[str]:
        """Keys of one menu on one line ("1, 2, 3"), every other reason on its own line; a plain
        "end" (falling off the state) is left out beside another reason to end."""
        lines: list[str] = []
        menu_line: dict[int, int] = {}
        for edge in self.edges:
            if edge.kind in (KEY, REPEAT):
                if edge.op_index in menu_line:
                    lines[menu_line[edge.op_index]] += f", {edge.label}"
                    continue
                menu_line[edge.op_index] = len(lines)
            if edge.label not in lines:
                lines.append(edge.label)
        if len(lines) > 1 and END in lines and any(e.kind == END and e.label == END for e in self.edges):
            lines.remove(END)
        return lines

    def lit(self, trace: Trace | None) -> bool:
        return trace is not None and any(edge in trace.taken for edge in self.edges)


def arrows(graph: Graph) -> list[Arrow]:
    """The graph's edges grouped per (source, target, dashed), in first-seen order."""
    grouped: dict[tuple, Arrow] = {}
    for edge in graph.edges:
        dashed = edge.kind == REPEAT
        key = (edge.source, edge.target, dashed)
        if key not in grouped:
            grouped[key] = Arrow(edge.source, edge.target, dashed, [])
        grouped[key].edges.append(edge)
    return list(grouped.values())


def ended_in(trace: Trace | None, state: str) -> bool:
    """True when the traced call ended in ``state`` through one of its ending edges."""
    return trace is not None and any(e.source == state and e.ends_call for e in trace.taken)
