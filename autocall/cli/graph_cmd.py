"""``autocall graph FILE [-o OUT]``: the dialogue as a flow graph (.dot, .mmd, .svg/.png through Graphviz)."""

from __future__ import annotations

import os
import sys

from autocall.cli.common import add_config_option, config_from, load_program
from autocall.errors import UserError

EXTENSIONS = {".dot": "dot", ".gv": "dot", ".mmd": "mmd", ".mermaid": "mmd", ".svg": "svg", ".png": "png"}
FORMATS = ("dot", "mmd", "svg", "png")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "graph", help="draw the dialogue as a flow graph",
        description="Draw a dialogue as a flow graph: a box per state, arrows labelled with keys, "
                    "timeout/invalid/failure, conditions and goto; a black dot where the call can end. "
                    "Without -o, DOT text goes to stdout. With --keys (or --set/--now), the path that "
                    "simulated call takes is highlighted.",
        epilog="examples: autocall graph support.dlg -o support.svg; "
               "autocall graph support.dlg --keys '2 1234' --now 2026-03-02T10:30+01:00 -o path.png")
    parser.add_argument("file", metavar="FILE", help=".dlg script (or compiled .json)")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="output file; its extension picks the format: .dot/.gv, .mmd/.mermaid (Mermaid), "
                             ".svg, .png (these two need Graphviz's dot)")
    parser.add_argument("--format", choices=FORMATS, help="format for stdout (default dot); with -o it must "
                                                          "agree with the extension")
    parser.add_argument("--keys", help="highlight the path of a simulated call with these keys, e.g. '2 1234'")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                        help="a param, built-in or dialstatus for the highlighted call (as in simulate)")
    parser.add_argument("--now", metavar="ISO-8601", help="the time the highlighted call starts")
    add_config_option(parser)
    parser.set_defaults(func=run)


def output_format(output: str | None, requested: str | None) -> str:
    """The format to write: from -o's extension, else --format, else dot."""
    if output is None:
        return requested or "dot"
    extension = os.path.splitext(output)[1].lower()
    found = EXTENSIONS.get(extension)
    if found is None:
        known = ", ".join(EXTENSIONS)
        raise UserError(f"-o {output}: unknown extension {extension or '(none)'!r}; use one of {known}")
    if requested and requested != found:
        raise UserError(f"-o {output} is .{found} but --format says {requested}; drop --format or change -o")
    return found


def run(args) -> int:
    from autocall.graph import IMAGE_FORMATS, build_graph, render_dot, render_image, render_mermaid

    fmt = output_format(args.output, args.format)
    if args.output is None and fmt in IMAGE_FORMATS and sys.stdout.isatty():
        raise UserError(f"--format {fmt} is binary; write it to a file with -o graph.{fmt}")
    program = load_program(args.file)
    if program is None:
        return 1
    graph = build_graph(program)
    trace, title, path_text = None, None, None
    if args.keys is not None or args.settings or args.now is not None:
        trace, title, path_text = _simulated_trace(program, graph, args)
    text = render_mermaid(graph, trace, title) if fmt == "mmd" else render_dot(graph, trace, title)
    data = render_image(text, fmt) if fmt in IMAGE_FORMATS else text.encode("utf-8")
    if args.output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        try:
            with open(args.output, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise UserError(f"-o {args.output}: cannot write ({exc.strerror}); check the folder exists "
                            "and is writable") from None
        if sys.stderr.isatty():
            sys.stderr.write(f"wrote {args.output} ({len(graph.nodes)} states)\n")
    if path_text and sys.stderr.isatty():
        sys.stderr.write(f"path: {path_text}\n")
    return 0


def _simulated_trace(program, graph, args):
    """Run the call --keys/--set/--now describe; its trace, a title naming it, and its path as text."""
    import shlex

    from autocall.graph import render_trace_text, trace_path
    from autocall.sim.runner import parse_now, parse_settings, simulate

    settings = parse_settings(program, args.settings)
    record = simulate(program, keys=args.keys or "", settings=settings, now=parse_now(args.now),
                      max_duration_ms=config_from(args).max_call_duration)
    trace = trace_path(graph, program, record.path, record.inputs, record.ended_by, record.transfers)
    described = [f"--keys {shlex.quote(args.keys or '')}"] + [f"--set {shlex.quote(s)}" for s in args.settings]
    if args.now:
        described.append(f"--now {args.now}")
    title = f"{program.name}: the call with {' '.join(described)}"
    return trace, title, render_trace_text(trace, width=None)
