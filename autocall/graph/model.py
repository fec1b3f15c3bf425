"""The flow graph of a compiled dialogue: a node per state, an edge per way of leaving it.

Pure data built from the IR (``autocall/engine/ir.py``); the renderers
(dot, Mermaid, path text) only read it. Edges are kept one per reason (a key,
a handler, a ``goto`` with its condition, an end of the call) so that a
simulated call can be traced edge by edge; renderers merge parallel ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autocall.engine.ir import Program, next_ops, op_targets
from autocall.graph.text import expression_text, key_text, shorten, web_path_text

# Edge kinds. Menu edges carry the menu's index in the state's code.
KEY = "key"            # a menu choice: labels are keys (1, star, "101")
REPEAT = "repeat"      # a menu choice that plays the menu again (a self-loop, not a new state)
INVALID = "invalid"    # `invalid -> STATE`
TIMEOUT = "timeout"    # `timeout -> STATE`
FAILURE = "failure"    # `failure -> STATE`, or the hang-up after the last try when there is none
GOTO = "goto"          # `goto STATE`, labelled with its condition when inside an `if`
HANGUP = "hangup"      # `hangup` (target None: the call ends)
ANSWERED = "answered"  # a `transfer` that was answered ends the call when the bridge ends
END = "end"            # falling off the end of the state ends the call

MENU_KINDS = frozenset({KEY, REPEAT, INVALID, TIMEOUT, FAILURE})
ENDING_KINDS = frozenset({HANGUP, ANSWERED, END})


@dataclass(frozen=True)
class Edge:
    source: str
    target: str | None      # None: the call ends in ``source``
    kind: str
    label: str              # what a reader sees: "2", "timeout", 'if pin == "1234"', "else", "hangup"
    op_index: int           # the operation in the source state's code (len(code) for falling off)
    line: int = 0
    keys: str = ""          # KEY/REPEAT: the raw keys ("1", "*", "101")

    @property
    def ends_call(self) -> bool:
        return self.target is None


@dataclass(frozen=True)
class Node:
    name: str
    line: int
    details: tuple[str, ...] = ()   # notable statements: gather pin, transfer "PJSIP/101", result "x"


@dataclass
class Graph:
    name: str
    source: str
    start: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def edges_between(self, source: str, target: str | None) -> list[Edge]:
        return [e for e in self.edges if e.source == source and e.target == target and e.kind != REPEAT]

    def ending_states(self) -> list[str]:
        """States with at least one edge that ends the call, in node order."""
        ending = {e.source for e in self.edges if e.ends_call}
        return [name for name in self.nodes if name in ending]


def build_graph(program: Program) -> Graph:
    """The flow graph of ``program``: only statements that can run contribute edges."""
    graph = Graph(program.name, program.source, program.start)
    for name, state in program.states.items():
        analysis = _CodeAnalysis(state["code"])
        graph.nodes[name] = Node(name, state.get("line", 0), tuple(_details(state["code"], analysis.reachable)))
        graph.edges.extend(_edges(name, state["code"], analysis))
    return graph


# -- edges of one state --------------------------------------------------------------------------

def _edges(state: str, code: list[dict], analysis: "_CodeAnalysis") -> list[Edge]:
    edges: list[Edge] = []
    for index, op in enumerate(code):
        if index not in analysis.reachable:
            continue
        kind, line = op["op"], op.get("line", 0)
        guard = analysis.guard(index)
        if kind == "goto":
            edges.append(Edge(state, op["state"], GOTO, guard or "goto", index, line))
        elif kind == "hangup":
            edges.append(Edge(state, None, HANGUP, f"{guard}: hangup" if guard else "hangup", index, line))
        elif kind in ("transfer", "queue"):
            edges.append(Edge(state, None, ANSWERED, "answered", index, line))
        elif kind == "menu":
            edges.extend(_menu_edges(state, op, index, line))
        else:       # any other op that names states (ir.op_targets): an edge to each
            edges.extend(Edge(state, target, GOTO, guard or kind, index, line) for target in op_targets(op))
    if len(code) in analysis.reachable:
        guard = analysis.guard(len(code))
        edges.append(Edge(state, None, END, guard or "end", len(code), code[-1].get("line", 0) if code else 0))
    return edges


def _menu_edges(state: str, op: dict, index: int, line: int) -> list[Edge]:
    edges = []
    for choice in op["choices"]:
        label = key_text(choice["keys"])
        if choice.get("repeat"):
            edges.append(Edge(state, state, REPEAT, f"{label}: repeat", index, line, choice["keys"]))
        else:
            edges.append(Edge(state, choice["goto"], KEY, label, index, line, choice["keys"]))
    for kind in (INVALID, TIMEOUT):
        handler = op.get(kind)
        if handler and handler.get("goto"):
            edges.append(Edge(state, handler["goto"], kind, kind, index, line))
    edges.append(Edge(state, op.get("failure"), FAILURE, FAILURE, index, line))
    return edges


def _details(code: list[dict], reachable: set[int]) -> list[str]:
    """The statements worth seeing inside a node, once each, in code order."""
    found: list[str] = []
    for index, op in enumerate(code):
        if index not in reachable:
            continue
        kind = op["op"]
        if kind == "gather":
            text = f"gather {op['name']}" + (" (secret)" if op.get("secret") else "")
        elif kind == "transfer":
            destinations = op["dests"] if "dests" in op else [op["dest"]]
            text = "transfer " + ", ".join(expression_text(d) for d in destinations)
            if len(destinations) > 1 and op.get("ring") == "order":
                text += " (in order)"
        elif kind == "queue":
            text = f"queue {expression_text(op['queue'])}"
        elif kind == "record":
            text = f"record {op['name']}"
        elif kind == "result":
            text = f"result {expression_text(op['expr'])}"
        elif kind == "optout":
            text = "optout"
        elif kind in ("fetch", "send", "notify"):
            path = web_path_text(op["path"], op["values"])
            text = (f"fetch {op['name']} from {op['service']} {path}" if kind == "fetch"
                    else f"{kind} {op['service']} {path}")
        else:
            continue
        text = shorten(text)
        if text not in found:
            found.append(text)
    return found


# -- control flow inside one state's code ----------------------------------------------------------

class _CodeAnalysis:
    """Which operations can run, and under which `if`/`elif`/`else` each one runs.

    Read from the IR: an ``if`` at k owns the "then" region (k, else-1) (its
    body, before the jump that closes it) and the "else" region [else, end),
    where ``end`` is where its whole chain ends; an ``elif`` is marked so.
    """

    def __init__(self, code: list[dict]) -> None:
        self.code = code
        self.reachable = self._reachable()
        self.ifs: dict[int, tuple[int, int]] = {index: (op["else"], op["end"])     # if index -> (else, end)
                                                for index, op in enumerate(code) if op["op"] == "if"}
        self.elifs = {index for index, op in enumerate(code) if op["op"] == "if" and op["elif"]}

    def _reachable(self) -> set[int]:
        code, seen, todo = self.code, set(), [0]
        while todo:
            index = todo.pop()
            if index in seen:
                continue
            seen.add(index)
            if index < len(code):
                todo.extend(next_ops(code, index))
        return seen

    def _regions(self, index: int) -> list[tuple[int, str]]:
        """The if-regions containing ``index``, outermost first: (if index, "then" | "else")."""
        found = []
        for k, (otherwise, end) in self.ifs.items():
            if k < index < otherwise - 1:
                found.append((k, "then"))
            elif otherwise <= index < end:
                found.append((k, "else"))
        return sorted(found)

    def _context(self, index: int) -> tuple[int, str] | None:
        regions = self._regions(index)
        return regions[-1] if regions else None

    def guard(self, index: int) -> str | None:
        """The condition under which the operation at ``index`` runs, as the author reads it."""
        regions = self._regions(index)
        parts: list[str] = []
        for position, (k, side) in enumerate(regions):
            following = regions[position + 1][0] if position + 1 < len(regions) else None
            if side == "then":
                word = "elif" if k in self.elifs else "if"
                parts.append(f"{word} {expression_text(self.code[k]['cond'])}")
            elif following is None or following != self.ifs[k][0] or following not in self.elifs:
                parts.append("else")
        if self._after_leaving_branch(index) and (not parts or parts[-1] != "else"):
            parts.append("else")
        return ", ".join(parts) or None

    def _after_leaving_branch(self, index: int) -> bool:
        """True when an earlier `if` at the same level always leaves the state in a "then" branch:
        the operation then runs only when that condition was false (an implicit ``else``)."""
        context = self._context(index)
        for k, (otherwise, end) in self.ifs.items():
            if k in self.elifs or end > index or self._context(k) != context:
                continue
            chain = [k]
            while self.ifs[chain[-1]][0] in self.elifs:
                chain.append(self.ifs[chain[-1]][0])
            if any(self.ifs[link][0] - 1 not in self.reachable for link in chain):
                return True
        return False
