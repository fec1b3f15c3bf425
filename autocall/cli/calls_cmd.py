"""``autocall calls [--last N] [--json]``: the most recent call records, newest first.

Most fields of a record come from the peer (caller id, channel, script
name, a script's ``result``), so nothing is printed as is: control and
format characters (an escape sequence that would drive the terminal, a
right-to-left override) are shown escaped, ``\\x1b`` or ``\\u202e``, in the
table and in ``--json`` alike.
"""

from __future__ import annotations

import json
import sys
import time

from autocall.cli import common
from autocall.cli.common import add_config_option, config_from, open_existing_database
from autocall.cli.safe_text import json_safe, terminal_safe
from autocall.errors import UserError

COLUMNS = ("time", "call id", "script", "caller", "duration", "ended by", "result", "path")
PATH_WIDTH = 48


def register(subparsers) -> None:
    parser = subparsers.add_parser("calls", help="list recent call records",
                                   description="The most recent call records of the configured database, "
                                               "newest first.")
    parser.add_argument("--last", type=int, default=20, metavar="N", help="how many calls (default 20)")
    parser.add_argument("--json", action="store_true", help="the records as a JSON list")
    add_config_option(parser, database=True)
    parser.set_defaults(func=run)


def run(args) -> int:
    from autocall.store.calls import recent_calls

    if args.last < 1:
        raise UserError(f"--last {args.last}: give a number of calls, 1 or more")
    conn = open_existing_database(config_from(args))
    try:
        calls = recent_calls(conn, args.last)
    finally:
        conn.close()
    if args.json:
        sys.stdout.write(json_safe(json.dumps(calls, indent=2, ensure_ascii=False)) + "\n")
        return 0
    if not calls:
        sys.stdout.write("no calls recorded yet\n")
        return 0
    sys.stdout.write(render_table([row_of(call) for call in calls]))
    return 0


def row_of(call: dict) -> tuple[str, ...]:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(call["started_at"]))
    path = " > ".join(call["path"])
    if len(path) > PATH_WIDTH:
        path = path[:PATH_WIDTH - 3] + "..."
    return tuple(map(terminal_safe, (
        started, call["call_id"], call["script"], call["caller"] or "-", f"{call['duration']:.1f}s",
        call["ended_by"] or "-", call["result"] if call["result"] is not None else "-", path or "-")))


def render_table(rows: list[tuple[str, ...]]) -> str:
    return common.render_table(COLUMNS, rows)
