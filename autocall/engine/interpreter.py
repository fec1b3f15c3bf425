"""The interpreter: runs a compiled dialogue (the IR) against any Channel and returns its CallRecord.

One interpreter for every runtime. The IR is prepared once per Program into
closures (``Runtime``); each call is a ``Call`` driving that runtime through
the channel. A caller's hangup is one exception caught in one place, after
which the record is always complete.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Callable

from autocall.engine import decimals, spoken
from autocall.engine import values as V
from autocall.engine import web as W
from autocall.engine.channel import (ALL_KEYS, CallerHangup, Channel, ChannelFailure, Clock, FilePrompt,
                                     Prompt, SoundPrompt, TtsPrompt)
from autocall.engine.dial import DIAL_ANSWERED, DIAL_INVALID, QUEUE_PREFIX, unsafe_value
from autocall.engine.ir import BUILTINS, Program
from autocall.engine.keys import MATCH, MORE, KeyMatcher
from autocall.engine.record import ENDED_CALLER, ENDED_ERROR, ENDED_HANGUP, CallRecord
from autocall.engine.values import SECRET_MASK
from autocall.hours import Schedule

log = logging.getLogger("autocall.engine")

MAX_STATEMENTS = 10_000
DEFAULT_MAX_DURATION_MS = 3_600_000
_SETTABLE_BUILTINS = frozenset(BUILTINS) - {"call_id"}     # what a Call's ``builtins`` may set

Env = dict
Evaluator = Callable[[Env], V.Value]


class _Guard(Exception):
    """A guard rail tripped (statement count or duration)."""


class _EndCall(Exception):
    """The dialogue ended the call (hangup, falling off a state, an answered transfer)."""


# -- compiling expressions and templates to closures -------------------------------------------

NOW = "\0now"  # env key of the call's clock (no script name can contain NUL)
SPEECH = "\0speech"  # env key of the call's spoken-form settings
NUMBER_FUNCTIONS = {"round": V.rounded, "abs": V.absolute}


def _compile_expr(expr: list, schedules: dict[str, Schedule]) -> Evaluator:
    kind = expr[0]
    if kind == "int":
        value = expr[1]
        return lambda env: value
    if kind == "dec":
        number = decimals.literal(expr[1])
        return lambda env: number
    if kind == "str":
        return _compile_template(expr[1])
    if kind == "var":
        name = expr[1]
        return lambda env: env[name]
    if kind == "path":
        name, path = expr[1], tuple(expr[2])
        return lambda env: env[name].read(path)
    if kind == "not":
        inner = _compile_expr(expr[1], schedules)

        def negation(env: Env) -> V.Value:
            value = inner(env)
            return V._derived(0 if V.truthy(value) else 1, value)
        return negation
    if kind == "neg":
        inner = _compile_expr(expr[1], schedules)
        return lambda env: V.negate(inner(env))
    if kind == "bin":
        op = expr[1]
        left = _compile_expr(expr[2], schedules)
        right = _compile_expr(expr[3], schedules)
        if op == "and":
            def both(env: Env) -> V.Value:
                a = left(env)
                if not V.truthy(a):
                    return V._derived(0, a)
                b = right(env)
                return V._derived(1 if V.truthy(b) else 0, a, b)
            return both
        if op == "or":
            def either(env: Env) -> V.Value:
                a = left(env)
                if V.truthy(a):
                    return V._derived(1, a)
                b = right(env)
                return V._derived(1 if V.truthy(b) else 0, a, b)
            return either
        if op in V.COMPARISONS:
            compare = V.compare
            if op == "==":
                def equal(env: Env) -> V.Value:
                    a, b = left(env), right(env)
                    kind = type(a)
                    if kind is type(b) and (kind is str or kind is int):   # what compare() does then
                        return 1 if a == b else 0
                    return compare(op, a, b)
                return equal
            return lambda env: compare(op, left(env), right(env))
        function = V.ARITHMETIC[op]
        return lambda env: function(left(env), right(env))
    if kind == "call":
        name, args = expr[1], expr[2]
        if name == "len":
            if args[0][0] == "path":                # an object or list of a reply counts its items
                reply_name, path = args[0][1], tuple(args[0][2])

                def count(env: Env) -> V.Value:
                    reply = env[reply_name]
                    items = reply.count(path)
                    return items if items is not None else len(V.to_text(reply.read(path)))
                return count
            inner = _compile_expr(args[0], schedules)

            def length(env: Env) -> V.Value:
                value = inner(env)
                return V._derived(len(V.to_text(value)), value)
            return length
        if name in NUMBER_FUNCTIONS:
            function = NUMBER_FUNCTIONS[name]
            inners = [_compile_expr(arg, schedules) for arg in args]
            if len(inners) == 1:
                only = inners[0]
                return lambda env: function(only(env))
            first, second = inners
            return lambda env: function(first(env), second(env))
        if name == "within":
            schedule = schedules[args[0][1]]
            return lambda env: 1 if schedule.contains(datetime.fromtimestamp(env[NOW](), timezone.utc)) else 0
    raise ValueError(f"unknown expression {expr!r:.80}")


def _compile_template(parts: list, shown: bool = False) -> Evaluator:
    """The template's text (secret if a value in it is); ``shown``: with secret values masked instead."""
    if all(isinstance(part, str) for part in parts):
        text = "".join(parts)
        return lambda env: text
    pieces: list = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(part)
            continue
        fmt = part.get("format")
        form = _digits if fmt == "digits" else _spoken_form(part["var"], fmt) if fmt else _plain
        if part.get("path"):
            path = tuple(part["path"])
            pieces.append((part["var"], lambda reply, env, form=form, path=path: form(reply.read(path), env)))
        else:
            pieces.append((part["var"], form))
    Secret, bounded_text = V.Secret, V.bounded_text

    def render(env: Env) -> str:
        texts = []
        secret = False
        for piece in pieces:
            if piece.__class__ is str:
                texts.append(piece)
                continue
            value = env[piece[0]]
            if isinstance(value, Secret):
                if shown:
                    texts.append(SECRET_MASK)
                    continue
                secret = True
            texts.append(piece[1](value, env))
        text = "".join(texts)
        if len(text) > V.MAX_TEXT_CHARS:
            bounded_text(text)
        return V.SecretText(text) if secret else text
    return render


