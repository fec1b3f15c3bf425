"""Typed AST of a ``.dlg`` script; every node carries the span of source it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

_MISSING = object()


class Node:
    """Base of AST nodes: value equality and a readable repr over the annotated fields."""

    _fields: tuple[str, ...] = ()

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({inner})"


def node(cls: type[Node]) -> type[Node]:
    """Give a ``Node`` subclass (annotated fields, optional defaults) a fast ``__init__``.

    A light stand-in for ``@dataclass(frozen=True)``: dataclasses cost about a
    millisecond per class to create, which ``autocall check`` pays at start-up.
    """
    names = tuple(cls.__dict__.get("__annotations__", {}))
    params = []
    defaults = {}
    for name in names:
        default = cls.__dict__.get(name, _MISSING)
        if default is _MISSING:
            params.append(name)
        else:
            defaults[f"_d_{name}"] = default
            params.append(f"{name}=_d_{name}")
    body = "".join(f"    self.{name} = {name}\n" for name in names) or "    pass\n"
    namespace: dict = dict(defaults)
    exec(f"def __init__(self, {', '.join(params)}):\n{body}", namespace)
    cls.__init__ = namespace["__init__"]
    cls._fields = names
    for name in names:
        if name in cls.__dict__:
            delattr(cls, name)
    return cls


@node
class Span(Node):
    """1-based line and column of the first character, and of the character after the last."""

    line: int
    column: int
    end_line: int
    end_column: int

    def to(self, other: "Span") -> "Span":
        return Span(self.line, self.column, other.end_line, other.end_column)


# -- strings with interpolation ------------------------------------------------

@node
class Interpolation(Node):
    """``{name}`` or ``{name|digits}`` inside a string; ``{account.data.id}`` has ``path`` ("data", "id")."""

    name: str
    format: str | None
    span: Span
    path: tuple[str, ...] = ()


@node
class Template(Node):
    """A string literal: literal text and interpolations, in order."""

    parts: tuple[str | Interpolation, ...]
    span: Span

    @property
    def names(self) -> list[Interpolation]:
        return [part for part in self.parts if isinstance(part, Interpolation)]

    @property
    def is_constant(self) -> bool:
        return not self.names


# -- expressions -----------------------------------------------------------------

@node
class IntLit(Node):
    value: int
    span: Span


@node
class DecimalLit(Node):
    """A number with a fractional part, kept as written (``12.50``) so it stays exact."""

    text: str
    span: Span


@node
class StrLit(Node):
    template: Template
    span: Span


@node
class NameRef(Node):
    name: str
    span: Span


@node
class PathRef(Node):
    """``account.data.items.0.name``: ``name`` is the reply, ``path`` the segments after it."""

    name: str
    path: tuple[str, ...]
    span: Span


@node
class Call(Node):
    function: str
    function_span: Span
    args: tuple["Expr", ...]
    span: Span


@node
class Binary(Node):
    op: str
    left: "Expr"
    right: "Expr"
    span: Span


@node
class Not(Node):
    operand: "Expr"
    span: Span


@node
class Negate(Node):
    operand: "Expr"
    span: Span


Expr = IntLit | DecimalLit | StrLit | NameRef | PathRef | Call | Binary | Not | Negate


# -- small pieces -------------------------------------------------------------------

@node
class Name(Node):
    """An identifier as written, with where it was written."""

    text: str
    span: Span


@node
class Duration(Node):
    """A duration; ``unit_missing`` marks a bare number (an error: "write 5s")."""

    ms: int
    span: Span
    unit_missing: bool = False


@node
class Count(Node):
    value: int
    span: Span


@node
class Key(Node):
    """A DTMF key or key sequence as written: ``1``, ``star``, ``"#"``, ``"101"``."""

    keys: str
    span: Span
    quoted: bool


@node
class TtsRef(Node):
    template: Template
    span: Span


@node
class NamedRef(Node):
    name: str
    span: Span


@node
class FileRef(Node):
    path: str
    span: Span


@node
class SoundRef(Node):
    name: str
    span: Span


PromptRef = TtsRef | NamedRef | FileRef | SoundRef


@node
class Pair(Node):
    """``KEY = EXPR`` of a ``with`` (the query of a fetch, the JSON object of a send or notify)."""

    key: str
    key_span: Span
    value: "Expr"
    span: Span


@node
class Option(Node):
    """One option of a statement (``timeout 5s``, ``digits 4``, ``secret``); ``value`` by kind."""

    kind: str
    value: object
    span: Span


# -- statements -----------------------------------------------------------------------

class Statement(Node):
    """Base of statements. ``op`` is the IR op kind the statement lowers to (``if`` lowers to several);
    what the flow analyses need to know of it (does it leave the state, does it wait) is read from
    ``autocall.engine.ir.OPS[op]``, the one place that says it."""

    op = ""


@node
class Answer(Statement):
    op = "answer"
    span: Span


@node
class Say(Statement):
    op = "play"
    template: Template
    span: Span


@node
class Play(Statement):
    op = "play"
    prompt: PromptRef
    span: Span


@node
class Wait(Statement):
    op = "wait"
    duration: Duration
    span: Span


@node
class Set(Statement):
    op = "set"
    target: Name
    value: Expr
    span: Span


@node
class Gather(Statement):
    op = "gather"
    target: Name
    options: tuple[Option, ...]
    span: Span


@node
class Goto(Statement):
    op = "goto"
    target: Name
    span: Span


@node
class Transfer(Statement):
    """One destination, or several (a ring group: ``ring all`` or ``ring in order``)."""

    op = "transfer"
    destinations: tuple[Expr, ...]
    options: tuple[Option, ...]
    span: Span


@node
class Queue(Statement):
    """Wait in an Asterisk call queue (``queues.conf``) for an agent."""

    op = "queue"
    queue: Expr
    options: tuple[Option, ...]
    span: Span


@node
class Record(Statement):
    op = "record"
    target: Name
    options: tuple[Option, ...]
    span: Span


@node
class Result(Statement):
    op = "result"
    value: Expr
    span: Span


@node
class Log(Statement):
    op = "log"
    value: Expr
    span: Span


@node
class Optout(Statement):
    op = "optout"
    span: Span


@node
class Hangup(Statement):
    op = "hangup"
    span: Span


@node
class Fetch(Statement):
    """``fetch NAME from SERVICE "PATH" [with ...] [timeout D]``."""

    op = "fetch"
    target: Name
    service: Name
    path: Template
    options: tuple[Option, ...]
    span: Span


@node
class Send(Statement):
    """``send SERVICE "PATH" [with ...] [into NAME] [timeout D]``."""

    op = "send"
    service: Name
    path: Template
    options: tuple[Option, ...]
    span: Span


@node
class Notify(Statement):
    """``notify SERVICE "PATH" [with ...]``: queued, delivered in the background."""

    op = "notify"
    service: Name
    path: Template
    options: tuple[Option, ...]
    span: Span


@node
class Branch(Node):
    """One ``if``/``elif`` arm (``condition`` None for ``else``)."""

    condition: Expr | None
    body: tuple["Stmt", ...]
    span: Span


@node
class If(Statement):
    op = "if"
    branches: tuple[Branch, ...]
    span: Span


@node
class Choice(Node):
    """``KEY -> STATE`` or ``KEY -> repeat`` (``target`` None)."""

    key: Key
    target: Name | None
    span: Span


@node
class Handler(Node):
    """What ``invalid``/``timeout`` do: jump (``goto``) or speak (``prompt``) and try again."""

    kind: str
    goto: Name | None
    prompt: PromptRef | None
    span: Span


@node
class Menu(Statement):
    op = "menu"
    prompt: PromptRef | None
    options: tuple[Option, ...]
    choices: tuple[Choice, ...]
    invalid: Handler | None
    timeout: Handler | None
    failure: Name | None
    span: Span
    extra_handlers: tuple[Handler, ...] = ()


# Grammar rule -> statement class: ``wait_stmt`` builds ``Wait`` (the parser's default builder).
STATEMENT_RULES = {cls.__name__.lower() + "_stmt": cls for cls in Statement.__subclasses__()}

Stmt = (Answer | Say | Play | Wait | Set | Gather | Goto | Transfer | Queue | Record | Result
        | Log | Optout | Hangup | Fetch | Send | Notify | If | Menu)


# -- declarations -------------------------------------------------------------------------

@node
class DialogueDecl(Node):
    name: Name
    span: Span


@node
class SettingDecl(Node):
    """``voice``, ``currency``, ``rate``, ``timeout`` or ``tries`` at the top level."""

    kind: str
    value: object
    span: Span


@node
class ParamDecl(Node):
    name: Name
    default: IntLit | DecimalLit | StrLit | None
    span: Span


@node
class VarDecl(Node):
    name: Name
    value: Expr
    span: Span


@node
class PromptDecl(Node):
    name: Name
    source: TtsRef | FileRef | SoundRef
    span: Span


@node
class HoursDecl(Node):
    name: Name
    spec: str
    spec_span: Span
    timezone: str | None
    timezone_span: Span | None
    span: Span


@node
class ServiceDecl(Node):
    """``service NAME = "https://host/base"``."""

    name: Name
    url: str
    url_span: Span
    span: Span


@node
class StartDecl(Node):
    state: Name
    span: Span


@node
class IncludeDecl(Node):
    """``include "path.dlg"``: ``path`` as written, relative to the including file."""

    path: str
    path_span: Span
    span: Span


@node
class StateDecl(Node):
    name: Name
    body: tuple[Stmt, ...]
    span: Span


Decl = (DialogueDecl | SettingDecl | ParamDecl | VarDecl | PromptDecl | HoursDecl | ServiceDecl | StartDecl
        | StateDecl | IncludeDecl)


@dataclass
class Script:
    """A parsed file: its declarations in source order."""

    path: str
    declarations: list[Decl] = field(default_factory=list)
    recovered: frozenset[int] = frozenset()     # lines read as neutral text after a syntax error
