"""``autocall serve``: the FastAGI server that runs the scripts for Asterisk (docs/operations.md)."""

from __future__ import annotations

from dataclasses import replace

from autocall.cli.common import add_config_option, config_from
from autocall.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the FastAGI server for Asterisk",
        description="Serve the scripts of a folder to Asterisk: AGI(agi://HOST:PORT/NAME) runs NAME.dlg. "
                    "Stops gracefully on SIGINT/SIGTERM (a second signal stops at once).")
    parser.add_argument("--scripts", metavar="DIR", help="the scripts folder (configuration scripts_dir)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 4573; 0 picks a free one)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        help="how much to log (configuration log_level)")
    add_config_option(parser, database=True)
    parser.set_defaults(func=run)


def run(args) -> int:
    from autocall.agi.logs import setup_logging
    from autocall.agi.service import serve

    config = config_from(args)
    changes = {}
    if args.host is not None:
        changes["host"] = args.host
    if args.port is not None:
        if not 0 <= args.port <= 65535:
            raise UserError(f"--port {args.port}: not a port number (0 to 65535)")
        changes["port"] = args.port
    if args.log_level is not None:
        changes["log_level"] = args.log_level
    config = replace(config, **changes)
    if not 0 <= config.port <= 65535:
        raise UserError(f"port = {config.port}: not a port number (0 to 65535)")
    setup_logging(config.log_level)
    return serve(config, scripts_dir=args.scripts)
