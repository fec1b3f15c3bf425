"""``autocall check FILE...``: compile scripts and print every diagnostic, compiler-style."""

from __future__ import annotations

import sys

from autocall.cli.common import new_compiler, print_diagnostics


def register(subparsers) -> None:
    parser = subparsers.add_parser("check", help="check dialogue scripts for errors",
                                   description="Compile each script and print every error and warning.")
    parser.add_argument("files", nargs="+", metavar="FILE", help=".dlg scripts")
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing for clean scripts")
    parser.add_argument("--no-warnings", action="store_true", help="print errors only")
    parser.set_defaults(func=run)


def run(args) -> int:
    compiler = new_compiler()
    failed = 0
    for path in args.files:
        result = compiler.compile_file(path)
        print_diagnostics(result, warnings=not args.no_warnings)
        if not result.ok:
            failed += 1
            continue
        if not args.quiet:
            states = len(result.program.states)
            notes = f", {len(result.warnings)} warning{'s' if len(result.warnings) != 1 else ''}" if result.warnings else ""
            sys.stdout.write(f"{path}: ok ({states} state{'s' if states != 1 else ''}{notes})\n")
    if failed:
        sys.stderr.write(f"{failed} of {len(args.files)} script{'s' if len(args.files) != 1 else ''} "
                         "failed to compile\n")
        return 1
    return 0
