"""The compiler's front door: file or text in, diagnostics and (when clean) a Program out."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from functools import cached_property

from autocall.dsl import ast as A
from autocall.dsl.checker import Checker, CheckOptions
from autocall.dsl.diagnostics import Diagnostic, DiagnosticSink
from autocall.dsl.lower import Lowering
from autocall.dsl.parser import MAX_SCRIPT_BYTES, DialogueParser
from autocall.engine.ir import Program


@dataclass
class CompileResult:
    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    program: Program | None = None
    text: str = field(default="", repr=False)

    @cached_property
    def lines(self) -> list[str]:
        """The source's lines, for showing diagnostics."""
        return self.text.splitlines()

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
        return "\n".join(d.render(self.lines) for d in self.diagnostics)


class Compiler:
    """Holds the parser (built once); compiles any number of scripts. One per thread."""

    def __init__(self, check_audio: bool = True, audio_roots: tuple[str, ...] = ()) -> None:
        self._parser: DialogueParser | None = None
        self.check_audio = check_audio
        self.audio_roots = tuple(audio_roots)     # folders besides the script's that file prompts may be in
        self._validator = None      # a CachedValidator, made when the first script needs audio checks

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
        collecting = gc.isenabled()
        gc.disable()  # compiling allocates many small objects that all stay alive; GC passes only cost time
        try:
            script = self.parser.parse(text, path, sink)
            if script is not None:
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

    def _options(self, base_dir: str) -> CheckOptions:
        options = CheckOptions(base_dir=base_dir, audio_roots=self.audio_roots)
        if self.check_audio:
            from autocall.audio.probe import validate_prompt_file
            from autocall.audio.voices import resolve_voice
            if self._validator is None:
                from autocall.dsl.prompt_checks import CachedValidator
                self._validator = CachedValidator(validate_prompt_file)
            options.validate_audio = self._validator
            options.resolve_voice = resolve_voice
        return options

    def save_caches(self) -> None:
        """Keep what was learnt about audio files for the next run (see ``prompt_checks``)."""
        if self._validator is not None:
            self._validator.save()


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
