"""Lowering: a checked script becomes the IR (see ``autocall/engine/ir.py``), a state machine as data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autocall.dsl import ast as A
from autocall.engine.ir import FORMAT, VERSION

if TYPE_CHECKING:
    from autocall.dsl.checker import Symbols

# The language's defaults, the one place they are written (docs/language.md lists them for users).
DEFAULT_TIMEOUT_MS = 5000           # `timeout`: how long a menu or gather waits for the first key
DEFAULT_TRIES = 3                   # `tries`: a menu's attempts before `failure`
DEFAULT_INTERDIGIT_MS = 2000        # a menu's wait for the next key of a multi-key choice
DEFAULT_RECORD_MAX_MS = 60_000
DEFAULT_RECORD_SILENCE_MS = 5000
DEFAULT_TRANSFER_TIMEOUT_MS = 30_000
DEFAULT_RING = "all"                # a transfer to several destinations rings them at once
DEFAULT_WEB_TIMEOUT_MS = 3000       # how long `fetch`/`send` wait for the service


def template(t: A.Template) -> list:
    return [part if isinstance(part, str) else _interpolation(part) for part in t.parts]


def _interpolation(part: A.Interpolation) -> dict:
    if part.path:
        return {"var": part.name, "format": part.format, "path": list(part.path)}
    return {"var": part.name, "format": part.format}


def web_path(t: A.Template) -> tuple[list[str], list]:
    """A path template as its literal parts (one more than the values) and the values' expressions."""
    literals, values = [""], []
    for part in t.parts:
        if isinstance(part, str):
            literals[-1] += part
        else:
            values.append(["path", part.name, list(part.path)] if part.path else ["var", part.name])
            literals.append("")
    return literals, values


def expression(node) -> list:
    """AST expression -> IR expression. Recursive: the checker has already refused deep expressions."""
    kind = node.__class__
    if kind is A.NameRef:
        return ["var", node.name]
    if kind is A.PathRef:
        return ["path", node.name, list(node.path)]
    if kind is A.IntLit:
        return ["int", node.value]
    if kind is A.DecimalLit:
        return ["dec", node.text]
    if kind is A.StrLit:
        return ["str", template(node.template)]
    if kind is A.Binary:
        return ["bin", node.op, expression(node.left), expression(node.right)]
    if kind is A.Not:
        return ["not", expression(node.operand)]
    if kind is A.Negate:
        return ["neg", expression(node.operand)]
    return ["call", node.function, [expression(arg) for arg in node.args]]


