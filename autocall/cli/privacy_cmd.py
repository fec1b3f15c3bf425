"""``autocall purge --before DATE`` and ``autocall forget NUMBER``: deleting records for retention and erasure."""

from __future__ import annotations

import sys
import time

from autocall.cli.common import add_config_option, config_from


def register(subparsers) -> None:
    purge = subparsers.add_parser(
        "purge", help="delete call records, recordings and attempts older than a date",
        description="Delete the call records (with their recordings) and campaign attempts that started "
                    "before DATE. The server does the same once a day with retention = \"365d\" in the "
                    "configuration. The do-not-call list is kept.")
    purge.add_argument("--before", required=True, metavar="DATE",
                       help="a date (2026-01-01, local midnight), a time, or an age (365d: a year ago)")
    add_config_option(purge, database=True)
    purge.set_defaults(func=run_purge)
    forget = subparsers.add_parser(
        "forget", help="delete everything kept about one phone number (erasure request)",
        description="Delete every call record (and recording) made from or to NUMBER, and the number's "
                    "campaign contacts with their columns, answers and attempts. The do-not-call entry is "
                    "kept, so that the person is not called again.")
    forget.add_argument("number", metavar="NUMBER", help="the phone number, as dialled or in E.164 (+39...)")
    add_config_option(forget, database=True)
    forget.set_defaults(func=run_forget)


def run_purge(args) -> int:
    from autocall.ages import parse_when
    from autocall.cli.common import open_existing_database
    from autocall.privacy import purge_before

    config = config_from(args)
    now = time.time()
    cutoff = parse_when(args.before, now, "--before")
    conn = open_existing_database(config)
    try:
        done = purge_before(conn, cutoff, config.recordings_dir)
    finally:
        conn.close()
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(cutoff))
    sys.stdout.write(f"deleted what started before {when}: {done['calls']} call records, "
                     f"{done['recordings']} recordings, {done['attempts']} campaign attempts\n")
    return 0


def run_forget(args) -> int:
    from autocall.cli.common import open_existing_database
    from autocall.errors import UserError
    from autocall.privacy import forget, number_forms

    if not any(ch.isdigit() for ch in args.number):
        raise UserError(f"{args.number!r}: not a phone number; give the number to forget, e.g. +390655512000")
    config = config_from(args)
    conn = open_existing_database(config)
    try:
        done = forget(conn, args.number, config.recordings_dir)
    finally:
        conn.close()
    sys.stdout.write(f"forgot {' / '.join(number_forms(args.number))}: {done['calls']} call records, "
                     f"{done['recordings']} recordings, {done['contacts']} campaign contacts, "
                     f"{done['attempts']} attempts, {done['rejected_rows']} rejected rows\n")
    sys.stdout.write("the number stays on the do-not-call list\n" if done["on_dnc"] else
                     "the number is not on the do-not-call list\n")
    return 0