def _plain(value: V.Value, env: Env) -> str:
    return V.to_text(value)


def _digits(value: V.Value, env: Env) -> str:
    return V.spoken_digits(value)


def _spoken_form(name: str, form: str):
    """``{name|money}``, ``|date``, ``|time``: the words in the call's language, else the value as it is."""
    def render(value: V.Value, env: Env) -> str:
        text = V.to_text(value)
        speech = env[SPEECH]
        words = spoken.render(form, value, text, speech.language, speech.currency)
        if words is None:
            speech.note(f"{{{name}|{form}}}: the value is not {spoken.NOT_SPOKEN[form]}; spoken as it is")
            return text
        return words
    return render


class _Speech:
    """The call's spoken-form settings (env key ``SPEECH``): language, currency, and where notes go."""

    __slots__ = ("language", "currency", "note")

    def __init__(self, language: str, currency: str, note: Callable[[str], None]) -> None:
        self.language, self.currency, self.note = language, currency, note


def _reads(expr: list) -> set[str]:
    """Names an IR expression reads (iteratively: expressions may be deep)."""
    found: set[str] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        kind = node[0]
        if kind == "var" or kind == "path":
            found.add(node[1])
        elif kind == "str":
            found.update(p["var"] for p in node[1] if isinstance(p, dict))
        elif kind in ("not", "neg"):
            stack.append(node[1])
        elif kind == "bin":
            stack.extend((node[2], node[3]))
        elif kind == "call":
            stack.extend(a for a in node[2] if node[1] != "within")
    return found


# -- the prepared program ---------------------------------------------------------------------------

class _PromptPlan:
    """A prompt ready to play: builds the channel's prompt value and the trace entry."""

    __slots__ = ("kind", "text", "display", "file", "sound", "voice", "rate", "fixed")

    def __init__(self, prompt: dict, voice, rate) -> None:
        self.kind = prompt["kind"]
        self.voice, self.rate = voice, rate
        self.text = self.display = self.fixed = None
        if self.kind == "tts":
            self.text = _compile_template(prompt["text"])
            self.display = _compile_template(prompt["text"], shown=True)
            if all(isinstance(p, str) for p in prompt["text"]):     # no variable: the same prompt every time
                self.fixed = TtsPrompt("".join(prompt["text"]), voice, rate)
        elif self.kind == "file":
            self.file = FilePrompt(prompt["path"], prompt["resolved"])
        else:
            self.sound = SoundPrompt(prompt["name"])

    def build(self, env: Env) -> tuple[Prompt, dict]:
        fixed = self.fixed
        if fixed is not None:
            return fixed, {"kind": "tts", "text": fixed.text}
        if self.kind == "tts":
            text = self.text(env)
            if isinstance(text, V.Secret):
                return TtsPrompt(text, self.voice, self.rate, secret=True), {"kind": "tts", "text": self.display(env)}
            return TtsPrompt(text, self.voice, self.rate), {"kind": "tts", "text": text}
        if self.kind == "file":
            return self.file, {"kind": "file", "file": self.file.path}
        return self.sound, {"kind": "sound", "name": self.sound.name}


# -- prepared operations: one class per IR op kind, with named fields ------------------------------
# Each class builds itself from the IR dict (``prepare``); ``Call`` runs it with the method named in
# ``HANDLERS`` below. Adding an op kind means a class here, a line in HANDLERS and the kind in ir.OPS.

class _Prepared:
    __slots__ = ("line",)
    kind = ""
    statement = True        # counts towards the call's statement limit
    awaits = False          # its handler is a coroutine (it may wait for the channel); else a plain function


class AnswerOp(_Prepared):
    __slots__ = ()
    kind = "answer"
    awaits = True

    def __init__(self, line: int) -> None:
        self.line = line

    @classmethod
    def prepare(cls, runtime: "Runtime", op: dict, line: int) -> "AnswerOp":
        return cls(line)


class OptoutOp(AnswerOp):
    __slots__ = ()
    kind = "optout"
    awaits = False


class HangupOp(AnswerOp):
    __slots__ = ()
    kind = "hangup"
    awaits = False


class PlayOp(_Prepared):
    __slots__ = ("prompt",)
    kind = "play"
    awaits = True

    def __init__(self, line: int, prompt: "_PromptPlan") -> None:
        self.line, self.prompt = line, prompt

    @classmethod
    def prepare(cls, runtime, op, line):
        return cls(line, runtime.plan(op["prompt"]))


class WaitOp(_Prepared):
    __slots__ = ("ms",)
    kind = "wait"
    awaits = True

    def __init__(self, line: int, ms: int) -> None:
        self.line, self.ms = line, ms

    @classmethod
    def prepare(cls, runtime, op, line):
        return cls(line, op["ms"])


