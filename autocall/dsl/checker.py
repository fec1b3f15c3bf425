"""Semantic checks of a parsed script: names, keys, options, audio files, flow; every problem reported.

The checker never stops at the first problem: it collects them all in the
sink and returns the symbol tables the lowering needs (only used when there
are no errors).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

from autocall.dsl import ast as A
from autocall.dsl.diagnostics import DiagnosticSink
from autocall.dsl.lower import DEFAULT_INTERDIGIT_MS, DEFAULT_TIMEOUT_MS, DEFAULT_TRIES, exits
from autocall.engine import decimals
from autocall.engine.channel import ALL_KEYS
from autocall.engine.ir import BUILTINS, OPS, op_targets
from autocall.engine.spoken import is_currency
from autocall.hours import HoursError, Schedule, parse_schedule
from autocall.suggest import suggest

MAX_WEB_TIMEOUT_MS = 10_000         # a caller should not wait longer in silence for a service
REPLY_FIELDS = ("ok", "status", "error", "data")

# Function name -> the numbers of arguments it takes.
FUNCTIONS = {"len": (1,), "within": (1,), "round": (1, 2), "abs": (1,)}
KEY_CHARS = frozenset(ALL_KEYS)
MAX_EXPRESSION_DEPTH = 64
MAX_KEYS = 64
MAX_DESTINATIONS = 20               # destinations of one transfer (a ring group)
MAX_QUEUE_WAIT_MS = 4 * 3_600_000


_SOUND_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*")

@dataclass
class CheckOptions:
    """What the checker may look at beyond the text: audio files and the TTS voices."""

    base_dir: str = "."
    audio_roots: tuple[str, ...] = ()      # folders besides base_dir that file prompts may be in (sounds_dir)
    validate_audio: Callable[[str], list[str]] | None = None
    resolve_voice: Callable[[str], str] | None = None


@dataclass
class Symbols:
    """Everything lowering needs, resolved."""

    dialogue: str = ""
    voice: str | None = None
    currency: str | None = None
    rate: int | None = None
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    tries: int = DEFAULT_TRIES
    params: list[A.ParamDecl] = field(default_factory=list)
    vars: list[A.VarDecl] = field(default_factory=list)
    gathered: list[str] = field(default_factory=list)
    secret: set[str] = field(default_factory=set)
    prompts: dict[str, A.PromptDecl] = field(default_factory=dict)
    hours: dict[str, tuple[A.HoursDecl, Schedule]] = field(default_factory=dict)
    start: str | None = None
    states: dict[str, A.StateDecl] = field(default_factory=dict)
    files: dict[tuple[str, str], str] = field(default_factory=dict)   # (folder, path as written) -> on disk
    base_dir: str = "."                 # the script's folder: where its own file prompts are
    services: dict[str, str] = field(default_factory=dict)
    replies: list[str] = field(default_factory=list)


class Checker:
    def __init__(self, script: A.Script, sink: DiagnosticSink, options: CheckOptions) -> None:
        self.script = script
        self.sink = sink
        self.options = options
        self.sym = Symbols(base_dir=options.base_dir)
        self.value_kinds: dict[str, str] = {name: "built-in" for name in BUILTINS}
        self.defined_at: dict[tuple[str, str], A.Span] = {}
        self.reads: set[str] = set()
        self.checked_files: dict[str, bool] = {}
        self._tainted: set[str] | None = None

    # -- entry point ----------------------------------------------------------------------------
    def run(self) -> Symbols:
        self._declarations()
        self._implicit_variables()
        for decl in self.script.declarations:
            if isinstance(decl, A.VarDecl):
                self._var_initialiser(decl)
        for state in self.sym.states.values():
            self._block(state.body)
        self._start()
        self._flow()
        self._unread_vars()
        return self.sym

    # -- declarations ---------------------------------------------------------------------------
    def _define(self, namespace: str, name: A.Name, what: str) -> bool:
        key = (namespace, name.text)
        if key in self.defined_at:
            first = self.defined_at[key]
            self.sink.error(f"{what} '{name.text}' is defined twice ({self._first(first, name.span)})", name.span)
            return False
        self.defined_at[key] = name.span
        return True

    def _first(self, first: A.Span, now: A.Span) -> str:
        """Where the first definition is: its line, and its file when that is another one (an include)."""
        file_of = self.sink.file_of
        if file_of(first) == file_of(now):
            return f"first on line {first.line}"
        return f"first in {file_of(first)}:{first.line}"

    def _define_value(self, name: A.Name, kind: str) -> bool:
        if name.text in BUILTINS:
            self.sink.error(f"'{name.text}' is a built-in variable; choose another name", name.span)
            return False
        if not self._define("value", name, "variable" if kind == "var" else kind):
            return False
        self.value_kinds[name.text] = kind
        return True

    def _declarations(self) -> None:
        decls = self.script.declarations
        sym = self.sym
        dialogues = [d for d in decls if isinstance(d, A.DialogueDecl)]
        if not dialogues:
            self.sink.error("missing 'dialogue NAME': every script begins with it", A.Span(1, 1, 1, 2))
        elif decls[0] is not dialogues[0]:
            self.sink.error("'dialogue NAME' must be the first line of code", dialogues[0].span)
        for extra in dialogues[1:]:
            self.sink.error(f"'dialogue' is declared twice (first on line {dialogues[0].span.line})", extra.span)
        if dialogues:
            sym.dialogue = dialogues[0].name.text
        settings_seen: dict[str, A.Span] = {}
        prompts: list[A.PromptDecl] = []
        for decl in decls:
            if isinstance(decl, A.SettingDecl):
                if decl.kind in settings_seen:
                    self.sink.error(f"'{decl.kind}' is set twice (first on line {settings_seen[decl.kind].line})",
                                    decl.span)
                    continue
                settings_seen[decl.kind] = decl.span
                self._setting(decl)
            elif isinstance(decl, A.ParamDecl):
                self._define_value(decl.name, "param")
                sym.params.append(decl)
                if isinstance(decl.default, A.StrLit) and not decl.default.template.is_constant:
                    self.sink.error("a param's default is plain text; it cannot interpolate {...}",
                                    decl.default.span)
            elif isinstance(decl, A.VarDecl):
                if self._define_value(decl.name, "var"):
                    sym.vars.append(decl)
            elif isinstance(decl, A.PromptDecl):
                if self._define("prompt", decl.name, "prompt"):
                    sym.prompts[decl.name.text] = decl
                prompts.append(decl)
            elif isinstance(decl, A.HoursDecl):
                self._hours(decl)
            elif isinstance(decl, A.ServiceDecl):
                self._service(decl)
            elif isinstance(decl, A.StateDecl):
                if self._define("state", decl.name, "state"):
                    sym.states[decl.name.text] = decl
        for decl in prompts:        # once every value is declared: a prompt speaks at run time, when all exist
            self._prompt_source(decl.source)
        starts = [d for d in decls if isinstance(d, A.StartDecl)]
        for extra in starts[1:]:
            self.sink.error(f"'start' is declared twice (first on line {starts[0].span.line})", extra.span)
        if starts:
            sym.start = starts[0].state.text
        elif dialogues:
            self.sink.error("missing 'start STATE': name the state every call begins in",
                            dialogues[0].span)

    def _setting(self, decl: A.SettingDecl) -> None:
        sym = self.sym
        if decl.kind == "voice":
            voice, span = decl.value
            sym.voice = voice
            if not voice.strip():
                self.sink.error("empty voice name (write e.g. voice \"en-us\")", span)
            elif self.options.resolve_voice is not None:
                try:
                    self.options.resolve_voice(voice)
                except Exception as exc:  # AudioError: its problem text names the voices
                    self.sink.error(getattr(exc, "problem", str(exc)), span)
        elif decl.kind == "currency":
            code, span = decl.value
            if is_currency(code):
                sym.currency = code
            else:
                hint = f" (write \"{code.strip().upper()}\")" if is_currency(code.strip().upper()) else ""
                self.sink.error(f"'{code}' is not a currency code{hint}; write an ISO 4217 code such as "
                                "\"EUR\" or \"USD\"", span)
        elif decl.kind == "rate":
            count: A.Count = decl.value
            if not 80 <= count.value <= 450:
                self.sink.error(f"rate {count.value} is out of range (80 to 450 words a minute)", count.span)
            sym.rate = count.value
        elif decl.kind == "timeout":
            sym.timeout_ms = self._duration(decl.value, "timeout") or sym.timeout_ms
        elif decl.kind == "tries":
            sym.tries = self._count(decl.value, "tries", 1, 20) or sym.tries

    def _hours(self, decl: A.HoursDecl) -> None:
        if not self._define("hours", decl.name, "hours"):
            return
        try:
            schedule = parse_schedule(decl.spec, decl.timezone)
        except HoursError as exc:
            message = str(exc)
            span = decl.timezone_span if "time zone" in message and decl.timezone_span else decl.spec_span
            self.sink.error(message, span)
            return
        self.sym.hours[decl.name.text] = (decl, schedule)

    def _service(self, decl: A.ServiceDecl) -> None:
        if not self._define("service", decl.name, "service"):
            return
        url = decl.url.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
            self.sink.error(f"'{decl.url}' is not a service URL; write http:// or https:// and a host, "
                            "e.g. \"https://crm.example.com/api\"", decl.url_span)
        elif parts.query or parts.fragment or "@" in parts.netloc:
            self.sink.error(f"'{decl.url}': a service URL has no query, fragment or user name "
                            "(put credentials in the configuration's [services] headers)", decl.url_span)
        self.sym.services[decl.name.text] = url

    def _start(self) -> None:
        if self.sym.start is None:
            return
        start = next(d for d in self.script.declarations if isinstance(d, A.StartDecl))
        if self.sym.start not in self.sym.states:
            self.sink.error(f"unknown state '{self.sym.start}'" + suggest(self.sym.start, self.sym.states),
                            start.state.span)

    # -- pieces -----------------------------------------------------------------------------------
    def _duration(self, duration: A.Duration, what: str, allow_zero: bool = False,
                  maximum_ms: int = 3_600_000) -> int | None:
        if duration.unit_missing:
            self.sink.error(f"{duration.ms} has no unit; write {duration.ms}s", duration.span)
            return None
        if duration.ms == 0 and not allow_zero:
            self.sink.error(f"{what} must be longer than 0", duration.span)
            return None
        if duration.ms > maximum_ms:
            self.sink.error(f"{what} is longer than the limit of {maximum_ms // 60_000} minutes", duration.span)
            return None
        return duration.ms

    def _count(self, count: A.Count, what: str, low: int, high: int) -> int | None:
        if not low <= count.value <= high:
            self.sink.error(f"{what} must be from {low} to {high}", count.span)
            return None
        return count.value

    def _key(self, key: A.Key, single: bool) -> bool:
        text = key.keys
        if not text or any(ch not in KEY_CHARS for ch in text):
            self.sink.error(f"'{text}' is not a key: keys are 0-9, star, hash, or quoted keys such as \"#\"",
                            key.span)
            return False
        if not key.quoted and len(text) > 1:
            self.sink.error(f"write \"{text}\" in quotes for a multi-digit key", key.span)
            return False
        if single and len(text) > 1:
            self.sink.error(f"'{text}' is several keys; a terminator is one key", key.span)
            return False
        if len(text) > MAX_KEYS:
            self.sink.error(f"a key sequence may be at most {MAX_KEYS} keys", key.span)
            return False
        return True

    def _options(self, options: tuple[A.Option, ...], statement: str) -> dict[str, A.Option]:
        seen: dict[str, A.Option] = {}
        for option in options:
            if option.kind in seen:
                self.sink.error(f"'{option.kind}' is given twice in this {statement} "
                                f"(first at column {seen[option.kind].span.column})", option.span)
                continue
            seen[option.kind] = option
        return seen

    def _prompt_source(self, source) -> None:
        if isinstance(source, A.TtsRef):
            self._template(source.template)
        elif isinstance(source, A.FileRef):
            self._audio_file(source)
        elif isinstance(source, A.SoundRef):
            name = source.name
            if not _SOUND_NAME.fullmatch(name) or ".." in name.split("/"):
                self.sink.error(f"'{name}' is not a sound name (a name such as \"beep\" or \"custom/welcome\": "
                                "letters, digits, '_', '-', '.' and '/' between names, no '..')", source.span)

    def _audio_file(self, ref: A.FileRef) -> None:
        path = ref.path
        if not path.strip():
            self.sink.error("empty file name", ref.span)
            return
        if os.path.isabs(path) or ".." in path.replace("\\", "/").split("/"):
            self.sink.error(f"audio file '{path}': absolute paths and '..' are not allowed; paths are relative "
                            "to the .dlg file and stay in its folder", ref.span)
            return
        base_dir = getattr(ref, "base_dir", None) or self.options.base_dir      # an included file's: its folder
        resolved = os.path.normpath(os.path.join(base_dir, path))
        self.sym.files[(base_dir, path)] = resolved
        if resolved in self.checked_files:
            return
        self.checked_files[resolved] = True
        if os.path.lexists(resolved) and not self._inside_roots(resolved):
            self.sink.error(f"audio file '{path}' is a link to a file outside the script's folder and the "
                            "sounds folder; copy the file there instead", ref.span)
            return
        if not os.path.exists(resolved):
            self.sink.error(f"audio file '{path}' not found (looked for {resolved}); "
                            "paths are relative to the .dlg file", ref.span)
            return
        if os.path.isdir(resolved):
            self.sink.error(f"'{path}' is a folder, not an audio file", ref.span)
            return
        if self.options.validate_audio is None:
            return
        try:
            warnings = self.options.validate_audio(resolved)
        except Exception as exc:  # AudioError: one line naming what is wrong and the limit
            self.sink.error(f"{path}: {getattr(exc, 'problem', str(exc))}", ref.span)
            return
        for warning in warnings:
            self.sink.warning(f"{path}: {warning}", ref.span)

    def _inside_roots(self, path: str) -> bool:
        """Whether ``path``, symbolic links followed, is in the script's folder or another audio root."""
        real = os.path.realpath(path)
        for root in (self.options.base_dir, *self.options.audio_roots):
            top = os.path.realpath(root)
            if os.path.commonpath([real, top]) == top:
                return True
        return False

    def _prompt_ref(self, ref) -> None:
        if isinstance(ref, A.NamedRef):
            if ref.name not in self.sym.prompts:
                hint = suggest(ref.name, self.sym.prompts)
                if not hint and ref.name in self.value_kinds:
                    hint = f" ('{ref.name}' is a variable; to speak it write say \"{{{ref.name}}}\")"
                self.sink.error(f"unknown prompt '{ref.name}'" + hint, ref.span)
        else:
            self._prompt_source(ref)

    def _state_ref(self, name: A.Name) -> None:
        if name.text not in self.sym.states:
            self.sink.error(f"unknown state '{name.text}'" + suggest(name.text, self.sym.states), name.span)

    # -- values and expressions ------------------------------------------------------------------------
    def _implicit_variables(self) -> None:
        """Gather and record targets are variables (strings) even without a ``var``."""
        order: list[str] = []
        for state in self.sym.states.values():
            for stmt in _walk(state.body):
                if isinstance(stmt, (A.Gather, A.Record)):
                    name = stmt.target
                    kind = self.value_kinds.get(name.text)
                    verb = "gather" if isinstance(stmt, A.Gather) else "record"
                    if kind == "param":
                        self.sink.error(f"cannot {verb} into param '{name.text}' (params are read-only)", name.span)
                    elif kind == "built-in":
                        self.sink.error(f"cannot {verb} into built-in '{name.text}' (built-ins are read-only)",
                                        name.span)
                    elif kind is None and name.text not in order:
                        order.append(name.text)
                    if isinstance(stmt, A.Gather) and any(o.kind == "secret" for o in stmt.options):
                        self.sym.secret.add(name.text)
        for name in order:
            self.value_kinds[name] = "gathered"
        self.sym.gathered = order
        self._reply_targets()

    def _reply_targets(self) -> None:
        """``fetch NAME`` and ``send ... into NAME`` declare NAME as a reply (read with NAME.ok, NAME.data...)."""
        for state in self.sym.states.values():
            for stmt in _walk(state.body):
                name = _reply_target(stmt)
                if name is None:
                    continue
                kind = self.value_kinds.get(name.text)
                if kind == "reply":
                    continue
                if kind is not None or name.text in self.sym.prompts:
                    what = {"built-in": "a built-in", "gathered": "a gathered variable",
                            "param": "a param", "var": "a var"}.get(kind, "a prompt")
                    self.sink.error(f"'{name.text}' is already {what}; a fetch or send reply needs a name of "
                                    "its own", name.span)
                    continue
                self.value_kinds[name.text] = "reply"
                self.sym.replies.append(name.text)

    def _name_read(self, name: str, span: A.Span, allowed: Callable[[str], bool] | None = None,
                   path: tuple[str, ...] = ()) -> None:
        kind = self.value_kinds.get(name)
        if path and kind != "reply":
            written = ".".join((name, *path))
            if kind is None and name not in self.sym.hours and name not in self.sym.prompts:
                replies = [n for n, k in self.value_kinds.items() if k == "reply"]
                self.sink.error(f"unknown reply '{name}' in '{written}'" + suggest(name, replies)
                                + f" ('{name}.…' reads the reply of a fetch or send into '{name}')", span)
            else:
                self.sink.error(f"'{written}': '{name}' is not the target of a fetch or send; "
                                "only replies have fields", span)
            return
        if kind == "reply":
            if not path:
                self.sink.error(f"'{name}' is a reply; read {name}.ok, {name}.status, {name}.error "
                                f"or {name}.data.FIELD", span)
                return
            if path[0] not in REPLY_FIELDS:
                self.sink.error(f"'{name}.{path[0]}': a reply has ok, status, error and data "
                                f"(did you mean '{name}.data.{'.'.join(path)}'?)", span)
                return
            if path[0] != "data" and len(path) > 1:
                self.sink.error(f"'{name}.{path[0]}' is a plain value; only {name}.data has fields", span)
                return
            if allowed is not None:
                self.sink.error(f"'{name}' is a reply: a var's initial value cannot read it "
                                "(set the var after the fetch)", span)
                return
        if kind is None:
            if name in self.sym.hours:
                self.sink.error(f"'{name}' is an hours name; test it with within({name})", span)
            elif name in self.sym.prompts:
                self.sink.error(f"'{name}' is a prompt, not a variable; play it with play {name}", span)
            else:
                self.sink.error(f"unknown variable '{name}'" + suggest(name, self.value_kinds), span)
            return
        if allowed is not None and not allowed(name):
            self.sink.error(f"'{name}' is used before it is declared (declare it above this var)", span)
            return
        self.reads.add(name)

    def _template(self, template: A.Template, allowed=None) -> None:
        for part in template.names:
            self._name_read(part.name, part.span, allowed, part.path)

    def _expr(self, expr, allowed=None) -> None:
        """Check an expression iteratively (it may be deep), with a depth limit."""
        stack = [(expr, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_EXPRESSION_DEPTH:
                self.sink.error(f"expression nested more than {MAX_EXPRESSION_DEPTH} deep; "
                                "split it with 'set'", node.span)
                return
            if isinstance(node, A.NameRef):
                self._name_read(node.name, node.span, allowed)
            elif isinstance(node, A.PathRef):
                self._name_read(node.name, node.span, allowed, node.path)
            elif isinstance(node, A.StrLit):
                self._template(node.template, allowed)
            elif isinstance(node, A.Binary):
                stack.append((node.left, depth + 1))
                stack.append((node.right, depth + 1))
            elif isinstance(node, (A.Not, A.Negate)):
                stack.append((node.operand, depth + 1))
            elif isinstance(node, A.Call):
                self._call(node, depth, stack)

    def _call(self, node: A.Call, depth: int, stack: list) -> None:
        arity = FUNCTIONS.get(node.function)
        if arity is None:
            self.sink.error(f"unknown function '{node.function}'" + suggest(node.function, FUNCTIONS)
                            + f" (functions: {', '.join(FUNCTIONS)})", node.function_span)
            return
        if len(node.args) not in arity:
            counts = " or ".join(str(n) for n in arity)
            self.sink.error(f"{node.function}() takes {counts} argument{'s' if arity[-1] > 1 else ''}, "
                            f"not {len(node.args)}", node.span)
            return
        if node.function == "within":
            arg = node.args[0]
            if not isinstance(arg, A.NameRef):
                self.sink.error("within() takes the name of an hours declaration", arg.span)
            elif arg.name not in self.sym.hours and not any(d.name.text == arg.name for d in self.script.declarations
                                                               if isinstance(d, A.HoursDecl)):
                self.sink.error(f"unknown hours '{arg.name}'" + suggest(arg.name, self.sym.hours), arg.span)
            return
        if node.function == "round" and len(node.args) == 2:
            places = node.args[1]
            if isinstance(places, A.DecimalLit) or (isinstance(places, A.IntLit)
                                                     and places.value > decimals.MAX_ROUND_PLACES):
                self.sink.error(f"round() takes a whole number of places from 0 to {decimals.MAX_ROUND_PLACES}",
                                places.span)
        stack.extend((arg, depth + 1) for arg in node.args)

    def _var_initialiser(self, decl: A.VarDecl) -> None:
        order = [d.name.text for d in self.script.declarations if isinstance(d, A.VarDecl)]
        position = order.index(decl.name.text)
        later = set(order[position:])

        def allowed(name: str) -> bool:
            return name not in later
        self._expr(decl.value, allowed)

    def _unread_vars(self) -> None:
        for decl in self.sym.vars:
            if decl.name.text not in self.reads and not _shared(decl):
                self.sink.warning(f"variable '{decl.name.text}' is never read", decl.name.span)

    # -- statements ---------------------------------------------------------------------------------------
    def _block(self, body: tuple) -> None:
        ended_by = None     # the statement that always leaves the state; "" once the next one is reported
        for stmt in body:
            if ended_by:
                self.sink.warning(f"this statement can never run (the {ended_by} above always leaves the state)",
                                  stmt.span)
                ended_by = ""
            self._statement(stmt)
            if ended_by is None and OPS[stmt.op].leaves:
                ended_by = stmt.op

    def _statement(self, stmt: A.Statement) -> None:
        check = STATEMENT_CHECKS.get(stmt.__class__)
        if check is None:       # a statement added to the grammar and the AST but not here
            raise TypeError(f"the checker has no rule for the statement {stmt.__class__.__name__}; "
                            "add one to STATEMENT_CHECKS (docs/dev/architecture.md: adding a statement)")
        check(self, stmt)

    def _say(self, stmt: A.Say) -> None:
        self._template(stmt.template)

    def _play(self, stmt: A.Play) -> None:
        self._prompt_ref(stmt.prompt)

    def _wait(self, stmt: A.Wait) -> None:
        self._duration(stmt.duration, "wait")

    def _set(self, stmt: A.Set) -> None:
        self._assign(stmt.target)
        self._expr(stmt.value)

    def _goto(self, stmt: A.Goto) -> None:
        self._state_ref(stmt.target)

    def _value(self, stmt: A.Result | A.Log) -> None:
        self._expr(stmt.value)

    def _nothing(self, stmt: A.Answer | A.Optout | A.Hangup) -> None:
        """A statement without operands: nothing to check."""

    def _if(self, stmt: A.If) -> None:
        for branch in stmt.branches:
            if branch.condition is not None:
                self._expr(branch.condition)
            self._block(branch.body)

    def _transfer(self, stmt: A.Transfer) -> None:
        for destination in stmt.destinations:
            self._expr(destination)
        if len(stmt.destinations) > MAX_DESTINATIONS:
            self.sink.error(f"a transfer may ring at most {MAX_DESTINATIONS} destinations",
                            stmt.destinations[MAX_DESTINATIONS].span)
        options = self._options(stmt.options, "transfer")
        if "timeout" in options:
            self._duration(options["timeout"].value, "transfer timeout")
        if "callerid" in options:
            self._expr(options["callerid"].value)
        if "announce" in options:
            self._prompt_ref(options["announce"].value)

    def _queue(self, stmt: A.Queue) -> None:
        self._expr(stmt.queue)
        options = self._options(stmt.options, "queue")
        if "timeout" in options:
            self._duration(options["timeout"].value, "queue timeout", maximum_ms=MAX_QUEUE_WAIT_MS)
        if "announce" in options:
            self._prompt_ref(options["announce"].value)

    def _record(self, stmt: A.Record) -> None:
        options = self._options(stmt.options, "record")
        if "max" in options:
            self._duration(options["max"].value, "record max")
        if "silence" in options:
            self._duration(options["silence"].value, "record silence")
        if "terminator" in options:
            self._key(options["terminator"].value, single=True)

    def _fetch(self, stmt: A.Fetch) -> None:
        self._web(stmt, self._options(stmt.options, "fetch"))

    def _send(self, stmt: A.Send) -> None:
        self._web(stmt, self._options(stmt.options, "send"))

    def _notify(self, stmt: A.Notify) -> None:
        options = self._options(stmt.options, "notify")
        self._web(stmt, options)
        tainted = self.tainted()
        reads = [part for part in stmt.path.names if part.name in tainted]
        for pair in options["with"].value if "with" in options else ():
            reads += [node for node in _expr_names(pair.value) if node.name in tainted]
        for node in reads:
            what = "a secret gathered value" if node.name in self.sym.secret else "set from a secret gathered value"
            self.sink.error(f"'{node.name}' is {what}; notify is queued in the database, so it cannot carry it "
                            "(use send, which is never stored)", node.span)

    def _web(self, stmt, options: dict[str, A.Option]) -> None:
        service = stmt.service
        if service.text not in self.sym.services:
            self.sink.error(f"unknown service '{service.text}'" + (suggest(service.text, self.sym.services)
                            or f"; declare it with: service {service.text} = \"https://...\""), service.span)
        self._web_path(stmt.path)
        seen: dict[str, A.Pair] = {}
        for pair in options["with"].value if "with" in options else ():
            if pair.key in seen:
                self.sink.error(f"'{pair.key}' is given twice in this with (first at column "
                                f"{seen[pair.key].key_span.column})", pair.key_span)
            seen[pair.key] = pair
            self._expr(pair.value)
        if "timeout" in options:
            ms = self._duration(options["timeout"].value, "timeout")
            if ms is not None and ms > MAX_WEB_TIMEOUT_MS:
                self.sink.error(f"a {stmt.op} timeout may be at most {MAX_WEB_TIMEOUT_MS // 1000}s "
                                "(the caller waits in silence meanwhile)", options["timeout"].value.span)

    def _web_path(self, path: A.Template) -> None:
        first = path.parts[0] if path.parts else ""
        literal = "".join(part for part in path.parts if isinstance(part, str))
        if not isinstance(first, str) or not first.startswith("/"):
            self.sink.error("a service path starts with '/' (it is added to the service's URL)", path.span)
        elif "://" in literal:
            self.sink.error("a service path cannot contain '://': the host is the service's; "
                            "declare another service for another host", path.span)
        for part in path.names:
            if part.format is not None:
                self.sink.error(f"'|{part.format}' has no meaning in a path; write {{{part.name}}}", part.span)
        self._template(path)

    def tainted(self) -> set[str]:
        """Secret gathered names and the vars set (or initialised) from an expression reading one."""
        if self._tainted is None:
            tainted = set(self.sym.secret)
            assignments = [(d.name.text, d.value) for d in self.sym.vars]
            for state in self.sym.states.values():
                assignments += [(s.target.text, s.value) for s in _walk(state.body) if isinstance(s, A.Set)]
            reads = [(name, {node.name for node in _expr_names(value)}) for name, value in assignments]
            changed = True
            while changed:
                changed = False
                for name, names in reads:
                    if name not in tainted and names & tainted:
                        tainted.add(name)
                        changed = True
            self._tainted = tainted
        return self._tainted

    def _assign(self, target: A.Name) -> None:
        kind = self.value_kinds.get(target.text)
        if kind == "reply":
            self.sink.error(f"cannot assign reply '{target.text}' (a fetch or send fills it)", target.span)
        elif kind == "param":
            self.sink.error(f"cannot assign param '{target.text}' (params are read-only)", target.span)
        elif kind == "built-in":
            self.sink.error(f"cannot assign built-in '{target.text}' (built-ins are read-only)", target.span)
        elif kind is None:
            self.sink.error(f"unknown variable '{target.text}'" + suggest(target.text, self.value_kinds)
                            + f"; declare it at the top with 'var {target.text} = ...'", target.span)

    def _gather(self, stmt: A.Gather) -> None:
        options = self._options(stmt.options, "gather")
        if "digits" in options and "max" in options:
            self.sink.error("use either 'digits' (exactly N keys) or 'max' (up to N keys), not both",
                            options["max"].span)
        for kind in ("digits", "max"):
            if kind in options:
                self._count(options[kind].value, kind, 1, MAX_KEYS)
        if "tries" in options:
            self._count(options["tries"].value, "tries", 1, 20)
        if "terminator" in options:
            self._key(options["terminator"].value, single=True)
        if "prompt" in options:
            self._prompt_ref(options["prompt"].value)
        if "timeout" in options:
            self._duration(options["timeout"].value, "timeout")
        if "interdigit" in options:
            self._duration(options["interdigit"].value, "interdigit")

    def _menu(self, menu: A.Menu) -> None:
        if menu.prompt is not None:
            self._prompt_ref(menu.prompt)
        options = self._options(menu.options, "menu")
        interdigit = DEFAULT_INTERDIGIT_MS
        if "timeout" in options:
            self._duration(options["timeout"].value, "timeout")
        if "tries" in options:
            self._count(options["tries"].value, "tries", 1, 20)
        if "interdigit" in options:
            interdigit = self._duration(options["interdigit"].value, "interdigit", allow_zero=True)
        seen: dict[str, A.Choice] = {}
        for choice in menu.choices:
            if choice.target is not None:
                self._state_ref(choice.target)
            if not self._key(choice.key, single=False):
                continue
            keys = choice.key.keys
            if keys in seen:
                self.sink.error(f"key '{_key_name(keys)}' is used twice in this menu "
                                f"(first on line {seen[keys].span.line})", choice.key.span)
                continue
            seen[keys] = choice
        if interdigit == 0:
            for keys, choice in seen.items():
                longer = next((other for other in seen if other != keys and other.startswith(keys)), None)
                if longer is not None:
                    self.sink.error(f"'{keys}' and '{longer}' cannot be told apart with 'interdigit 0s'; "
                                    "give the menu an interdigit wait", choice.key.span)
        if not menu.choices:
            self.sink.error("this menu has no choices (add lines such as: 1 -> sales)", menu.span)
        for handler in (menu.invalid, menu.timeout):
            if handler is None:
                continue
            if handler.goto is not None:
                self._state_ref(handler.goto)
            else:
                self._prompt_ref(handler.prompt)
        for extra in menu.extra_handlers:
            self.sink.error(f"'{extra.kind}' is given twice in this menu", extra.span)
        if menu.failure is not None:
            self._state_ref(menu.failure)
        else:
            self.sink.warning("this menu has no 'failure' target: after its last failed try the call hangs up",
                              menu.span)

    # -- flow ---------------------------------------------------------------------------------------------
    def _flow(self) -> None:
        states = self.sym.states
        if self.sym.start not in states:
            return
        edges = {name: _targets(decl.body) for name, decl in states.items()}
        reachable = {self.sym.start}
        frontier = [self.sym.start]
        while frontier:
            for target in edges[frontier.pop()]:
                if target in states and target not in reachable:
                    reachable.add(target)
                    frontier.append(target)
        for name, decl in states.items():
            if name not in reachable and not _shared(decl):
                self.sink.warning(f"state '{name}' can never be reached", decl.name.span)
        quick = {}
        for name, decl in states.items():
            found: dict[str, A.Goto] = {}
            _waitless_gotos(decl.body, True, found)
            quick[name] = {t: g for t, g in found.items() if t in states}
        for cycle in _cycles(quick):
            closing = quick[cycle[-1]][cycle[0]]
            route = " -> ".join(cycle + [cycle[0]])
            self.sink.error(f"these states can loop forever without waiting for the caller: {route}; "
                            "put a menu, gather, record, transfer, queue or wait on the loop", closing.span)
        self._silent_menu_cycles(reachable)

    def _silent_menu_cycles(self, reachable: set[str]) -> None:
        """Warn where a caller who presses nothing goes round menus for ever (timeout/failure paths)."""
        silent = {}
        for name in (state for state in self.sym.states if state in reachable):
            menu = _first_menu(self.sym.states[name].body)
            target = _silent_target(menu) if menu is not None else None
            silent[name] = {target: menu} if target in self.sym.states else {}
        for cycle in _cycles(silent):
            menu = silent[cycle[0]][cycle[1] if len(cycle) > 1 else cycle[0]]
            route = " -> ".join(cycle + [cycle[0]])
            self.sink.warning(f"a caller who presses nothing is never let go: the menus' timeout and failure "
                              f"paths only lead to each other ({route}); give one of them a way out "
                              "(failure -> goodbye)", menu.span)


# What may come before a menu without giving a silent caller a way out of the state.
_BEFORE_MENU = (A.Answer, A.Say, A.Play, A.Wait, A.Set, A.Log, A.Result, A.Gather, A.Optout, A.Fetch, A.Send,
                A.Notify)


def _first_menu(body: tuple) -> A.Menu | None:
    """The menu every run of the state reaches (only plain statements before it), else None."""
    for stmt in body:
        if isinstance(stmt, A.Menu):
            return stmt
        if not isinstance(stmt, _BEFORE_MENU):
            return None
    return None


def _silent_target(menu: A.Menu) -> str | None:
    """Where a menu sends a caller who presses nothing: its timeout jump, else its failure target."""
    if menu.timeout is not None and menu.timeout.goto is not None:
        return menu.timeout.goto.text
    return menu.failure.text if menu.failure is not None else None



def _shared(decl) -> bool:
    """Declared in an included file: a shared file's states and vars need not all be used by each script."""
    return getattr(decl.span, "source", None) is not None


def _reply_target(stmt) -> A.Name | None:
    """The name a statement puts a reply in: ``fetch NAME``, ``send ... into NAME``."""
    if isinstance(stmt, A.Fetch):
        return stmt.target
    if isinstance(stmt, A.Send):
        return next((o.value for o in stmt.options if o.kind == "into"), None)
    return None


def _expr_names(expr) -> list:
    """The names an expression reads (NameRef, PathRef and the interpolations of its strings)."""
    found = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, (A.NameRef, A.PathRef)):
            found.append(node)
        elif isinstance(node, A.StrLit):
            found.extend(node.template.names)
        elif isinstance(node, A.Binary):
            stack.extend((node.left, node.right))
        elif isinstance(node, (A.Not, A.Negate)):
            stack.append(node.operand)
        elif isinstance(node, A.Call):
            stack.extend(node.args)
    return found


def _key_name(keys: str) -> str:
    return {"*": "star", "#": "hash"}.get(keys, keys)


def _walk(body: tuple):
    """Every statement of a block, nested ones included (iterative)."""
    stack = list(reversed(body))
    while stack:
        stmt = stack.pop()
        yield stmt
        if isinstance(stmt, A.If):
            for branch in reversed(stmt.branches):
                stack.extend(reversed(branch.body))


def _targets(body: tuple) -> list[str]:
    """The states a block can go to (``ir.op_targets`` of what each statement lowers to)."""
    out: list[str] = []
    for stmt in _walk(body):
        lowered = exits(stmt)
        if lowered is not None:
            out.extend(op_targets(lowered))
    return out


def _waitless_gotos(body: tuple, unwaited: bool, found: dict) -> bool:
    """Record ``goto``s some path reaches without waiting; return whether the block may end unwaited."""
    for stmt in body:
        if not unwaited:
            return False
        kind = OPS[stmt.op]
        if kind.waits:
            return False
        if isinstance(stmt, A.Goto):
            found.setdefault(stmt.target.text, stmt)
        if kind.leaves:
            return False
        if isinstance(stmt, A.If):
            falls = not any(b.condition is None for b in stmt.branches)
            for branch in stmt.branches:
                falls = _waitless_gotos(branch.body, True, found) or falls
            unwaited = falls
    return unwaited


def _cycles(graph: dict[str, dict]) -> list[list[str]]:
    """One representative cycle per strongly connected component that loops (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    components.append(component)
    cycles = []
    for component in components:
        cycles.append(_shortest_cycle(graph, set(component), min(component, key=lambda n: index[n])))
    return cycles


def _shortest_cycle(graph: dict[str, dict], members: set[str], start: str) -> list[str]:
    """The shortest loop from ``start`` back to itself inside one strongly connected component."""
    if start in graph[start]:
        return [start]
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in graph[node]:
                if child not in members or child in parent or child == start:
                    continue
                parent[child] = node
                if start in graph[child]:
                    path = [child]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return list(reversed(path))
                following.append(child)
        frontier = following
    return [start]


# The checker's statement dispatch: AST statement class -> its check. tests/language/test_internals.py
# fails when an AST statement has none; at run time an unknown statement is a loud TypeError.
STATEMENT_CHECKS = {
    A.Answer: Checker._nothing, A.Optout: Checker._nothing, A.Hangup: Checker._nothing,
    A.Say: Checker._say, A.Play: Checker._play, A.Wait: Checker._wait, A.Set: Checker._set,
    A.Goto: Checker._goto, A.Result: Checker._value, A.Log: Checker._value, A.If: Checker._if,
    A.Gather: Checker._gather, A.Transfer: Checker._transfer, A.Queue: Checker._queue,
    A.Record: Checker._record,
    A.Menu: Checker._menu, A.Fetch: Checker._fetch, A.Send: Checker._send, A.Notify: Checker._notify,
}
