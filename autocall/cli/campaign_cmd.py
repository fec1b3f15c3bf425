"""``autocall campaign run|list|status|export|pause|resume``: outbound campaigns (docs/campaigns.md)."""

from __future__ import annotations

import csv
import json
import re
import sys
from datetime import datetime
from pathlib import Path

from autocall.cli.common import add_config_option, config_from
from autocall.errors import UserError


def _common_options(parser) -> None:
    add_config_option(parser, database=True)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "campaign", help="outbound campaigns: run, list, status, export, pause, resume",
        description="Call a list of contacts and run a dialogue with each. See docs/campaigns.md.")
    commands = parser.add_subparsers(dest="campaign_command", metavar="SUBCOMMAND",
                                     parser_class=type(parser))
    commands.required = True

    run = commands.add_parser(
        "run", help="start a campaign, or resume it (the same command again resumes)",
        description="Call every contact of CONTACTS.csv with the script. Running the same command again "
                    "resumes the campaign: nobody is called twice because of the restart.")
    run.add_argument("contacts", metavar="CONTACTS.csv", help="CSV with a 'number' column; other columns fill params")
    run.add_argument("--delimiter", metavar="',' | ';' | tab", help="the list's separator (default: found in its header)")
    run.add_argument("--column", action="append", metavar="PARAM=HEADER",
                     help="read PARAM (or number, timezone) from the column HEADER; repeatable, "
                          "e.g. --column number=Numero --column name=Nome")
    run.add_argument("--country", metavar="CC", help="two-letter country of national numbers, e.g. IT "
                                                      "(default: configuration country)")
    run.add_argument("--script", required=True, metavar="FILE.dlg", help="the dialogue each answered call runs")
    run.add_argument("--name", help="campaign name (default: the CSV file name without .csv)")
    run.add_argument("--pbx", metavar="sim|ami://USER@HOST:5038", action="append",
                     help="where calls go: the simulated PBX (default) or Asterisk's manager interface; "
                          "give it several times to spread the calls over several Asterisk servers; "
                          "the AMI secret comes from ami_secret / AUTOCALL_AMI_SECRET")
    run.add_argument("--channel", metavar="TEMPLATE", help='dial string, e.g. "PJSIP/{number}@trunk" '
                                                           "(default: configuration channel_template)")
    run.add_argument("--concurrency", type=int, default=10, metavar="N", help="calls at once at most (default 10)")
    run.add_argument("--rate", metavar="N/s", help="dials per second/minute/hour at most, e.g. 2/s or 30/m "
                                                   "(default: no limit beyond --concurrency)")
    run.add_argument("--attempts", type=int, default=3, metavar="N", help="attempts per contact at most (default 3)")
    run.add_argument("--retry-after", default="10m", metavar="DELAY",
                     help="delay before retrying busy/noanswer/congestion/failed, e.g. 10m, or per outcome: "
                          "busy=5m,noanswer=30m,failed=1h (default 10m)")
    run.add_argument("--window", metavar='"DAYS HH:MM-HH:MM"', help='when calls may start, e.g. "mon-fri 09:00-20:00"')
    run.add_argument("--timezone", metavar="Area/City",
                     help="time zone of --window for callees whose number or timezone column does not give one "
                          "(default: this machine's)")
    run.add_argument("--dnc", metavar="FILE", help="do-not-call numbers, one per line, added to the list first")
    run.add_argument("--dnc-max-age", metavar="AGE", help="refuse a --dnc file older than this, e.g. 15d "
                                                          "(default: configuration dnc_max_age)")
    run.add_argument("--caller-id", metavar='"Name <number>"', help="caller id shown to the callee")
    run.add_argument("--amd", action="store_true", help="run answering-machine detection before the script")
    run.add_argument("--sim-speed", type=float, default=1.0, metavar="X",
                     help="simulated PBX only: ringing and talking take 1/X of their simulated time (default 1)")
    _common_options(run)
    run.set_defaults(func=run_command)

    listing = commands.add_parser("list", help="the campaigns in the database",
                                  description="Every campaign of the database: state, contacts done, script.")
    _common_options(listing)
    listing.set_defaults(func=list_command)

    status = commands.add_parser("status", help="contacts by state and outcome",
                                 description="Counts of a campaign's contacts by state and by outcome.")
    status.add_argument("name", metavar="NAME")
    status.add_argument("--json", action="store_true", help="one JSON object")
    _common_options(status)
    status.set_defaults(func=status_command)

    export = commands.add_parser("export", help="results per contact as CSV",
                                 description="One row per contact: its columns, final outcome, attempts, the "
                                             "script's result, keys, duration.")
    export.add_argument("name", metavar="NAME")
    export.add_argument("-o", "--output", metavar="FILE",
                        help="CSV file to write; - or nothing: standard output")
    export.add_argument("--rejected", action="store_true", help="export the rejected rows of the list instead")
    _common_options(export)
    export.set_defaults(func=export_command)

    for verb, text in (("pause", "stop starting calls (calls in flight finish)"),
                       ("resume", "start calling again after a pause")):
        sub = commands.add_parser(verb, help=text, description=text[0].upper() + text[1:] + ".")
        sub.add_argument("name", metavar="NAME")
        if verb == "resume":
            sub.add_argument("--retry-unknown", action="store_true",
                             help="also dial again the contacts whose outcome is unknown after a crash "
                                  "(they may have been called already)")
        _common_options(sub)
        sub.set_defaults(func=pause_command if verb == "pause" else resume_command)


