"""A call's way through the flow graph: which edge each step took, and the path as one line of text."""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field

from autocall.engine.ir import Program
from autocall.engine.record import ENDED_CALLER, ENDED_ERROR, ENDED_HANGUP
from autocall.engine.dial import DIAL_ANSWERED
from autocall.graph.model import (ANSWERED, FAILURE, INVALID, KEY, MENU_KINDS, REPEAT, TIMEOUT, Edge, Graph,
                                  build_graph)


@dataclass
class Step:
    state: str
    target: str | None        # the next state; None for the last state
    edges: list[Edge]          # the edge taken; several when the path alone cannot tell which


@dataclass
class Trace:
    """A call's path laid on a graph (for highlighting and for ``render_path_text``)."""

    steps: list[Step] = field(default_factory=list)
    ended_by: str | None = None

    @property
    def visited(self) -> set[str]:
        return {step.state for step in self.steps}

    @property
    def taken(self) -> set[Edge]:
        return {edge for step in self.steps for edge in step.edges}


def trace_path(graph: Graph, program: Program, path: list[str], inputs: list[dict] | None = None,
               ended_by: str | None = None, transfers: list[dict] | None = None) -> Trace:
    """Lay ``path`` (states entered, in order) on ``graph``.

    With the call's ``inputs`` (``CallRecord.inputs``), a step out of a menu
    takes the edge of the key pressed (or the timeout, invalid, failure); without
    them, every edge between the two states is taken. ``ended_by`` decides whether
    the last state's ending edges count: yes for ``hangup`` or when unknown; with
    ``transfers``, an answered last transfer tells that ending from the others.
    """
    menus = _MenuInputs(program, inputs)
    trace = Trace(ended_by=ended_by)
    for position, state in enumerate(path):
        target = path[position + 1] if position + 1 < len(path) else None
        if target is None and ended_by in (ENDED_CALLER, ENDED_ERROR):
            trace.steps.append(Step(state, None, []))
            continue
        candidates = graph.edges_between(state, target)
        if target is None and transfers is not None:
            candidates = _by_transfer(candidates, transfers)
        menu_edges = [e for e in candidates if e.kind in MENU_KINDS]
        chosen = menus.choose(state, menu_edges[0].op_index, candidates) if menu_edges else None
        trace.steps.append(Step(state, target, [chosen] if chosen else candidates))
    return trace


def _by_transfer(candidates: list[Edge], transfers: list[dict]) -> list[Edge]:
    """The ending edges a call's transfers allow: `answered` only if one of its transfers was answered."""
    # a ring group lists the destinations it rang after the one that answered: any answer ends the call
    answered = any(t.get("dialstatus") == DIAL_ANSWERED for t in transfers)
    kept = [e for e in candidates if (e.kind == ANSWERED) == answered]
    return kept or candidates


class _MenuInputs:
    """The menu inputs of a call, per state, consumed one menu run at a time."""

    def __init__(self, program: Program, inputs: list[dict] | None) -> None:
        self.program = program
        self.queues: dict[str, deque] = defaultdict(deque)
        for entry in inputs or []:
            if entry.get("op") == "menu":
                self.queues[entry["state"]].append(entry)

    def choose(self, state: str, op_index: int, candidates: list[Edge]) -> Edge | None:
        """The edge that one run of the menu at ``op_index`` took, replaying its tries."""
        queue = self.queues.get(state)
        if not queue:
            return None
        menu = self.program.states[state]["code"][op_index]
        repeats = {c["keys"] for c in menu["choices"] if c.get("repeat")}
        failures = 0
        wanted: tuple[str, str] | None = None
        while queue and wanted is None:
            entry = queue.popleft()
            outcome = entry.get("outcome")
            if outcome == "match":
                if entry["keys"] not in repeats:
                    wanted = (KEY, entry["keys"])
                continue
            failures += 1
            kind = INVALID if outcome == "invalid" else TIMEOUT
            handler = menu.get(kind)
            if handler and handler.get("goto"):
                wanted = (kind, "")
            elif failures >= menu["tries"]:
                wanted = (FAILURE, "")
        for edge in candidates:
            if wanted and (edge.kind, edge.keys) == wanted and edge.op_index == op_index:
                return edge
        return None


def render_path_text(program: Program, path, inputs: list[dict] | None = None, ended_by: str | None = None,
                     width: int | None = 78) -> str:
    """A call's path as terminal text: ``main --2--> login --if pin == "1234"--> account ...``.

    ``path`` is a list of state names, or a ``CallRecord`` (its path, inputs and
    ended_by are used). Lines wrap before an arrow at ``width`` (None: one line).
    """
    transfers = None
    if hasattr(path, "path"):
        inputs = path.inputs if inputs is None else inputs
        ended_by = path.ended_by if ended_by is None else ended_by
        transfers = path.transfers
        path = path.path
    return render_trace_text(trace_path(build_graph(program), program, list(path), inputs, ended_by, transfers),
                             width)


def render_trace_text(trace: Trace, width: int | None = 78) -> str:
    """``render_path_text`` for a call already traced (``trace_path``)."""
    if not trace.steps:
        return "(no state entered)"
    pieces = [trace.steps[0].state]
    for step in trace.steps:
        label = _step_label(step.edges)
        if step.target is not None:
            pieces.append(f"--{label}--> {step.target}")
        elif step.edges:
            pieces.append(f"--{label}--> (end)")
    if trace.ended_by == ENDED_CALLER:
        pieces.append("(caller hung up)")
    elif trace.ended_by == ENDED_ERROR:
        pieces.append("(error)")
    elif trace.ended_by not in (None, ENDED_HANGUP):
        pieces.append(f"({trace.ended_by})")
    return _wrap(pieces, width)


def _step_label(edges: list[Edge]) -> str:
    labels: list[str] = []
    for edge in edges:
        if edge.kind != REPEAT and edge.label not in labels:
            labels.append(edge.label)
    return "/".join(labels) or "?"


def _wrap(pieces: list[str], width: int | None) -> str:
    lines = [pieces[0]]
    for piece in pieces[1:]:
        if width is not None and len(lines[-1]) + 1 + len(piece) > width:
            lines.append("    " + piece)
        else:
            lines[-1] += " " + piece
    return "\n".join(lines)