class SetOp(_Prepared):
    """``display`` renders a secret value as it may be shown, for the ``set`` event."""

    __slots__ = ("name", "evaluate", "display")
    kind = "set"

    def __init__(self, line: int, name: str, evaluate: Evaluator, display: Evaluator) -> None:
        self.line, self.name, self.evaluate, self.display = line, name, evaluate, display

    @classmethod
    def prepare(cls, runtime, op, line):
        return cls(line, op["name"], *runtime.expr(op["expr"]))


class ResultOp(_Prepared):
    """``result`` and ``log``: ``display`` renders a secret value as it may be shown."""

    __slots__ = ("evaluate", "display")
    kind = "result"

    def __init__(self, line: int, evaluate: Evaluator, display: Evaluator) -> None:
        self.line, self.evaluate, self.display = line, evaluate, display

    @classmethod
    def prepare(cls, runtime, op, line):
        return cls(line, *runtime.expr(op["expr"]))


class LogOp(ResultOp):
    __slots__ = ()
    kind = "log"


class IfOp(_Prepared):
    __slots__ = ("condition", "otherwise")
    kind = "if"

    def __init__(self, line: int, condition: Evaluator, otherwise: int) -> None:
        self.line, self.condition, self.otherwise = line, condition, otherwise

    @classmethod
    def prepare(cls, runtime, op, line):
        return cls(line, runtime.expr(op["cond"])[0], op["else"])


class JumpOp(_Prepared):
    __slots__ = ("to",)
    kind = "jump"
    statement = False       # the end of an if's branch, not a statement of the script

    def __init__(self, line: int, to: int) -> None:
        self.line, self.to = line, to

    @classmethod
    def prepare(cls, runtime, op, line):
        return cls(line, op["to"])


class GotoOp(_Prepared):
    __slots__ = ("state",)
    kind = "goto"

    def __init__(self, line: int, state: str) -> None:
        self.line, self.state = line, state

    @classmethod
    def prepare(cls, runtime, op, line):
        return cls(line, op["state"])


class TransferOp(_Prepared):
    """``reads``: the variables whose values go into the destinations or the caller id (checked by
    ``autocall.engine.dial`` before anything is dialled)."""

    __slots__ = ("destinations", "in_order", "timeout_ms", "callerid", "announce", "record", "reads")
    # ``destinations``: (evaluate, display) of each: display shows a secret value as it may be shown
    kind = "transfer"
    awaits = True

    def __init__(self, line: int, destinations: tuple[tuple[Evaluator, Evaluator], ...], in_order: bool, timeout_ms: int | None,
                 callerid: Evaluator | None, announce: "_PromptPlan | None", record: bool,
                 reads: tuple[str, ...]) -> None:
        self.line, self.destinations, self.in_order, self.timeout_ms = line, destinations, in_order, timeout_ms
        self.callerid, self.announce, self.record, self.reads = callerid, announce, record, reads

    @classmethod
    def prepare(cls, runtime, op, line):
        callerid = op.get("callerid")
        destinations = op["dests"] if "dests" in op else [op["dest"]]      # "dest": IR version 2
        reads = set().union(*(_reads(d) for d in destinations), _reads(callerid) if callerid else ())
        return cls(line, tuple(runtime.expr(d) for d in destinations), op.get("ring") == "order",
                   op.get("timeout_ms"), runtime.expr(callerid)[0] if callerid is not None else None,
                   runtime.plan(op.get("announce")), bool(op.get("record")), tuple(sorted(reads)))


class QueueOp(_Prepared):
    """``queue``: (evaluate, display) of the queue's name."""

    __slots__ = ("queue", "timeout_ms", "announce", "reads")
    kind = "queue"
    awaits = True

    def __init__(self, line: int, queue: tuple[Evaluator, Evaluator], timeout_ms: int | None,
                 announce: "_PromptPlan | None", reads: tuple[str, ...]) -> None:
        self.line, self.queue, self.timeout_ms, self.announce, self.reads = line, queue, timeout_ms, announce, reads

    @classmethod
    def prepare(cls, runtime, op, line):
        return cls(line, runtime.expr(op["queue"]), op.get("timeout_ms"), runtime.plan(op.get("announce")),
                   tuple(sorted(_reads(op["queue"]))))


class RecordOp(_Prepared):
    __slots__ = ("name", "max_ms", "silence_ms", "beep", "terminator")
    kind = "record"
    awaits = True

    def __init__(self, line: int, name: str, max_ms: int, silence_ms: int, beep: bool,
                 terminator: str | None) -> None:
        self.line, self.name, self.max_ms, self.silence_ms = line, name, max_ms, silence_ms
        self.beep, self.terminator = beep, terminator

    @classmethod
    def prepare(cls, runtime, op, line):
        return cls(line, op["name"], op["max_ms"], op["silence_ms"], op["beep"], op.get("terminator"))


class GatherOp(_Prepared):
    __slots__ = ("name", "digits", "maximum", "terminator", "prompt", "timeout_ms", "interdigit_ms",
                 "tries", "secret")
    kind = "gather"
    awaits = True

    def __init__(self, line: int, name: str, digits: int | None, maximum: int | None, terminator: str | None,
                 prompt: "_PromptPlan | None", timeout_ms: int, interdigit_ms: int, tries: int,
                 secret: bool) -> None:
        self.line, self.name, self.digits, self.maximum, self.terminator = line, name, digits, maximum, terminator
        self.prompt, self.timeout_ms, self.interdigit_ms = prompt, timeout_ms, interdigit_ms
        self.tries, self.secret = tries, secret

    @classmethod
    def prepare(cls, runtime, op, line):
        return cls(line, op["name"], op.get("digits"), op.get("max"), op.get("terminator"),
                   runtime.plan(op.get("prompt")), op["timeout_ms"], op["interdigit_ms"], op["tries"],
                   bool(op.get("secret")))