# -- helpers ---------------------------------------------------------------------------------------------------

def _open_campaign(args) -> tuple:
    """The database connection and the campaign named ``args.name`` (UserError if there is none)."""
    from autocall.store.db import connect
    database = config_from(args).database
    conn = connect(database)
    return conn, _campaign(conn, args.name, database)


def _campaign(conn, name: str, database: str) -> dict:
    from autocall.suggest import suggest
    from autocall.store import campaigns as store
    campaign = store.campaign_by_name(conn, name)
    if campaign is None:
        names = store.campaign_names(conn)
        hint = suggest(name, names) or (f"; campaigns there: {', '.join(names[:10])}" if names else
                                        "; it has no campaign yet (start one with autocall campaign run, or "
                                        "give the right file with --database)")
        raise UserError(f"no campaign named '{name}' in {database}{hint}")
    return campaign


def _options(args, config) -> tuple:
    """The run options to store, and where the calls go."""
    from autocall.campaign.contacts import parse_column_map, parse_delimiter
    from autocall.campaign.setup import check_options, parse_pbxes
    from autocall.phone import NumberError, check_country
    pbxes = parse_pbxes(args.pbx or config.pbx.replace(",", " ").split() or ["sim"])
    pbx = pbxes[0]
    try:
        country = check_country(args.country or config.country)
    except NumberError as exc:
        raise UserError(f"--country: {exc}") from None
    parse_delimiter(args.delimiter)
    parse_column_map(args.column)
    options = {"concurrency": args.concurrency, "rate": args.rate, "attempts": args.attempts,
               "retry_after": args.retry_after, "window": args.window, "timezone": args.timezone,
               "pbx": " ".join(str(address) for address in pbxes),
               "channel": args.channel or config.channel_template,
               "caller_id": args.caller_id if args.caller_id is not None else config.caller_id,
               "amd": bool(args.amd), "country": country, "delimiter": parse_delimiter(args.delimiter),
               "columns": list(args.column or [])}
    if pbx.kind == "sim":
        if args.sim_speed <= 0:
            raise UserError(f"--sim-speed {args.sim_speed:g}: must be more than 0")
        options["sim_speed"] = args.sim_speed
    check_options(options)
    if pbx.kind == "ami":
        from autocall.ami.originate import ChannelTemplate
        ChannelTemplate(options["channel"])
        if not config.ami_secret:
            raise UserError("no AMI secret: set ami_secret in autocall.toml or the AUTOCALL_AMI_SECRET "
                            "environment variable (never in --pbx)")
    return options, pbxes


