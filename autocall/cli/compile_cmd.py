"""``autocall compile FILE [-o OUT.json]``: the compiled state machine as JSON."""

from __future__ import annotations

import os
import sys

from autocall.cli.common import compile_or_report
from autocall.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser("compile", help="compile a script to its state machine (JSON)",
                                   description="Compile a .dlg script; write the state machine as JSON.")
    parser.add_argument("file", metavar="FILE", help=".dlg script")
    parser.add_argument("-o", "--output", metavar="OUT.json", help="write here instead of stdout")
    parser.set_defaults(func=run)


def run(args) -> int:
    program = compile_or_report(args.file)
    if program is None:
        return 1
    text = program.to_json() + "\n"
    if not args.output:
        sys.stdout.write(text)
        return 0
    temporary = f"{args.output}.tmp{os.getpid()}"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, args.output)
    except OSError as exc:
        raise UserError(f"{args.output}: cannot write ({exc.strerror}); check the folder exists") from None
    return 0
