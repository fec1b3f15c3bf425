"""The compiled dialogue (IR): a state machine as plain JSON-able data, loaded back with validation.

Shape (version 3)::

    {"format": "autocall.dialogue", "version": 1, "dialogue": NAME, "source": PATH,
     "settings": {"voice": str|null, "currency": str|null, "rate": int|null, "timeout_ms": int, "tries": int},
     "params": [{"name", "default": str|int|null}], "vars": [{"name", "init": EXPR}],
     "gathered": [NAME...], "secret": [NAME...],
     "services": {NAME: URL}, "replies": [NAME...],        (optional: absent means none)
     "prompts": {NAME: PROMPT}, "hours": {NAME: {"spec", "timezone", "windows": [[day, start, end]]}},
     "start": STATE, "states": {STATE: {"line": int, "code": [OP...], "file": PATH (included states only)}}}

    PROMPT   = {"kind": "tts", "text": TEMPLATE} | {"kind": "file", "path", "resolved"}
             | {"kind": "sound", "name"}
    TEMPLATE = [str | {"var": NAME, "format": "digits"|"money"|"date"|"time"|null[, "path": [SEGMENT...]]}, ...]
    EXPR     = ["int", n] | ["dec", "12.05"] | ["str", TEMPLATE] | ["var", NAME] | ["path", REPLY, [SEGMENT...]]
             | ["call", FUNC, [EXPR...]]
             | ["bin", OP, EXPR, EXPR] | ["not", EXPR] | ["neg", EXPR]

The web ops: ``{"op": "fetch"|"send", "name": REPLY|null, "service", "path": [LITERAL...],
"values": [EXPR...], "with": [[KEY, EXPR]...], "timeout_ms"}`` (the path is the literals with
each value, percent-encoded as one segment, between them) and ``{"op": "notify", "service",
"path", "values", "with"}``.

Each OP is a dict with "op" and "line"; ``if`` jumps to ``else`` (an index in
the same code list) when its condition is false, ``jump`` goes to ``to``. An
``if`` also says where its whole if/elif/else chain ends (``end``) and whether
it is an ``elif`` of the one before (``elif``), so readers such as the graph
never infer the structure from the jumps. Version 2 added ``end``/``elif``.
Version 3: ``transfer`` has ``dests`` (a list of EXPR; version 2's single
``dest`` is still read), ``ring`` (``all``/``order``), ``announce`` (PROMPT or
null) and ``record``; the op ``queue`` (``queue`` EXPR, ``timeout_ms``,
``announce``); a state from an included file names it (``file``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from autocall.engine.channel import FilePrompt, Prompt, TtsPrompt
from autocall.errors import UserError

FORMAT = "autocall.dialogue"
VERSION = 3
READABLE_VERSIONS = (2, 3)          # version 2 differs only in what version 3 added (see above)


@dataclass(frozen=True)
class OpKind:
    """What the flow analyses (checker, graph) need to know of an op kind; the one place it is said."""

    leaves: bool = False    # the state's code never goes on after it (goto, hangup, menu)
    waits: bool = False     # it waits for the caller or the clock: a loop through it is not a busy loop


# Every op kind of the IR. The interpreter's OPERATIONS table must have an entry for each (a test checks).
OPS: dict[str, OpKind] = {
    "answer": OpKind(), "play": OpKind(), "wait": OpKind(waits=True), "set": OpKind(),
    "menu": OpKind(leaves=True, waits=True), "gather": OpKind(waits=True), "if": OpKind(), "jump": OpKind(),
    "goto": OpKind(leaves=True), "transfer": OpKind(waits=True), "queue": OpKind(waits=True),
    "record": OpKind(waits=True),
    "result": OpKind(), "log": OpKind(), "optout": OpKind(), "hangup": OpKind(leaves=True),
    "fetch": OpKind(), "send": OpKind(), "notify": OpKind(),
}
# The built-in variables every call has: the checker knows them by name, the interpreter sets them.
BUILTINS = ("caller", "caller_name", "called", "channel", "call_id", "choice", "dialstatus", "queuestatus",
            "amd", "attempt")


@dataclass
class Program:
    """A compiled dialogue. ``data`` is the JSON form; everything else derives from it."""

    data: dict
    _runtime: object = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.data["dialogue"]

    @property
    def source(self) -> str:
        return self.data.get("source", "")

    @property
    def start(self) -> str:
        return self.data["start"]

    @property
    def states(self) -> dict:
        return self.data["states"]

    @property
    def params(self) -> list[dict]:
        return self.data["params"]

    def required_params(self) -> list[str]:
        return [p["name"] for p in self.data["params"] if p.get("default") is None]

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.data, indent=indent, ensure_ascii=False, sort_keys=False)

    @classmethod
    def from_json(cls, text: str, origin: str = "compiled dialogue") -> "Program":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{origin}: not JSON ({exc.msg} at line {exc.lineno}); "
                            "compile the .dlg again with 'autocall compile'") from None
        validate(data, origin)
        return cls(data)

    def static_prompts(self) -> list[Prompt]:
        """The prompts this dialogue can play that need no per-call data (for ``prompts build``)."""
        found: dict[tuple, Prompt] = {}
        voice = self.data["settings"].get("voice")
        rate = self.data["settings"].get("rate")

        def visit(prompt: dict | None) -> None:
            if not prompt:
                return
            if prompt["kind"] == "tts" and all(isinstance(part, str) for part in prompt["text"]):
                value = TtsPrompt("".join(prompt["text"]), voice, rate)
                found.setdefault(("tts", value.text), value)
            elif prompt["kind"] == "file":
                value = FilePrompt(prompt["path"], prompt["resolved"])
                found.setdefault(("file", value.resolved), value)

        for prompt in self.data["prompts"].values():
            visit(prompt)
        for state in self.data["states"].values():
            for op in state["code"]:
                visit(op.get("prompt"))
                visit(op.get("announce"))
                for handler in (op.get("invalid"), op.get("timeout")):
                    if handler:
                        visit(handler.get("prompt"))
        return list(found.values())


def validate(data: object, origin: str) -> None:
    """Refuse JSON that is not a compiled dialogue of this version, naming what is wrong."""
    def fail(what: str) -> None:
        raise UserError(f"{origin}: not a compiled AutoCall dialogue ({what}); "
                        "compile the .dlg again with 'autocall compile'")

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        fail(f"'format' is not \"{FORMAT}\"")
    if data.get("version") not in READABLE_VERSIONS:
        fail(f"version {data.get('version')!r}, this AutoCall reads version {VERSION}")
    for key, kind in (("dialogue", str), ("start", str), ("states", dict), ("settings", dict),
                      ("params", list), ("vars", list), ("gathered", list), ("secret", list),
                      ("prompts", dict), ("hours", dict)):
        if not isinstance(data.get(key), kind):
            fail(f"'{key}' is missing or not a {kind.__name__}")
    states = data["states"]
    if data["start"] not in states:
        fail(f"start state '{data['start']}' is not among the states")
    for name, state in states.items():
        if not isinstance(state, dict) or not isinstance(state.get("code"), list):
            fail(f"state '{name}' has no code list")
        size = len(state["code"])
        for op in state["code"]:
            if not isinstance(op, dict) or op.get("op") not in OPS:
                fail(f"state '{name}' has an unknown operation {op!r:.60}")
            for target in op_targets(op):
                if target not in states:
                    fail(f"state '{name}' goes to unknown state '{target}'")
            if op["op"] == "if" and not (isinstance(op.get("elif"), bool) and "end" in op):
                fail(f"state '{name}' has an 'if' without its chain's end")
            for key in ("else", "to", "end"):
                if key in op and not (isinstance(op[key], int) and 0 <= op[key] <= size):
                    fail(f"state '{name}' jumps outside its code")


def op_targets(op: dict) -> list[str]:
    """The states an operation can go to, in the order written: the one definition of "which states follow"."""
    kind = op["op"]
    if kind == "goto":
        return [op["state"]]
    if kind != "menu":
        return []
    found = [c["goto"] for c in op["choices"] if c.get("goto")]
    found += [h["goto"] for h in (op.get("invalid"), op.get("timeout")) if h and h.get("goto")]
    if op.get("failure"):
        found.append(op["failure"])
    return found


def next_ops(code: list[dict], index: int) -> tuple[int, ...]:
    """The operations of the same state that can run right after ``code[index]`` (``len(code)``: falling off)."""
    op = code[index]
    kind = op["op"]
    if OPS[kind].leaves:
        return ()
    if kind == "if":
        return (index + 1, op["else"])
    if kind == "jump":
        return (op["to"],)
    return (index + 1,)