def _check_dnc_age(path: str, max_age_ms: int, now: float) -> None:
    """A do-not-call file older than ``max_age_ms`` (by its modification time) refuses the run."""
    import os
    try:
        age_s = now - os.stat(path).st_mtime
    except OSError:
        return                                  # read_dnc_file says what is wrong with the path
    if age_s * 1000 > max_age_ms:
        raise UserError(f"{path}: the do-not-call list is {age_s / 86400:.1f} days old, older than the "
                        f"--dnc-max-age of {max_age_ms / 86_400_000:g} days; download a fresh copy of the "
                        f"register and run again")


def _load_dnc(conn, path: str, now: float, country: str | None, max_age_ms: int) -> None:
    from autocall.campaign.contacts import read_dnc_file
    from autocall.store import campaigns as store
    from autocall.store.calls import add_dnc
    if max_age_ms:
        _check_dnc_age(path, max_age_ms, now)
    numbers, bad = read_dnc_file(path, country)
    for line, text, reason in bad:
        sys.stderr.write(f"{path}:{line}: warning: {text!r} skipped: {reason}\n")
    with store.transaction(conn):
        added = sum(add_dnc(conn, number, source=f"file:{Path(path).name}", when=now) for number in numbers)
    print(f"do-not-call list: {len(numbers)} numbers read from {path}, {added} new")


def _report_import(name: str, contacts: str, report) -> None:
    for line, number, reason in report.listed:
        sys.stderr.write(f"{contacts}:{line}: skipped: {reason}\n")
    if report.created and report.rejected > len(report.listed):
        sys.stderr.write(f"{contacts}: ... and {report.rejected - len(report.listed)} more skipped rows; all of "
                         f"them: autocall campaign export {name} --rejected -o rejected.csv\n")
    if report.created:
        parts = [f"{report.imported} contacts imported from {report.rows_read} rows"]
        if report.rejected:
            parts.append(f"{report.rejected} rows skipped")
        if report.dnc:
            parts.append(f"{report.dnc} on the do-not-call list (not called)")
        if report.blank_lines:
            parts.append(f"{report.blank_lines} blank lines ignored")
        if report.ignored_columns:
            parts.append(f"columns kept for the export only: {', '.join(report.ignored_columns)}")
        print(f"campaign {name}: " + "; ".join(parts))
    else:
        print(f"campaign {name}: resuming ({report.imported} contacts; {report.rejected} rows were skipped "
              f"at import)")
        for change in report.changed_options:
            print(f"campaign {name}: option changed since the last run: {change}")
        if report.reopened:
            print(f"campaign {name}: {report.reopened} contacts get more attempts (--attempts was raised)")


# -- run ------------------------------------------------------------------------------------------------------------

