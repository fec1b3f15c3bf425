"""Helpers shared by the subcommands: compiling with diagnostics on stderr, configuration, output."""

from __future__ import annotations

import os
import sys

from autocall.config import Config, load_config, with_database
from autocall.dsl.compiler import CompileResult, Compiler
from autocall.engine.ir import Program

_COLORS = {"error": "\033[1;31m", "warning": "\033[1;35m"}


def new_compiler() -> Compiler:
    """The compiler of a one-shot command: audio files and voices checked, the collector paused."""
    from autocall.audio.prompt_checks import audio_checks
    from autocall.dsl import compiler
    return compiler.Compiler(**audio_checks(), pause_gc=True)


def add_config_option(parser, database: bool = False) -> None:
    """``--config``; with ``database``, also ``--database`` (for the commands that store or read calls)."""
    parser.add_argument("--config", metavar="FILE", help="configuration file (default: ./autocall.toml if present)")
    if database:
        add_database_option(parser)


def open_existing_database(config: Config, what: str = "no call has been recorded"):
    """The configured database, which must exist already (reading commands never create an SQLite file);
    a PostgreSQL URL is opened as it is."""
    from autocall.config import is_database_url
    from autocall.errors import UserError
    from autocall.store.db import connect
    database = config.database
    if database != ":memory:" and not is_database_url(database) and not os.path.isfile(database):
        raise UserError(f"{database}: no database there yet ({what}); check the 'database' setting or --config")
    return connect(database)


def add_database_option(parser) -> None:
    parser.add_argument("--database", metavar="FILE|postgresql://...",
                        help="where calls and campaigns are stored: an SQLite file or a PostgreSQL URL "
                             "(default: configuration database, autocall.db)")


def config_from(args) -> Config:
    return with_database(load_config(getattr(args, "config", None)), getattr(args, "database", None))


def use_color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def print_diagnostics(result: CompileResult, warnings: bool = True, stream=None) -> None:
    stream = stream or sys.stderr
    color = use_color(stream)
    for diagnostic in result.diagnostics:
        if not warnings and not diagnostic.is_error:
            continue
        text = result.show(diagnostic)
        if color:
            label = f"{diagnostic.severity}:"
            text = text.replace(label, f"{_COLORS[diagnostic.severity]}{label}\033[0m", 1)
        stream.write(text + "\n")


def compile_or_report(path: str, compiler: Compiler | None = None, warnings: bool = False) -> Program | None:
    """Compile ``path``; print its errors (and warnings if asked) to stderr; the Program or None."""
    result = (compiler or new_compiler()).compile_file(path)
    print_diagnostics(result, warnings=warnings)
    return result.program if result.ok else None


def load_program(path: str, compiler: Compiler | None = None) -> Program | None:
    """A ``.dlg`` compiled, or a compiled ``.json`` loaded; None after printing why not."""
    if path.endswith(".json"):
        try:
            with open(path, encoding="utf-8") as handle:
                return Program.from_json(handle.read(), origin=path)
        except OSError as exc:
            from autocall.errors import UserError
            raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    return compile_or_report(path, compiler)


def render_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A plain text table: a title line, then the rows, each column as wide as its widest cell."""
    widths = [max(len(columns[i]), *(len(row[i]) for row in rows)) for i in range(len(columns))]
    lines = ["  ".join(title.ljust(width) for title, width in zip(columns, widths)).rstrip()]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"
