"""The compiler's front door: file or text in, diagnostics and (when clean) a Program out."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

from autocall.dsl import ast as A
from autocall.dsl.checker import Checker, CheckOptions
from autocall.dsl.diagnostics import Diagnostic, DiagnosticSink
from autocall.dsl.includes import Includes
from autocall.dsl.lower import Lowering
from autocall.dsl.parser import MAX_SCRIPT_BYTES, DialogueParser
from autocall.engine.ir import Program


@dataclass
class CompileResult:
    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    program: Program | None = None
    text: str = field(default="", repr=False)
    includes: list[str] = field(default_factory=list)        # the included files (absolute), for hot reload
    sources: dict[str, str] = field(default_factory=dict, repr=False)   # included files' text by shown path

    @cached_property
    def lines(self) -> list[str]:
        """The source's lines, for showing diagnostics."""
        return self.text.splitlines()

    def lines_of(self, diagnostic: Diagnostic) -> list[str]:
        """The lines of the file a diagnostic points into (the script's, or an included file's)."""
        if diagnostic.path in self.sources:
            return self.sources[diagnostic.path].splitlines()
        return self.lines

    def show(self, diagnostic: Diagnostic) -> str:
        return diagnostic.render(self.lines_of(diagnostic))

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    def render(self) -> str:
        """Every diagnostic as the compiler prints it (headline, source line, caret)."""
        return "\n".join(self.show(d) for d in self.diagnostics)


class Compiler:
    """Holds the parser (built once); compiles any number of scripts. One per thread.

    Pure by default: audio files are only looked for, not decoded, and voice names are not resolved.
    ``validate_audio(path) -> warnings`` and ``resolve_voice(name)`` add those checks (the CLI and the
    server pass ``autocall.audio.prompt_checks.audio_checks()``); a ``validate_audio`` with a ``save()``
    has it called after each compile. ``pause_gc`` pauses the garbage collector while compiling (the
    many small objects a compile makes all stay alive): for a one-shot command, never on a server.
    """

    def __init__(self, *, validate_audio: Callable[[str], list[str]] | None = None,
                 resolve_voice: Callable[[str], str] | None = None, pause_gc: bool = False,
                 audio_roots: tuple[str, ...] = ()) -> None:
        self._parser: DialogueParser | None = None
        self.audio_roots = tuple(audio_roots)     # folders besides the script's that file prompts may be in
        self.validate_audio = validate_audio
        self.resolve_voice = resolve_voice
        self.pause_gc = pause_gc

    @property
    def parser(self) -> DialogueParser:
        if self._parser is None:
            self._parser = DialogueParser()
        return self._parser

    def compile_file(self, path: str) -> CompileResult:
        sink = DiagnosticSink(path)
        result = CompileResult(path)
        text = read_script(path, sink)
        if text is None:
            result.diagnostics = sink.sorted()
            return result
        return self.compile_text(text, path, base_dir=os.path.dirname(os.path.abspath(path)))

    def compile_text(self, text: str, path: str = "<script>", base_dir: str = ".") -> CompileResult:
        sink = DiagnosticSink(path)
        result = CompileResult(path, text=text)
        collecting = self.pause_gc and gc.isenabled()
        if collecting:
            gc.disable()
        try:
            script = self.parser.parse(text, path, sink)
            if script is not None and any(d.__class__ is A.IncludeDecl for d in script.declarations):
                includes = Includes(self.parser, sink, base_dir, path, read_script)
                includes.expand(script)
                result.includes, result.sources = includes.files, includes.sources
            if script is not None and script.recovered:
                self._check_recovered(script, sink, base_dir)
            elif script is not None:
                options = self._options(base_dir)
                symbols = Checker(script, sink, options).run()
                if not sink.has_errors:
                    result.program = Program(Lowering(script, symbols, os.path.basename(path)).run())
            self.save_caches()
        finally:
            if collecting:
                gc.enable()
        result.diagnostics = sink.sorted()
        return result

    def _check_recovered(self, script: A.Script, sink: DiagnosticSink, base_dir: str) -> None:
        """After syntax errors, the rest of the script's errors too: not those about the neutral lines the
        parser read in place of the broken ones, and no warnings (reads and flow are not all known)."""
        checked = DiagnosticSink(sink.path)
        Checker(script, checked, self._options(base_dir)).run()
        for diagnostic in checked.items:
            if diagnostic.is_error and (diagnostic.span is None or getattr(diagnostic.span, "source", None) is not None
                                        or diagnostic.span.line not in script.recovered):
                sink.error(diagnostic.message, diagnostic.span)

    def _options(self, base_dir: str) -> CheckOptions:
        return CheckOptions(base_dir=base_dir, audio_roots=self.audio_roots, validate_audio=self.validate_audio,
                            resolve_voice=self.resolve_voice)

    def save_caches(self) -> None:
        """Keep what was learnt about audio files for the next run (a validator with a memo saves it)."""
        save = getattr(self.validate_audio, "save", None)
        if save is not None:
            save()


def read_script(path: str, sink: DiagnosticSink) -> str | None:
    """The text of a script, or None after one clear diagnostic (missing, too big, not UTF-8)."""
    try:
        size = os.path.getsize(path)
        if os.path.isdir(path):
            sink.error("is a folder, not a .dlg script", None)
            return None
        if size > MAX_SCRIPT_BYTES:
            sink.error(f"the file is {size / 1_048_576:.1f} MB; a dialogue script may be at most "
                       f"{MAX_SCRIPT_BYTES // 1_048_576} MB (split it into several dialogues)", None)
            return None
        with open(path, "rb") as handle:
            data = handle.read(MAX_SCRIPT_BYTES + 1)
    except FileNotFoundError:
        sink.error("no such file; check the path", None)
        return None
    except OSError as exc:
        sink.error(f"cannot read the file ({exc.strerror or exc.__class__.__name__})", None)
        return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        sink.error(f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
                   A.Span(line, column, line, column + 1))
        return None