def run_command(args) -> int:
    import logging
    import signal
    import time

    from autocall.campaign import runner
    from autocall.campaign.progress import progress_for, write_status
    from autocall.campaign.setup import prepare_campaign
    from autocall.cli.common import load_program
    from autocall.durations import parse_duration_ms
    from autocall.store import campaigns as store

    config = config_from(args)
    logging.basicConfig(level=getattr(logging, config.log_level.upper(), logging.INFO) if config.log_level
                        else logging.INFO, stream=sys.stderr, format="autocall: %(message)s")
    logging.getLogger("autocall").setLevel(logging.WARNING)
    logging.getLogger("autocall.web").setLevel(logging.ERROR)   # a delivery that waits for a retry: autocall outbox
    options, pbxes = _options(args, config)
    pbx = pbxes[0]
    from autocall.services_config import check_services
    check_services(config.services)
    program = load_program(args.script)
    if program is None:
        return 1
    from autocall.outbox.delivery import deliver_due
    from autocall.store import outbox as outbox_store
    from autocall.store.db import connect, engine_of
    conn = connect(config.database)
    if engine_of(conn) == "postgresql":
        conn.set_wait(DIALER_DB_WAIT_S)
    now = time.time()
    max_age_ms = parse_duration_ms(args.dnc_max_age, what="--dnc-max-age") if args.dnc_max_age \
        else config.dnc_max_age
    if args.dnc:
        _load_dnc(conn, args.dnc, now, options["country"], max_age_ms)
    name = args.name or Path(args.contacts).stem
    if not name.strip():
        raise UserError("--name: give the campaign a name")
    campaign_id, report = prepare_campaign(conn, name=name, contacts_path=args.contacts, script_path=args.script,
                                           program=program, options=options, now=now, claim=True)
    _report_import(name, args.contacts, report)
    if report.imported == 0:
        raise UserError(f"{args.contacts}: no contact to call ({report.rejected} rows skipped, listed above)")
    others = store.live_workers(conn, campaign_id, time.time())
    if others:
        print(f"campaign {name}: joining {len(others)} other dialer(s) running it; the work is shared")
    observer = progress_for(name, sys.stdout)
    previous = signal.getsignal(signal.SIGHUP)
    try:
        if pbx.kind == "sim":
            with observer:
                summary = runner.run_sim(conn, campaign_id, program=program, options=options, config=config,
                                         name=name, observer=observer)
        else:
            from twisted.internet import reactor
            # The reactor stops gracefully on SIGTERM and SIGINT; SIGHUP (a closed terminal) does the same.
            signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(reactor.stop))
            with observer:
                summary = runner.run_ami(conn, campaign_id, options=options, config=config, pbx_addresses=pbxes,
                                         script=Path(args.script).stem, name=name, observer=observer)
    finally:
        signal.signal(signal.SIGHUP, previous)
    write_status(conn, store.campaign_by_name(conn, name), sys.stdout)
    if pbx.kind == "sim" and outbox_store.counts(conn)[outbox_store.PENDING]:
        sent = deliver_due(config)     # the simulated PBX ran without the reactor: deliver the events now
        print(f"events: {sent['delivered']} delivered, {outbox_store.counts(conn)[outbox_store.PENDING]} waiting "
              "(delivered by the next autocall serve or campaign run; see autocall outbox)")
    if summary.get("stopped"):
        print(f"campaign {name}: stopped; run the same command again to resume")
        return 130
    return 0


# How long a dialer's statement waits for PostgreSQL before the dialer pauses (and tries again every second).
DIALER_DB_WAIT_S = 2.0


# -- list, status, export, pause, resume -------------------------------------------------------------------------

def list_command(args) -> int:
    from autocall.store import campaigns as store
    from autocall.store.db import connect
    database = config_from(args).database
    campaigns = store.all_campaigns(connect(database))
    if not campaigns:
        print(f"no campaign in {database} (start one with autocall campaign run)")
        return 0
    width = max(len(campaign["name"]) for campaign in campaigns)
    for campaign in campaigns:
        created = datetime.fromtimestamp(campaign["created_at"]).astimezone().isoformat(timespec="minutes")
        print(f"{campaign['name']:<{width}}  {campaign['shown_state']:<8} {campaign['done']:>7}/"
              f"{campaign['contacts']:<7} done  script {campaign['script']}  created {created}")
    return 0


def status_command(args) -> int:
    import time
    from autocall.campaign.progress import write_status
    from autocall.store import campaigns as store
    conn, campaign = _open_campaign(args)
    store.adopt_late_records(conn, campaign["id"], time.time())
    if args.json:
        counts = store.status_counts(conn, campaign["id"])
        counts.update(name=campaign["name"], state=campaign["shown_state"], script=campaign["script"])
        sys.stdout.write(json.dumps(counts, indent=2) + "\n")
    else:
        write_status(conn, campaign, sys.stdout)
    return 0


EXPORT_COLUMNS = ("outcome", "attempts", "result", "keys", "duration", "last_attempt_at", "status", "detail",
                  "call_id")
_PHONE_NUMBER = re.compile(r"^\+[0-9 ]+$")


