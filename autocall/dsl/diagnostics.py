"""Compiler diagnostics: collected, never raised one by one, and printed like a C compiler's."""

from __future__ import annotations

from dataclasses import dataclass

from autocall.dsl.ast import Span

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    message: str
    span: Span | None
    path: str

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def location(self) -> str:
        if self.span is None:
            return self.path
        return f"{self.path}:{self.span.line}:{self.span.column}"

    def headline(self) -> str:
        return f"{self.location()}: {self.severity}: {self.message}"

    def render(self, source_lines: list[str] | None) -> str:
        """The headline, then the source line and a caret under the spot (when the line is known)."""
        text = self.headline()
        if self.span is None or not source_lines or self.span.line > len(source_lines):
            return text
        line = source_lines[self.span.line - 1].rstrip("\r\n")
        if len(line) > 200:
            return text
        start = max(self.span.column - 1, 0)
        if self.span.end_line == self.span.line:
            width = max(self.span.end_column - self.span.column, 1)
        else:
            width = max(len(line) - start, 1)
        prefix = "".join(ch if ch == "\t" else " " for ch in line[:start])
        return f"{text}\n{line}\n{prefix}^{'~' * (width - 1)}"


class DiagnosticSink:
    """Collects diagnostics for one file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[Diagnostic] = []
        self._seen: set[Diagnostic] = set()

    def error(self, message: str, span: Span | None) -> None:
        self._add(Diagnostic(ERROR, message, span, self.file_of(span)))

    def warning(self, message: str, span: Span | None) -> None:
        self._add(Diagnostic(WARNING, message, span, self.file_of(span)))

    def file_of(self, span: Span | None) -> str:
        """The file a span is in: an included file's spans say which (``autocall.dsl.includes``)."""
        return getattr(span, "source", None) or self.path

    def _add(self, diagnostic: Diagnostic) -> None:
        """Each problem once, however many times a part of the file is read (syntax error recovery)."""
        if diagnostic not in self._seen:
            self._seen.add(diagnostic)
            self.items.append(diagnostic)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        def key(d: Diagnostic):
            return (d.path != self.path, d.path, (d.span.line, d.span.column) if d.span else (0, 0))
        return sorted(self.items, key=key)