class MenuOp(_Prepared):
    """``choices``: keys -> (target state or None, repeat); a handler is ("goto", state) or ("prompt", plan)."""

    __slots__ = ("prompt", "timeout_ms", "tries", "interdigit_ms", "choices", "keys", "prefixes",
                 "invalid", "timeout", "failure")
    kind = "menu"
    awaits = True

    def __init__(self, line: int, prompt: "_PromptPlan | None", timeout_ms: int, tries: int, interdigit_ms: int,
                 choices: dict[str, tuple[str | None, bool]], invalid: tuple | None, timeout: tuple | None,
                 failure: str | None) -> None:
        self.line, self.prompt, self.timeout_ms, self.tries = line, prompt, timeout_ms, tries
        self.interdigit_ms, self.choices = interdigit_ms, choices
        self.keys = frozenset(choices)
        self.prefixes = KeyMatcher.prefixes_of(self.keys)
        self.invalid, self.timeout, self.failure = invalid, timeout, failure

    @classmethod
    def prepare(cls, runtime, op, line):
        choices = {c["keys"]: (c.get("goto"), bool(c.get("repeat"))) for c in op["choices"]}
        return cls(line, runtime.plan(op.get("prompt")), op["timeout_ms"], op["tries"], op["interdigit_ms"],
                   choices, runtime.handler(op.get("invalid")), runtime.handler(op.get("timeout")),
                   op.get("failure"))


class WebOp(_Prepared):
    """``fetch``/``send``: the path's literals and values, the ``with`` pairs (the values' secrecy is the
    values' own: a secret gathered value, or one made from it, shows as ``***`` in records and logs)."""

    __slots__ = ("method", "name", "service", "url", "literals", "values", "pairs", "timeout_s")
    kind = "fetch"
    awaits = True

    def __init__(self, line: int, method: str, name: str | None, service: str, url: str, literals: list[str],
                 values: list, pairs: list, timeout_s: float) -> None:
        self.line, self.method, self.name, self.service, self.url = line, method, name, service, url
        self.literals, self.values, self.pairs, self.timeout_s = literals, values, pairs, timeout_s

    @classmethod
    def prepare(cls, runtime, op, line):
        method = "GET" if op["op"] == "fetch" else "POST"
        values = [runtime.expr(value)[0] for value in op["values"]]
        pairs = [(key, runtime.expr(value)[0]) for key, value in op["with"]]
        return cls(line, method, op.get("name"), op["service"], runtime.services.get(op["service"], ""),
                   list(op["path"]), values, pairs, op.get("timeout_ms", 0) / 1000)


class SendOp(WebOp):
    __slots__ = ()
    kind = "send"


class NotifyOp(WebOp):
    __slots__ = ()
    kind = "notify"


def _json_value(value: V.Value) -> V.Value:
    """A script value as JSON: numbers as numbers, the rest as text (plain: the secret mark stays here)."""
    if isinstance(value, int):
        return int(value)
    return str(V.to_text(value))


class Runtime:
    """A Program prepared for execution: closures for expressions, prompt plans, key matchers."""

    def __init__(self, program: Program) -> None:
        data = program.data
        self.program = program
        self.name = data["dialogue"]
        self.source = data.get("source") or data["dialogue"]
        self.start = data["start"]
        self.secret = frozenset(data["secret"])
        self.schedules = {name: Schedule.from_json(h) for name, h in data["hours"].items()}
        settings = data["settings"]
        self.voice, self.rate = settings.get("voice"), settings.get("rate")
        self.currency = settings.get("currency")
        self.params = [(p["name"], p.get("default")) for p in data["params"]]
        self.vars = [(v["name"], self.expr(v["init"])) for v in data["vars"]]
        self.gathered = list(data["gathered"])
        self.services = dict(data.get("services") or {})
        self.replies = list(data.get("replies") or [])
        self.output_names = [v["name"] for v in data["vars"]] + [n for n in self.gathered
                                                                  if n not in {v["name"] for v in data["vars"]}]
        self.states = {name: [self._prepare(op) for op in state["code"]] for name, state in data["states"].items()}
        # a state from an included file: its errors name that file (line numbers are that file's)
        self.state_files = {name: state["file"] for name, state in data["states"].items() if state.get("file")}

    def expr(self, expr: list | None):
        """``(evaluate, display)``: ``display(env)`` is what may be shown of a secret value of the expression."""
        if expr is None:
            return None
        evaluate = _compile_expr(expr, self.schedules)

        def display(env: Env) -> str:
            # Text built around a secret shows with the secret masked ("PIN ***"); anything else
            # computed from one (a sum, a comparison, a length) shows as the mask alone.
            try:
                shown = V.to_text(evaluate({name: V.masked(value) for name, value in env.items()}))
            except (V.ScriptError, RecursionError):
                return SECRET_MASK
            return shown if SECRET_MASK in shown else SECRET_MASK
        return (evaluate, display)

    def plan(self, prompt: dict | None) -> _PromptPlan | None:
        return None if prompt is None else _PromptPlan(prompt, self.voice, self.rate)

    def handler(self, handler: dict | None):
        if handler is None:
            return None
        return ("goto", handler["goto"]) if handler.get("goto") else ("prompt", self.plan(handler["prompt"]))

    def _prepare(self, op: dict) -> _Prepared:
        kind = op["op"]
        entry = OPERATIONS.get(kind)
        if entry is None:
            raise ValueError(f"unknown operation {kind!r}")
        return entry[0].prepare(self, op, op.get("line", 0))