def safe_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula (``=``, ``-``, ``@``, a tab or
    carriage return, ``+`` unless a phone number follows) gets a leading apostrophe."""
    text = "" if value is None else str(value)
    if text and (text[0] in "=-@\t\r" or (text[0] == "+" and not _PHONE_NUMBER.match(text))):
        return "'" + text
    return text


def export_command(args) -> int:
    import time
    from autocall.campaign.contacts import SPECIAL_COLUMNS
    from autocall.store import campaigns as store
    conn, campaign = _open_campaign(args)
    store.adopt_late_records(conn, campaign["id"], time.time())
    to_stdout = args.output in (None, "-")
    try:
        handle = sys.stdout if to_stdout else open(args.output, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise UserError(f"{args.output}: cannot write ({exc.strerror})") from None
    count = 0
    try:
        writer = csv.writer(handle)
        if args.rejected:
            writer.writerow(["line", "number", "reason"])
            for row in store.rejects(conn, campaign["id"]):
                writer.writerow([row["line"], safe_cell(row["number"]), safe_cell(row["reason"])])
                count += 1
        else:
            read_from = campaign["param_headers"]              # param (or number...) -> its header
            special = {read_from[name] for name in SPECIAL_COLUMNS if name in read_from}
            param_of = {header: name for name, header in read_from.items() if name not in SPECIAL_COLUMNS}
            columns = [c for c in campaign["header"] if c not in special and c.lower() not in SPECIAL_COLUMNS]
            taken = {"line", "number", *columns, *EXPORT_COLUMNS}
            variables = [(name, name if name not in taken else f"var_{name}") for name in campaign["variables"]]
            writer.writerow(["line", "number", *columns, *EXPORT_COLUMNS, *(label for _, label in variables)])
            for row in store.export_rows(conn, campaign["id"]):
                extra, params = json.loads(row["extra"]), json.loads(row["params"])
                values = json.loads(row["variables"]) if row["variables"] else {}
                last = row["last_attempt_at"]
                cells = [row["line"], row["number"],
                         *(extra[c] if c in extra else params.get(param_of.get(c, c), "") for c in columns),
                         row["outcome"] or "", row["attempts"], row["result"] or "", row["keys"] or "",
                         "" if row["duration"] is None else f"{row['duration']:.1f}",
                         datetime.fromtimestamp(last).astimezone().isoformat(timespec="seconds") if last else "",
                         row["status"], row["detail"], row["last_call_id"] or "",
                         *("" if values.get(name) is None else values[name] for name, _ in variables)]
                writer.writerow([safe_cell(cell) for cell in cells])
                count += 1
    finally:
        if not to_stdout:
            handle.close()
    if not to_stdout:
        print(f"{args.output}: {count} {'rejected rows' if args.rejected else 'contacts'} of campaign "
              f"{campaign['name']}")
    return 0


def pause_command(args) -> int:
    import time
    from autocall.store import campaigns as store
    conn, campaign = _open_campaign(args)
    if campaign["state"] == store.CAMPAIGN_DONE:
        print(f"campaign {campaign['name']} is done; nothing to pause")
        return 0
    store.set_campaign_state(conn, campaign["id"], store.CAMPAIGN_PAUSED, time.time())
    print(f"campaign {campaign['name']}: paused; calls in flight finish, no new call starts "
          f"(autocall campaign resume {campaign['name']} to continue)")
    return 0


def resume_command(args) -> int:
    import time
    from autocall.store import campaigns as store
    conn, campaign = _open_campaign(args)
    now = time.time()
    if args.retry_unknown:
        reopened = store.retry_unknown(conn, campaign["id"], campaign["options"].get("attempts", 3), now)
        print(f"campaign {campaign['name']}: {reopened} contacts with an unknown outcome will be dialled again")
        campaign = _campaign(conn, args.name, config_from(args).database)
    if campaign["state"] == store.CAMPAIGN_PAUSED:
        store.set_campaign_state(conn, campaign["id"], store.CAMPAIGN_RUNNING, now)
        print(f"campaign {campaign['name']}: resumed")
    elif not args.retry_unknown:
        print(f"campaign {campaign['name']} is {campaign['state']}, not paused")
    if not store.live_workers(conn, campaign["id"], now):
        print(f"no dialer is running it now: run the same 'autocall campaign run' command to call")
    return 0
