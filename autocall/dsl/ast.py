"""Typed AST of a ``.dlg`` script; every node carries the span of source it came from."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """1-based line and column of the first character, and of the character after the last."""

    line: int
    column: int
    end_line: int
    end_column: int

    def to(self, other: "Span") -> "Span":
        return Span(self.line, self.column, other.end_line, other.end_column)


# -- strings with interpolation ------------------------------------------------

@dataclass(frozen=True)
class Interpolation:
    """``{name}`` or ``{name|digits}`` inside a string."""

    name: str
    format: str | None
    span: Span


@dataclass(frozen=True)
class Template:
    """A string literal: literal text and interpolations, in order."""

    parts: tuple[str | Interpolation, ...]
    span: Span

    @property
    def names(self) -> list[Interpolation]:
        return [part for part in self.parts if isinstance(part, Interpolation)]

    @property
    def is_constant(self) -> bool:
        return not self.names

    def literal_text(self) -> str:
        """The text with interpolations written back in braces (for display)."""
        out = []
        for part in self.parts:
            if isinstance(part, Interpolation):
                out.append("{" + part.name + ("|" + part.format if part.format else "") + "}")
            else:
                out.append(part.replace("{", "{{").replace("}", "}}"))
        return "".join(out)


# -- expressions -----------------------------------------------------------------

@dataclass(frozen=True)
class IntLit:
    value: int
    span: Span


@dataclass(frozen=True)
class StrLit:
    template: Template
    span: Span


@dataclass(frozen=True)
class NameRef:
    name: str
    span: Span


@dataclass(frozen=True)
class Call:
    function: str
    function_span: Span
    args: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class Binary:
    op: str
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Not:
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Negate:
    operand: "Expr"
    span: Span


Expr = IntLit | StrLit | NameRef | Call | Binary | Not | Negate


# -- small pieces -------------------------------------------------------------------

@dataclass(frozen=True)
class Name:
    """An identifier as written, with where it was written."""

    text: str
    span: Span


@dataclass(frozen=True)
class Duration:
    """A duration; ``unit_missing`` marks a bare number (an error: "write 5s")."""

    ms: int
    span: Span
    unit_missing: bool = False


@dataclass(frozen=True)
class Count:
    value: int
    span: Span


@dataclass(frozen=True)
class Key:
    """A DTMF key or key sequence as written: ``1``, ``star``, ``"#"``, ``"101"``."""

    keys: str
    span: Span
    quoted: bool


@dataclass(frozen=True)
class TtsRef:
    template: Template
    span: Span


@dataclass(frozen=True)
class NamedRef:
    name: str
    span: Span


@dataclass(frozen=True)
class FileRef:
    path: str
    span: Span


@dataclass(frozen=True)
class SoundRef:
    name: str
    span: Span


PromptRef = TtsRef | NamedRef | FileRef | SoundRef


@dataclass(frozen=True)
class Option:
    """One option of a statement (``timeout 5s``, ``digits 4``, ``secret``); ``value`` by kind."""

    kind: str
    value: object
    span: Span


# -- statements -----------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    span: Span


@dataclass(frozen=True)
class Say:
    template: Template
    span: Span


@dataclass(frozen=True)
class Play:
    prompt: PromptRef
    span: Span


@dataclass(frozen=True)
class Wait:
    duration: Duration
    span: Span


@dataclass(frozen=True)
class Set:
    target: Name
    value: Expr
    span: Span


@dataclass(frozen=True)
class Gather:
    target: Name
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True)
class Goto:
    target: Name
    span: Span


@dataclass(frozen=True)
class Transfer:
    destination: Expr
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True)
class Record:
    target: Name
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True)
class Result:
    value: Expr
    span: Span


@dataclass(frozen=True)
class Log:
    value: Expr
    span: Span


@dataclass(frozen=True)
class Optout:
    span: Span


@dataclass(frozen=True)
class Hangup:
    span: Span


@dataclass(frozen=True)
class Branch:
    """One ``if``/``elif`` arm (``condition`` None for ``else``)."""

    condition: Expr | None
    body: tuple["Stmt", ...]
    span: Span


@dataclass(frozen=True)
class If:
    branches: tuple[Branch, ...]
    span: Span


@dataclass(frozen=True)
class Choice:
    """``KEY -> STATE`` or ``KEY -> repeat`` (``target`` None)."""

    key: Key
    target: Name | None
    span: Span


@dataclass(frozen=True)
class Handler:
    """What ``invalid``/``timeout`` do: jump (``goto``) or speak (``prompt``) and try again."""

    kind: str
    goto: Name | None
    prompt: PromptRef | None
    span: Span


@dataclass(frozen=True)
class Menu:
    prompt: PromptRef | None
    options: tuple[Option, ...]
    choices: tuple[Choice, ...]
    invalid: Handler | None
    timeout: Handler | None
    failure: Name | None
    span: Span
    extra_handlers: tuple[Handler, ...] = ()


Stmt = (Answer | Say | Play | Wait | Set | Gather | Goto | Transfer | Record | Result
        | Log | Optout | Hangup | If | Menu)


# -- declarations -------------------------------------------------------------------------

@dataclass(frozen=True)
class DialogueDecl:
    name: Name
    span: Span


@dataclass(frozen=True)
class SettingDecl:
    """``voice``, ``rate``, ``timeout`` or ``tries`` at the top level."""

    kind: str
    value: object
    span: Span


@dataclass(frozen=True)
class ParamDecl:
    name: Name
    default: IntLit | StrLit | None
    span: Span


@dataclass(frozen=True)
class VarDecl:
    name: Name
    value: Expr
    span: Span


@dataclass(frozen=True)
class PromptDecl:
    name: Name
    source: TtsRef | FileRef | SoundRef
    span: Span


@dataclass(frozen=True)
class HoursDecl:
    name: Name
    spec: str
    spec_span: Span
    timezone: str | None
    timezone_span: Span | None
    span: Span


@dataclass(frozen=True)
class StartDecl:
    state: Name
    span: Span


@dataclass(frozen=True)
class StateDecl:
    name: Name
    body: tuple[Stmt, ...]
    span: Span


Decl = DialogueDecl | SettingDecl | ParamDecl | VarDecl | PromptDecl | HoursDecl | StartDecl | StateDecl


@dataclass
class Script:
    """A parsed file: its declarations in source order."""

    path: str
    declarations: list[Decl] = field(default_factory=list)