def runtime_of(program: Program) -> Runtime:
    """The prepared form of ``program``, built once and kept on it."""
    if program._runtime is None:
        program._runtime = Runtime(program)
    return program._runtime


# -- one call -----------------------------------------------------------------------------------------

class Call:
    """One run of a dialogue on a channel. Build it, then ``await call.run()`` for the CallRecord."""

    def __init__(self, program: Program, channel: Channel, clock: Clock, *, call_id: str,
                 params: dict[str, V.Value] | None = None, builtins: dict[str, V.Value] | None = None,
                 initial: dict[str, V.Value] | None = None,
                 max_statements: int = MAX_STATEMENTS, max_duration_ms: int = DEFAULT_MAX_DURATION_MS,
                 on_optout: Callable[["Call"], None] | None = None,
                 on_log: Callable[["Call", str], None] | None = None,
                 on_event: Callable[[str, object], None] | None = None,
                 web: W.WebPort | None = None,
                 speech: spoken.SpeechDefaults = spoken.SpeechDefaults()) -> None:
        self.runtime = runtime_of(program)
        self.channel = channel
        self.web = web if web is not None else W.NoWeb()
        self.clock = clock
        self.max_statements = max_statements
        self.max_duration_s = max_duration_ms / 1000
        self.on_optout = on_optout
        self.on_log = on_log
        self.on_event = on_event
        self.started = clock.now()
        self.state: str | None = None          # the state running now
        self.recorded_transfers = 0            # names the recorded conversations: transfer-1, transfer-2...
        env: Env = {"caller": "", "caller_name": "", "called": "", "channel": "", "call_id": call_id,
                    "choice": "", "dialstatus": "", "queuestatus": "", "amd": "", "attempt": 1, NOW: clock.now,
                    SPEECH: _Speech(spoken.language_of(self.runtime.voice or speech.voice),
                                    self.runtime.currency or speech.currency, self._log)}
        if builtins:
            if builtins.keys() <= _SETTABLE_BUILTINS:
                env.update(builtins)
            else:
                for name, value in builtins.items():
                    if name in env and name != "call_id":
                        env[name] = value
        self.env = env
        caller, called = env["caller"], env["called"]
        self.record = CallRecord(call_id, self.runtime.name, self.started,
                                 caller if type(caller) is str else V.to_text(caller),
                                 called if type(called) is str else V.to_text(called))
        self._params = dict(params) if params else {}
        self._initial = dict(initial) if initial else {}

    # -- life cycle -----------------------------------------------------------------------------
    async def run(self) -> CallRecord:
        record = self.record
        state = None
        try:
            self._bind_values()
            state = self.runtime.start
            states = self.runtime.states
            now = self.clock.now                        # _check_duration and _tick, inlined below
            started, max_duration_s = self.started, self.max_duration_s
            limit = self.max_statements
            handlers = HANDLERS
            # Each operation's handler returns where to go next: None for the next operation, an int
            # for another operation of the state, a str for another state; it raises _EndCall to end.
            while state is not None:
                record.path.append(state)
                if self.on_event is not None:
                    self.on_event("state", state)
                code = states[state]
                self.state = state
                state = None
                pc = 0
                size = len(code)
                while pc < size:
                    op = code[pc]
                    if op.statement:
                        record.statements += 1
                        if record.statements > limit:
                            self._tick(0)
                    step = handlers[op.kind](self, op)
                    if op.awaits:               # its handler is a coroutine (it talks to the channel)
                        step = await step
                    if step is None:
                        if now() - started > max_duration_s:
                            self._too_long()
                        pc += 1
                    elif step.__class__ is int:
                        pc = step
                    else:
                        state = step
                        break
            record.ended_by = ENDED_HANGUP
        except _EndCall:
            record.ended_by = ENDED_HANGUP
        except CallerHangup:
            record.ended_by = ENDED_CALLER
        except (V.ScriptError, _Guard) as exc:
            self._fail(str(exc))
        except ChannelFailure as exc:
            self._fail(f"channel failure: {exc}")
        except Exception as exc:  # the record must still be written; the host logs the traceback
            log.exception("call %s: internal error", record.call_id)
            self._fail(f"internal error: {exc.__class__.__name__}: {exc}")
        record.ended_at = self.clock.now()
        record.variables = self._output_variables()
        if record.ended_by != ENDED_CALLER:
            try:                        # a quiet hang-up, in place (one coroutine less per call)
                await self.channel.hangup()
            except (CallerHangup, ChannelFailure):
                pass
        return record

    def _fail(self, message: str) -> None:
        self.record.ended_by = ENDED_ERROR
        self.record.error = message
        self._log(message)

    def _bind_values(self) -> None:
        runtime = self.runtime
        for name, default in runtime.params:
            if name in self._params:
                self.env[name] = self._params[name]
            elif default is not None:
                self.env[name] = default
            else:
                raise V.ScriptError(f"{runtime.source}: the required param '{name}' was not supplied")
        for name in runtime.gathered:
            self.env[name] = ""
        for name in runtime.replies:
            self.env[name] = W.NOT_YET
        for name, (evaluate, _display) in runtime.vars:
            self.env[name] = self._initial[name] if name in self._initial else self._evaluate(evaluate, 0)
        for name in runtime.gathered:
            if name in self._initial:
                value = self._initial[name]
                self.env[name] = V.secret(value) if name in runtime.secret else value

    def _output_variables(self) -> dict:
        env, masked, exported = self.env, V.masked, V.exported
        return {name: exported(masked(env.get(name, ""))) for name in self.runtime.output_names}

    def _evaluate(self, evaluate, line: int):
        try:
            return evaluate(self.env)
        except V.ScriptError as exc:
            raise V.ScriptError(f"{self._source()}:{line}: {exc}") from None
        except RecursionError:
            raise V.ScriptError(f"{self._source()}:{line}: expression too deep to evaluate") from None

    def _source(self) -> str:
        """The file of the code running now: the script's, or the included file a state came from."""
        runtime = self.runtime
        return runtime.state_files.get(self.state, runtime.source) if self.state else runtime.source

    def _log(self, message: str, line: int | None = None) -> None:
        self.record.log.append({"at": round(self.clock.now() - self.started, 3), "line": line,
                                "message": message})
        if self.on_event is not None:
            self.on_event("log", message)
        if self.on_log is not None:
            self.on_log(self, message)

    def _tick(self, count: int = 1) -> None:
        self.record.statements += count
        if self.record.statements > self.max_statements:
            raise _Guard(f"the call ran more than {self.max_statements:,} statements "
                         "(a loop that never ends?); stopped")

    def _check_duration(self) -> None:
        if self.clock.now() - self.started > self.max_duration_s:
            self._too_long()

    def _too_long(self) -> None:
        raise _Guard(f"the call lasted longer than the maximum of {self.max_duration_s:g} s; stopped")

    # -- statements that talk to the channel -----------------------------------------------------
    async def _play(self, plan: _PromptPlan, interrupt_keys: str) -> str | None:
        prompt = plan.fixed
        if prompt is not None:                  # plan.build, inlined for a prompt without variables
            shown = {"kind": "tts", "text": prompt.text}
        else:
            prompt, shown = plan.build(self.env)
        self.record.prompts.append(shown)
        if self.on_event is not None:
            self.on_event("prompt", shown)
        return await self.channel.play(prompt, interrupt_keys)

    async def _first_key(self, plan: _PromptPlan | None, timeout_ms: int) -> str | None:
        """Play the prompt (barge-in with any key), then wait for the first key."""
        key = await self._play(plan, ALL_KEYS) if plan is not None else None
        if key is None:
            key = await self.channel.wait_for_digit(timeout_ms)
        return key

    def _input(self, state: str, op: str, keys: str, outcome: str, note: dict) -> None:
        entry = {"state": state, "op": op, "keys": keys, "outcome": outcome}
        self.record.inputs.append(entry)
        self.record.input_notes.append(note)
        if self.on_event is not None:
            self.on_event("input", entry)

    async def _menu(self, op: MenuOp) -> str:
        """The state the caller's choice leads to; the call ends when it leads nowhere."""
        plan, timeout_ms, tries, interdigit_ms = op.prompt, op.timeout_ms, op.tries, op.interdigit_ms
        choices, keys, prefixes = op.choices, op.keys, op.prefixes
        invalid, timeout, failure = op.invalid, op.timeout, op.failure
        state = self.state
        failures = 0
        while True:
            key = await self._first_key(plan, timeout_ms)
            if key is None:
                outcome, typed = "timeout", ""
            else:
                matcher = KeyMatcher(keys, prefixes)
                decision = matcher.feed(key)
                while decision is MORE:
                    key = await self.channel.wait_for_digit(interdigit_ms)
                    decision = matcher.expire() if key is None else matcher.feed(key)
                outcome = "match" if decision is MATCH else "invalid"
                typed = matcher.keys
            self._input(state, "menu", typed, outcome, {"failure": False})
            self._check_duration()
            if outcome == "match":
                self.env["choice"] = typed
                target, repeat = choices[typed]
                if repeat:
                    self._tick()
                    continue
                return target
            failures += 1
            handler = invalid if outcome == "invalid" else timeout
            if handler is not None:
                if handler[0] == "goto":
                    return handler[1]
                await self._play(handler[1], "")
            if failures >= tries:
                self.record.input_notes[-1]["failure"] = True
                if failure is None:
                    raise _EndCall()
                return failure
            self._tick()

    async def _gather(self, op: GatherOp) -> None:
        name, digits, maximum, terminator = op.name, op.digits, op.maximum, op.terminator
        plan, timeout_ms, interdigit_ms, tries = op.prompt, op.timeout_ms, op.interdigit_ms, op.tries
        if self.on_event is not None:
            self.on_event("gather", {"state": self.state, "name": name, "secret": op.secret})
        attempt = 0
        while True:
            attempt += 1
            typed = ""
            # _first_key, inlined: one coroutine less on the way of every key
            key = await self._play(plan, ALL_KEYS) if plan is not None else None
            if key is None:
                key = await self.channel.wait_for_digit(timeout_ms)
            while True:
                if key is None:
                    outcome = "timeout" if typed else "empty"
                    break
                if key == terminator:
                    outcome = "terminated" if typed else "empty"
                    break
                typed += key
                if (digits is not None and len(typed) >= digits) or (maximum is not None and len(typed) >= maximum):
                    outcome = "complete"
                    break
                key = await self.channel.wait_for_digit(interdigit_ms)
            self._check_duration()
            if typed or attempt >= tries:
                break
            self._tick()
        self.env[name] = V.SecretText(typed) if op.secret else typed
        shown = SECRET_MASK if op.secret and typed else typed
        self._input(self.state, "gather", shown, outcome, {"name": name, "secret": bool(op.secret)})

    async def _transfer(self, op: TransferOp) -> None:
        """One Dial of every destination (``ring all``) or one Dial each, in turn (``ring in order``);
        each destination rung is one entry of the record's transfers."""
        env, line = self.env, op.line
        destinations = [V.to_text(self._evaluate(evaluate, line)) for evaluate, _display in op.destinations]
        shown = {d: display(env) for d, (_evaluate, display) in zip(destinations, op.destinations)
                 if isinstance(d, V.Secret)}     # a destination built from a secret, as it may be shown
        callerid = V.to_text(self._evaluate(op.callerid, line)) if op.callerid is not None else None
        refused = self._dial_refusal(op.reads, destinations, "destination")
        if refused:
            self._log(f"transfer not attempted: {refused}; dialstatus is {DIAL_INVALID}", line)
            env["dialstatus"] = DIAL_INVALID
            for destination in destinations:
                self._transferred(shown.get(destination, destination), DIAL_INVALID)
            return
        announce = op.announce.build(env)[0] if op.announce is not None else None
        recording = None
        if op.record:
            self.recorded_transfers += 1
            recording = f"transfer-{self.recorded_transfers}"
        groups = [(d,) for d in destinations] if op.in_order else [tuple(destinations)]
        for group in groups:
            try:
                outcome = await self.channel.transfer(group, op.timeout_ms, callerid, announce, recording)
            except CallerHangup as gone:
                if gone.dialstatus is not None:     # hung up once dialled (while bridged, say): still transfers
                    env["dialstatus"] = gone.dialstatus
                    for destination in group:
                        self._transferred(shown.get(destination, destination), gone.dialstatus)
                raise
            status = env["dialstatus"] = outcome.status
            for index, destination in enumerate(group):
                # rung at once with the one who answered: it rang and was not answered
                beaten = status == DIAL_ANSWERED and outcome.answered not in (None, index)
                self._transferred(shown.get(destination, destination), "NOANSWER" if beaten else status)
            if status == DIAL_ANSWERED:
                if outcome.recording:
                    self._recorded(outcome.recording)
                raise _EndCall()
            self._check_duration()

    async def _queue(self, op: QueueOp) -> None:
        env, line = self.env, op.line
        evaluate, display = op.queue
        name = V.to_text(self._evaluate(evaluate, line))
        refused = self._dial_refusal(op.reads, [name], "queue name")
        entry = QUEUE_PREFIX + (display(env) if isinstance(name, V.Secret) else name)
        if refused:
            self._log(f"queue not joined: {refused}; queuestatus is {DIAL_INVALID}", line)
            env["queuestatus"] = DIAL_INVALID
            self._transferred(entry, DIAL_INVALID)
            return
        announce = op.announce.build(env)[0] if op.announce is not None else None
        status = env["queuestatus"] = await self.channel.queue(name, op.timeout_ms, announce)
        self._transferred(entry, status)
        if status == DIAL_ANSWERED:
            raise _EndCall()

    def _dial_refusal(self, reads: tuple[str, ...], values: list[str], what: str) -> str | None:
        """Why these values may not reach Dial or Queue (a variable's value holding a metacharacter, an
        empty destination), or None."""
        env = self.env
        for name in reads:
            value = env[name]
            reason = unsafe_value(name, value if value.__class__ is str else V.to_text(value))
            if reason:
                return reason
        for number, value in enumerate(values, start=1):
            if not value.strip():
                return f"the {what}" + (f" {number}" if len(values) > 1 else "") + " is empty"
        return None

    def _transferred(self, destination: str, status: str) -> None:
        self.record.transfers.append({"destination": destination, "dialstatus": status})
        self.record.transfer_states.append(self.record.path[-1])
        if self.on_event is not None:
            self.on_event("transfer", self.record.transfers[-1])

    def _recorded(self, file: str) -> None:
        self.record.recordings.append(file)
        if self.on_event is not None:
            self.on_event("record", file)

    async def _record(self, op: RecordOp) -> None:
        outcome = await self.channel.record(op.name, op.max_ms, op.silence_ms, op.beep, op.terminator)
        self.env[op.name] = outcome.file
        if not outcome.file:
            self._log(f"record {op.name}: the recording failed; nothing was recorded and {op.name} is empty",
                      op.line)
        else:
            self._recorded(outcome.file)
        if outcome.hung_up:
            raise CallerHangup()

    def _announce_set(self, op: SetOp, value: V.Value) -> None:
        """The ``set`` event (before the assignment, so the shown form reads the values the expression read)."""
        if isinstance(value, V.Secret):
            value = op.display(self.env)
        self.on_event("set", {"state": self.state, "name": op.name, "value": V.exported(value)})

    def _result(self, op: ResultOp) -> None:
        value = V.to_text(self._evaluate(op.evaluate, op.line))
        self.record.result = op.display(self.env) if isinstance(value, V.Secret) else value
        if self.on_event is not None:
            self.on_event("result", self.record.result)

    # -- statements that talk to the business's services ---------------------------------------------
    def _web_parts(self, op: WebOp) -> tuple[str, str, dict, dict]:
        """(path, shown path, values of the with pairs, the same with secret ones as ***)."""
        line = op.line
        evaluate = self._evaluate
        values = [evaluate(value, line) for value in op.values]
        path, shown = W.build_path(op.literals, [_json_value(v) for v in values],
                                   is_secret=lambda _value, flags=iter(map(V.is_secret, values)): next(flags))
        pairs, shown_pairs = {}, {}
        for key, value in op.pairs:
            value = evaluate(value, line)
            pairs[key] = _json_value(value)
            shown_pairs[key] = SECRET_MASK if V.is_secret(value) else pairs[key]
        return path, shown, pairs, shown_pairs

    async def _request(self, op: WebOp) -> None:
        path, shown, pairs, shown_pairs = self._web_parts(op)
        fetch = op.method == "GET"
        request = W.WebRequest(op.service, op.method, path, shown, op.url, op.timeout_s, self.record.call_id,
                               query={k: V.to_text(v) for k, v in pairs.items()} if fetch else None,
                               body=None if fetch else pairs,
                               shown_query={k: V.to_text(v) for k, v in shown_pairs.items()} if fetch else None,
                               shown_body=None if fetch else shown_pairs)
        reply = await self.web.request(request)
        if op.name is not None:
            self.env[op.name] = reply
        entry = {"service": op.service, "method": op.method, "path": shown, "query": request.shown_query or {},
                 "body": request.shown_body, "status": reply.status, "ok": reply.ok, "error": reply.error,
                 "ms": round(reply.elapsed_ms, 1)}
        self.record.requests.append(entry)
        outcome = f"{reply.status}" + (f" {reply.error}" if reply.error else "")
        self.record.log.append({"at": round(self.clock.now() - self.started, 3), "line": op.line,
                                "message": f"{op.method} {op.service} {shown}: {outcome} ({entry['ms']:g} ms)",
                                "request": reply.entry() | {"path": shown}})
        if self.on_event is not None:
            self.on_event("request", entry)
        self._check_duration()

    async def _notify(self, op: NotifyOp) -> None:
        path, shown, pairs, _shown_pairs = self._web_parts(op)
        try:
            await self.web.notify(W.Notice(op.service, path, op.url, pairs, self.record.call_id))
        except W.NotifyFailed as exc:
            raise V.ScriptError(f"{self.runtime.source}:{op.line}: notify to {op.service} could not be queued "
                                f"({exc})") from None
        entry = {"service": op.service, "path": shown, "body": pairs}
        self.record.notifications.append(entry)
        if self.on_event is not None:
            self.on_event("notify", entry)

    # -- statements that only change the call's state ------------------------------------------------
    async def _answer(self, op: AnswerOp) -> None:
        await self.channel.answer()

    async def _play_op(self, op: PlayOp) -> None:
        await self._play(op.prompt, "")

    async def _wait(self, op: WaitOp) -> None:
        await self.channel.pause(op.ms)

    def _set(self, op: SetOp) -> None:
        value = self._evaluate(op.evaluate, op.line)
        if self.on_event is not None:
            self._announce_set(op, value)
        self.env[op.name] = value

    def _if(self, op: IfOp) -> int | None:
        value = self._evaluate(op.condition, op.line)
        return None if value != 0 and value != "" else op.otherwise     # V.truthy

    def _jump(self, op: JumpOp) -> int:
        return op.to

    def _goto(self, op: GotoOp) -> str:
        return op.state

    def _hangup(self, op: HangupOp) -> None:
        raise _EndCall()

    def _log_op(self, op: LogOp) -> None:
        value = V.to_text(self._evaluate(op.evaluate, op.line))
        self._log(op.display(self.env) if isinstance(value, V.Secret) else value, op.line)

    def _optout(self, op: OptoutOp) -> None:
        self.record.optout = True
        if self.on_optout is not None:
            self.on_optout(self)
        if self.on_event is not None:
            self.on_event("optout", self.state)


