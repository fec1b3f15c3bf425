"""``autocall outbox [--failed] [--retry ID]``: background deliveries of ``notify`` and events."""

from __future__ import annotations

import json
import sys
import time

from autocall.cli.common import add_config_option, config_from, open_existing_database, render_table
from autocall.cli.safe_text import terminal_safe
from autocall.errors import UserError

COLUMNS = ("id", "status", "kind", "service", "path", "tries", "last", "created", "call")
ERROR_WIDTH = 60


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "outbox", help="background deliveries of notify and events: pending, delivered, failed",
        description="The outbox: every notify and event queued for delivery, newest first, with how its "
                    "tries went. Deliveries are made by autocall serve and autocall campaign run.")
    parser.add_argument("--failed", action="store_true", help="only the deliveries that failed")
    parser.add_argument("--pending", action="store_true", help="only the deliveries still waiting")
    parser.add_argument("--retry", type=int, metavar="ID",
                        help="deliver a failed (or waiting) delivery again, now, with 24 hours of tries")
    parser.add_argument("--last", type=int, default=50, metavar="N", help="how many deliveries (default 50)")
    parser.add_argument("--json", action="store_true", help="the deliveries as a JSON list")
    add_config_option(parser, database=True)
    parser.set_defaults(func=run)


def run(args) -> int:
    from autocall.store import outbox as store
    from autocall.store.db import transaction

    if args.last < 1:
        raise UserError(f"--last {args.last}: give a number of deliveries, 1 or more")
    if args.failed and args.pending:
        raise UserError("--failed and --pending: give one of them")
    conn = open_existing_database(config_from(args), "nothing was ever queued")
    try:
        if args.retry is not None:
            with transaction(conn):
                row = store.retry(conn, args.retry, time.time())
            if row is None:
                raise UserError(f"--retry {args.retry}: no delivery with that id; autocall outbox lists them")
            if row["status"] == store.DELIVERED:
                sys.stdout.write(f"delivery {args.retry} was already delivered; nothing to do\n")
            else:
                sys.stdout.write(f"delivery {args.retry} queued again: the running autocall serve or campaign "
                                 "run sends it within a second\n")
            return 0
        status = store.FAILED if args.failed else store.PENDING if args.pending else None
        rows = store.listing(conn, status=status, limit=args.last)
        counts = store.counts(conn)
    finally:
        conn.close()
    if args.json:
        shown = [{key: row[key] for key in ("id", "status", "kind", "service", "path", "call_id", "tries",
                                            "last_status", "last_error", "created_at", "next_try_at",
                                            "finished_at", "idempotency_key")} | {"body": json.loads(row["body"])}
                 for row in rows]
        sys.stdout.write(json.dumps(shown, indent=2, ensure_ascii=False) + "\n")
        return 0
    sys.stdout.write(f"{counts['pending']} pending, {counts['delivered']} delivered, {counts['failed']} failed\n")
    if rows:
        sys.stdout.write(render_table(COLUMNS, [row_of(row) for row in rows]))
    return 0


def row_of(row: dict) -> tuple[str, ...]:
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["created_at"]))
    if row["status"] == "pending" and row["tries"]:
        last = f"{row['last_error']}; next try {time.strftime('%H:%M:%S', time.localtime(row['next_try_at']))}"
    elif row["status"] == "pending":
        last = "not tried yet"
    elif row["status"] == "failed":
        last = row["last_error"] or f"HTTP {row['last_status']}"
    else:
        last = f"HTTP {row['last_status']}"
    if len(last) > ERROR_WIDTH:
        last = last[:ERROR_WIDTH - 3] + "..."
    return (str(row["id"]), row["status"], row["kind"], row["service"], terminal_safe(row["path"]),
            str(row["tries"]), terminal_safe(last), created, terminal_safe(row["call_id"]) or "-")