class Lowering:
    def __init__(self, script: A.Script, sym: "Symbols", source: str) -> None:
        self.script = script
        self.sym = sym
        self.source = source

    def run(self) -> dict:
        sym = self.sym
        return {
            "format": FORMAT,
            "version": VERSION,
            "dialogue": sym.dialogue,
            "source": self.source,
            "settings": {"voice": sym.voice, "currency": sym.currency, "rate": sym.rate,
                         "timeout_ms": sym.timeout_ms, "tries": sym.tries},
            "params": [{"name": p.name.text, "default": _literal(p.default)} for p in sym.params],
            "vars": [{"name": v.name.text, "init": expression(v.value), "line": v.span.line} for v in sym.vars],
            "gathered": list(sym.gathered),
            "secret": sorted(sym.secret),
            "prompts": {name: self._prompt(decl.source) for name, decl in sym.prompts.items()},
            "services": dict(sym.services),
            "replies": list(sym.replies),
            "hours": {name: {"spec": decl.spec, **schedule.to_json()} for name, (decl, schedule) in sym.hours.items()},
            "start": sym.start,
            "states": {name: self._state(decl) for name, decl in sym.states.items()},
        }

    def _state(self, decl: A.StateDecl) -> dict:
        state = {"line": decl.span.line, "code": self._code(decl.body)}
        origin = getattr(decl, "origin", None)          # from an included file (autocall.dsl.includes)
        if origin is not None:
            state["file"] = origin
        return state

    # -- prompts --------------------------------------------------------------------------------------
    def _prompt(self, ref) -> dict:
        if isinstance(ref, A.NamedRef):
            return self._prompt(self.sym.prompts[ref.name].source)
        if isinstance(ref, A.TtsRef):
            return {"kind": "tts", "text": template(ref.template)}
        if isinstance(ref, A.FileRef):
            base_dir = getattr(ref, "base_dir", None) or self.sym.base_dir
            return {"kind": "file", "path": ref.path, "resolved": self.sym.files[(base_dir, ref.path)]}
        return {"kind": "sound", "name": ref.name}

    # -- code -------------------------------------------------------------------------------------------
    def _code(self, body: tuple) -> list[dict]:
        code: list[dict] = []
        self._emit_block(body, code)
        return code

    def _emit_block(self, body: tuple, code: list[dict]) -> None:
        for stmt in body:
            self._emit(stmt, code)

    def _emit(self, stmt, code: list[dict]) -> None:
        line = stmt.span.line
        if isinstance(stmt, A.If):
            exits: list[dict] = []
            tests: list[dict] = []
            for number, branch in enumerate(stmt.branches):
                if branch.condition is None:
                    self._emit_block(branch.body, code)
                    break
                test = {"op": "if", "line": branch.span.line, "cond": expression(branch.condition), "else": None,
                        "end": None, "elif": number > 0}
                code.append(test)
                tests.append(test)
                self._emit_block(branch.body, code)
                jump = {"op": "jump", "line": branch.span.line, "to": None}
                code.append(jump)
                exits.append(jump)
                test["else"] = len(code)
            end = len(code)
            for op in exits:
                op["to"] = end
            for op in tests:
                op["end"] = end
            return
        op = self._simple(stmt)
        op["line"] = line
        code.append(op)

    def _simple(self, stmt) -> dict:
        sym = self.sym
        if isinstance(stmt, A.Answer):
            return {"op": "answer"}
        if isinstance(stmt, A.Say):
            return {"op": "play", "prompt": {"kind": "tts", "text": template(stmt.template)}}
        if isinstance(stmt, A.Play):
            return {"op": "play", "prompt": self._prompt(stmt.prompt)}
        if isinstance(stmt, A.Wait):
            return {"op": "wait", "ms": stmt.duration.ms}
        if isinstance(stmt, A.Set):
            return {"op": "set", "name": stmt.target.text, "expr": expression(stmt.value)}
        if isinstance(stmt, A.Goto):
            return exits(stmt)
        if isinstance(stmt, A.Result):
            return {"op": "result", "expr": expression(stmt.value)}
        if isinstance(stmt, A.Log):
            return {"op": "log", "expr": expression(stmt.value)}
        if isinstance(stmt, A.Optout):
            return {"op": "optout"}
        if isinstance(stmt, A.Hangup):
            return {"op": "hangup"}
        if isinstance(stmt, A.Transfer):
            options = {o.kind: o for o in stmt.options}
            return {"op": "transfer", "dests": [expression(d) for d in stmt.destinations],
                    "ring": "order" if "ring" in options and options["ring"].value == "in order" else DEFAULT_RING,
                    "timeout_ms": options["timeout"].value.ms if "timeout" in options else DEFAULT_TRANSFER_TIMEOUT_MS,
                    "callerid": expression(options["callerid"].value) if "callerid" in options else None,
                    "announce": self._prompt(options["announce"].value) if "announce" in options else None,
                    "record": "record" in options}
        if isinstance(stmt, A.Queue):
            options = {o.kind: o for o in stmt.options}
            return {"op": "queue", "queue": expression(stmt.queue),
                    "timeout_ms": options["timeout"].value.ms if "timeout" in options else None,
                    "announce": self._prompt(options["announce"].value) if "announce" in options else None}
        if isinstance(stmt, A.Record):
            options = {o.kind: o for o in stmt.options}
            return {"op": "record", "name": stmt.target.text,
                    "max_ms": options["max"].value.ms if "max" in options else DEFAULT_RECORD_MAX_MS,
                    "silence_ms": options["silence"].value.ms if "silence" in options else DEFAULT_RECORD_SILENCE_MS,
                    "beep": "beep" in options,
                    "terminator": options["terminator"].value.keys if "terminator" in options else "#"}
        if isinstance(stmt, A.Gather):
            options = {o.kind: o for o in stmt.options}
            digits = options["digits"].value.value if "digits" in options else None
            maximum = options["max"].value.value if "max" in options else None
            if "terminator" in options:
                terminator = options["terminator"].value.keys
            else:
                terminator = "#" if digits is None else None
            timeout_ms = options["timeout"].value.ms if "timeout" in options else sym.timeout_ms
            return {"op": "gather", "name": stmt.target.text, "digits": digits, "max": maximum,
                    "terminator": terminator,
                    "prompt": self._prompt(options["prompt"].value) if "prompt" in options else None,
                    "timeout_ms": timeout_ms,
                    "interdigit_ms": options["interdigit"].value.ms if "interdigit" in options else timeout_ms,
                    "tries": options["tries"].value.value if "tries" in options else 1,
                    "secret": "secret" in options}
        if isinstance(stmt, (A.Fetch, A.Send, A.Notify)):
            options = {o.kind: o for o in stmt.options}
            literals, values = web_path(stmt.path)
            op = {"op": stmt.op, "service": stmt.service.text, "path": literals, "values": values,
                  "with": [[pair.key, expression(pair.value)] for pair in
                           (options["with"].value if "with" in options else ())]}
            if stmt.op != "notify":
                op["name"] = stmt.target.text if isinstance(stmt, A.Fetch) else (
                    options["into"].value.text if "into" in options else None)
                op["timeout_ms"] = options["timeout"].value.ms if "timeout" in options else DEFAULT_WEB_TIMEOUT_MS
            return op
        if isinstance(stmt, A.Menu):
            options = {o.kind: o for o in stmt.options}
            op = exits(stmt)
            for kind, handler in (("invalid", stmt.invalid), ("timeout", stmt.timeout)):
                if handler is not None and handler.goto is None:
                    op[kind] = {"prompt": self._prompt(handler.prompt)}
            return {"op": "menu",
                    "prompt": self._prompt(stmt.prompt) if stmt.prompt is not None else None,
                    "timeout_ms": options["timeout"].value.ms if "timeout" in options else sym.timeout_ms,
                    "tries": options["tries"].value.value if "tries" in options else sym.tries,
                    "interdigit_ms": options["interdigit"].value.ms if "interdigit" in options else DEFAULT_INTERDIGIT_MS,
                    **{key: op[key] for key in ("choices", "invalid", "timeout", "failure")}}
        raise AssertionError(f"cannot lower {type(stmt).__name__}")