# The one dispatch table: IR op kind -> (prepared op class, the Call method that runs it: a coroutine when
# the class says ``awaits``, else a plain function, one coroutine less per statement). A handler returns
# None (go on with the next operation), an int (go on at that operation of the state) or a str (go to
# that state); it raises _EndCall to end the call. tests/language/test_internals.py fails
# when an op kind of ir.OPS has no entry here.
OPERATIONS: dict[str, tuple[type[_Prepared], Callable]] = {
    "answer": (AnswerOp, Call._answer),
    "play": (PlayOp, Call._play_op),
    "wait": (WaitOp, Call._wait),
    "set": (SetOp, Call._set),
    "menu": (MenuOp, Call._menu),
    "gather": (GatherOp, Call._gather),
    "if": (IfOp, Call._if),
    "jump": (JumpOp, Call._jump),
    "goto": (GotoOp, Call._goto),
    "transfer": (TransferOp, Call._transfer),
    "queue": (QueueOp, Call._queue),
    "record": (RecordOp, Call._record),
    "result": (ResultOp, Call._result),
    "log": (LogOp, Call._log_op),
    "optout": (OptoutOp, Call._optout),
    "hangup": (HangupOp, Call._hangup),
    "fetch": (WebOp, Call._request),
    "send": (SendOp, Call._request),
    "notify": (NotifyOp, Call._notify),
}
HANDLERS: dict[str, Callable] = {kind: handler for kind, (_cls, handler) in OPERATIONS.items()}
