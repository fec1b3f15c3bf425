"""``include "file.dlg"``: shared files read, parsed and spliced into the including script's declarations.

An included file brings states, prompts, vars and hours (and includes of its
own, relative to it); it has no ``dialogue``, ``start``, settings or params,
which belong to the script that includes it. Every span of an included file
is marked with the file it came from (``span.source``), so the checker's
diagnostics point into it, and its ``file`` prompts are found beside it
(``ref.base_dir``). A file included twice along different paths is read
once; a cycle, a missing file or a file outside the script's folder is an
error at the ``include`` line.
"""

from __future__ import annotations

import os

from autocall.dsl import ast as A
from autocall.dsl.diagnostics import DiagnosticSink

MAX_INCLUDE_DEPTH = 16
# Declarations that belong to the including script, never to a shared file.
_MAIN_ONLY = {A.DialogueDecl: "dialogue", A.StartDecl: "start", A.ParamDecl: "param"}


class Includes:
    """Expands the includes of one script. ``files``: every file read (absolute), for hot reload;
    ``sources``: each included file's text by the path its diagnostics show."""

    def __init__(self, parser, sink: DiagnosticSink, root_dir: str, path: str, read_text) -> None:
        self.parser = parser
        self.sink = sink
        self.root = os.path.realpath(root_dir)
        self.main = os.path.realpath(path) if os.path.isfile(path) else "<script>"
        self.display_dir = os.path.dirname(path)
        self.read_text = read_text          # (absolute path, DiagnosticSink) -> str | None
        self.files: list[str] = []
        self.sources: dict[str, str] = {}
        self._done: set[str] = set()

    def expand(self, script: A.Script) -> None:
        """Replace each ``include`` of ``script`` (and of the files it includes) by the file's declarations."""
        script.declarations = self._splice(script.declarations, self.root, [(self.main, None)])

    def _splice(self, declarations: list, folder: str, chain: list[tuple[str, A.IncludeDecl | None]]) -> list:
        merged: list = []
        for decl in declarations:
            if decl.__class__ is not A.IncludeDecl:
                merged.append(decl)
                continue
            merged.extend(self._include(decl, folder, chain))
        return merged

    def _include(self, decl: A.IncludeDecl, folder: str, chain: list) -> list:
        written = decl.path
        target = os.path.realpath(os.path.join(folder, written))
        where = decl.path_span
        if not written.strip():
            self.sink.error("empty file name in include", where)
            return []
        if os.path.commonpath([self.root, target]) != self.root:
            self.sink.error(f"include '{written}': the file is outside the script's folder; "
                            "shared files live in the script's folder or below it", where)
            return []
        for index, (file, _by) in enumerate(chain):
            if file == target:
                route = " -> ".join(self._show(f) for f, _ in chain[index:]) + f" -> {self._show(target)}"
                first = chain[index + 1][1] if index + 1 < len(chain) else decl
                self.sink.error(f"include cycle: {route} (the cycle starts at "
                                f"{_place(first.span, self._display(chain[index][0]))})", where)
                return []
        if target in self._done:
            return []               # included already along another path: its names are in once
        if len(chain) > MAX_INCLUDE_DEPTH:
            self.sink.error(f"includes nested more than {MAX_INCLUDE_DEPTH} deep", where)
            return []
        if not os.path.exists(target):
            self.files.append(target)          # watched all the same: the script reloads once it is written
            self.sink.error(f"included file '{written}' not found (looked for {self._display(target)}); "
                            "paths are relative to the including file", where)
            return []
        if os.path.isdir(target):
            self.sink.error(f"include '{written}' is a folder, not a .dlg file", where)
            return []
        self._done.add(target)
        self.files.append(target)
        shown = self._display(target)
        file_sink = DiagnosticSink(shown)
        text = self.read_text(target, file_sink)
        script = None
        if text is not None:
            self.sources[shown] = text
            script = self.parser.parse(text, shown, file_sink)
        self.sink.items.extend(file_sink.items)
        if script is None:
            return []
        own_folder = os.path.dirname(target)
        relative = os.path.relpath(target, self.root)
        _mark(script.declarations, shown, own_folder)
        kept = []
        for inner in script.declarations:
            word = _MAIN_ONLY.get(inner.__class__) or (inner.kind if inner.__class__ is A.SettingDecl else None)
            if word is not None:
                self.sink.error(f"'{word}' belongs in the script that includes this file, not in a shared file",
                                inner.span)
                continue
            if inner.__class__ is A.StateDecl:
                inner.origin = relative
            kept.append(inner)
        return self._splice(kept, own_folder, chain + [(target, decl)])

    def _display(self, target: str) -> str:
        """How diagnostics name a file: beside the main script's path as the user gave it."""
        if target == self.main:
            return self.sink.path
        return os.path.normpath(os.path.join(self.display_dir, os.path.relpath(target, self.root)))

    def _show(self, target: str) -> str:
        return os.path.basename(self.sink.path) if target == self.main else os.path.relpath(target, self.root)


def _place(span: A.Span, path: str) -> str:
    return f"{path}:{span.line}"


def _mark(nodes, source: str, folder: str) -> None:
    """Mark every span under ``nodes`` with its file, and every ``file`` prompt with its folder (iterative)."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        kind = node.__class__
        if kind is A.Span:
            node.source = source
        elif kind is tuple or kind is list:
            stack.extend(node)
        elif isinstance(node, A.Node):
            if kind is A.FileRef:
                node.base_dir = folder
            stack.extend(getattr(node, name) for name in node._fields)
        elif kind is A.Script:
            stack.extend(node.declarations)