def exits(stmt: A.Statement) -> dict | None:
    """The part of a statement's IR op that names states (``goto`` and ``menu``), else None.

    The lowering builds those ops from it and the checker's flow analysis reads it
    with ``ir.op_targets``, so "which states can follow" is said once.
    A menu handler that speaks instead of jumping is left as ``{}`` here.
    """
    if isinstance(stmt, A.Goto):
        return {"op": "goto", "state": stmt.target.text}
    if isinstance(stmt, A.Menu):
        return {"op": "menu",
                "choices": [({"keys": c.key.keys, "goto": c.target.text} if c.target is not None
                             else {"keys": c.key.keys, "repeat": True}) for c in stmt.choices],
                "invalid": _goto_handler(stmt.invalid),
                "timeout": _goto_handler(stmt.timeout),
                "failure": stmt.failure.text if stmt.failure is not None else None}
    return None


def _goto_handler(handler: A.Handler | None) -> dict | None:
    if handler is None:
        return None
    return {"goto": handler.goto.text} if handler.goto is not None else {}


def _literal(node) -> str | int | None:
    if node is None:
        return None
    if isinstance(node, A.IntLit):
        return node.value
    if isinstance(node, A.DecimalLit):
        return node.text
    return "".join(p for p in node.template.parts if isinstance(p, str))
