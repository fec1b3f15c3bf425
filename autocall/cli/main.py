"""Entry point of ``autocall``: builds the subcommands, loads configuration, turns user errors into exit 1."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from autocall import __version__
from autocall.errors import UserError

# Each module defines ``register(subparsers)``, which adds its subcommand(s) and
# sets ``func(args) -> int`` on the parser.
COMMAND_MODULES = [
    "autocall.cli.check_cmd",
    "autocall.cli.compile_cmd",
    "autocall.cli.graph_cmd",
    "autocall.cli.simulate_cmd",
    "autocall.cli.test_cmd",
    "autocall.cli.serve_cmd",
    "autocall.cli.calls_cmd",
    "autocall.cli.outbox_cmd",
    "autocall.cli.report_cmd",
    "autocall.cli.privacy_cmd",
    "autocall.cli.campaign_cmd",
    "autocall.cli.audio_cmd",
    "autocall.cli.prompts_cmd",
    "autocall.cli.say_cmd",
    "autocall.cli.demo_cmd",
]


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line and exit code 2, as the CLI contract says."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="autocall", description="Programmable voice IVR and outbound dialer for Asterisk.")
    parser.add_argument("--version", action="version", version=f"autocall {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        sys.stderr.write(f"autocall: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("autocall: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug, or the database going away under a command
        from autocall.store.pg import unavailable_errors
        if isinstance(exc, unavailable_errors()) and not os.environ.get("AUTOCALL_DEBUG"):
            reason = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
            sys.stderr.write(f"autocall: error: the database became unavailable ({reason}); run the command "
                             f"again once PostgreSQL is back (nothing done so far is lost)\n")
            return 1
        if os.environ.get("AUTOCALL_DEBUG"):
            raise
        sys.stderr.write(f"autocall: internal error: {exc.__class__.__name__}: {exc} "
                         "(run again with AUTOCALL_DEBUG=1 for the traceback, and please report it)\n")
        return 70


if __name__ == "__main__":
    sys.exit(main())
