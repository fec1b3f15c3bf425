"""The compiled dialogue (IR): a state machine as plain JSON-able data, loaded back with validation.

Shape (version 1)::

    {"format": "autocall.dialogue", "version": 1, "dialogue": NAME, "source": PATH,
     "settings": {"voice": str|null, "rate": int|null, "timeout_ms": int, "tries": int},
     "params": [{"name", "default": str|int|null}], "vars": [{"name", "init": EXPR}],
     "gathered": [NAME...], "secret": [NAME...],
     "prompts": {NAME: PROMPT}, "hours": {NAME: {"spec", "timezone", "windows": [[day, start, end]]}},
     "start": STATE, "states": {STATE: {"line": int, "code": [OP...]}}}

    PROMPT   = {"kind": "tts", "text": TEMPLATE} | {"kind": "file", "path", "resolved"}
             | {"kind": "sound", "name"}
    TEMPLATE = [str | {"var": NAME, "format": "digits"|null}, ...]
    EXPR     = ["int", n] | ["str", TEMPLATE] | ["var", NAME] | ["call", FUNC, [EXPR...]]
             | ["bin", OP, EXPR, EXPR] | ["not", EXPR] | ["neg", EXPR]

Each OP is a dict with "op" and "line"; ``if`` jumps to ``else`` (an index in
the same code list) when its condition is false, ``jump`` goes to ``to``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from autocall.engine.channel import FilePrompt, Prompt, TtsPrompt
from autocall.errors import UserError

FORMAT = "autocall.dialogue"
VERSION = 1
OPS = frozenset({"answer", "play", "wait", "set", "menu", "gather", "if", "jump", "goto", "transfer",
                 "record", "result", "log", "optout", "hangup"})
# The built-in variables every call has: the checker knows them by name, the interpreter sets them.
BUILTINS = ("caller", "caller_name", "called", "channel", "call_id", "choice", "dialstatus", "amd",
            "attempt")


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

    def value_names(self) -> list[str]:
        """Every name ``--set`` or a call may fill: params, vars and gathered values."""
        return ([p["name"] for p in self.data["params"]] + [v["name"] for v in self.data["vars"]]
                + list(self.data["gathered"]))

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
    if data.get("version") != VERSION:
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
            for target in _targets(op):
                if target not in states:
                    fail(f"state '{name}' goes to unknown state '{target}'")
            for key in ("else", "to"):
                if key in op and not (isinstance(op[key], int) and 0 <= op[key] <= size):
                    fail(f"state '{name}' jumps outside its code")


def _targets(op: dict) -> list[str]:
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


def state_targets(state: dict) -> list[str]:
    """The states one state can go to, in code order (for graphs and reachability)."""
    out: list[str] = []
    for op in state["code"]:
        for target in _targets(op):
            if target not in out:
                out.append(target)
    return out
