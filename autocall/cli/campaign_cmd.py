"""``autocall campaign run|status|export|pause|resume``: outbound campaigns (docs/campaigns.md)."""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from pathlib import Path

from autocall.cli.common import add_config_option, config_from
from autocall.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "campaign", help="outbound campaigns: run, status, export, pause, resume",
        description="Call a list of contacts and run a dialogue with each. See docs/campaigns.md.")
    commands = parser.add_subparsers(dest="campaign_command", metavar="SUBCOMMAND",
                                     parser_class=type(parser))
    commands.required = True

    run = commands.add_parser(
        "run", help="start a campaign, or resume it (the same command again resumes)",
        description="Call every contact of CONTACTS.csv with the script. Running the same command again "
                    "resumes the campaign: nobody is called twice because of the restart.")
    run.add_argument("contacts", metavar="CONTACTS.csv", help="CSV with a 'number' column; other columns fill params")
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
    run.add_argument("--timezone", metavar="Area/City", help="time zone of --window (default: this machine's)")
    run.add_argument("--dnc", metavar="FILE", help="do-not-call numbers, one per line, added to the list first")
    run.add_argument("--caller-id", metavar='"Name <number>"', help="caller id shown to the callee")
    run.add_argument("--amd", action="store_true", help="run answering-machine detection before the script")
    run.add_argument("--sim-speed", type=float, default=1.0, metavar="X",
                     help="simulated PBX only: ringing and talking take 1/X of their simulated time (default 1)")
    add_config_option(run, database=True)
    run.set_defaults(func=run_command)

    status = commands.add_parser("status", help="contacts by state and outcome",
                                 description="Counts of a campaign's contacts by state and by outcome.")
    status.add_argument("name", metavar="NAME")
    status.add_argument("--json", action="store_true", help="one JSON object")
    add_config_option(status, database=True)
    status.set_defaults(func=status_command)

    export = commands.add_parser("export", help="results per contact as CSV",
                                 description="One row per contact: its columns, final outcome, attempts, the "
                                             "script's result, keys, duration.")
    export.add_argument("name", metavar="NAME")
    export.add_argument("-o", "--output", metavar="FILE", help="CSV file to write (default: standard output)")
    export.add_argument("--rejected", action="store_true", help="export the rejected rows of the list instead")
    add_config_option(export, database=True)
    export.set_defaults(func=export_command)

    for verb, text in (("pause", "stop starting calls (calls in flight finish)"),
                       ("resume", "start calling again after a pause")):
        sub = commands.add_parser(verb, help=text, description=text[0].upper() + text[1:] + ".")
        sub.add_argument("name", metavar="NAME")
        if verb == "resume":
            sub.add_argument("--retry-unknown", action="store_true",
                             help="also dial again the contacts whose outcome is unknown after a crash "
                                  "(they may have been called already)")
        add_config_option(sub, database=True)
        sub.set_defaults(func=pause_command if verb == "pause" else resume_command)


# -- helpers ---------------------------------------------------------------------------------------------------

def _open_campaign(args) -> tuple:
    """The database connection and the campaign named ``args.name`` (UserError if there is none)."""
    from autocall.store.db import connect
    conn = connect(config_from(args).database)
    return conn, _campaign(conn, args.name)


def _campaign(conn, name: str) -> dict:
    from autocall.suggest import suggest
    from autocall.store import campaigns as store
    campaign = store.campaign_by_name(conn, name)
    if campaign is None:
        names = store.campaign_names(conn)
        hint = suggest(name, names) or (f"; campaigns: {', '.join(names[:10])}" if names else
                                        "; there is no campaign yet (start one with autocall campaign run)")
        raise UserError(f"no campaign named '{name}'{hint}")
    return campaign


def _options(args, config) -> tuple:
    """The run options to store, and where the calls go."""
    from autocall.campaign.setup import check_options, parse_pbxes
    pbxes = parse_pbxes(args.pbx or config.pbx.replace(",", " ").split() or ["sim"])
    pbx = pbxes[0]
    options = {"concurrency": args.concurrency, "rate": args.rate, "attempts": args.attempts,
               "retry_after": args.retry_after, "window": args.window, "timezone": args.timezone,
               "pbx": " ".join(str(address) for address in pbxes),
               "channel": args.channel or config.channel_template,
               "caller_id": args.caller_id if args.caller_id is not None else config.caller_id,
               "amd": bool(args.amd)}
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


def _load_dnc(conn, path: str, now: float) -> None:
    from autocall.campaign.contacts import read_dnc_file
    from autocall.store import campaigns as store
    from autocall.store.calls import add_dnc
    numbers, bad = read_dnc_file(path)
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
    from autocall.campaign.progress import progress_for
    from autocall.campaign.setup import prepare_campaign
    from autocall.cli.common import load_program
    from autocall.store import campaigns as store

    config = config_from(args)
    logging.basicConfig(level=getattr(logging, config.log_level.upper(), logging.INFO) if config.log_level
                        else logging.INFO, stream=sys.stderr, format="autocall: %(message)s")
    logging.getLogger("autocall").setLevel(logging.WARNING)
    logging.getLogger("autocall.web").setLevel(logging.ERROR)   # a delivery that waits for a retry: autocall outbox
    options, pbxes = _options(args, config)
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
    if args.dnc:
        _load_dnc(conn, args.dnc, now)
    name = args.name or Path(args.contacts).stem
    if not name.strip():
        raise UserError("--name: give the campaign a name")
    campaign_id, report = prepare_campaign(conn, name=name, contacts_path=args.contacts, script_path=args.script,
                                           program=program, options=options, now=now)
    _report_import(name, args.contacts, report)
    if report.imported == 0:
        raise UserError(f"{args.contacts}: no contact to call ({report.rejected} rows skipped, listed above)")
    others = store.live_workers(conn, campaign_id, time.time())
    if others:
        print(f"campaign {name}: joining {len(others)} other dialer(s) running it; the work is shared")
    observer = progress_for(name, sys.stdout)
    previous_term = signal.getsignal(signal.SIGTERM)
    try:
        if pbxes[0].kind == "sim":
            signal.signal(signal.SIGTERM, _interrupt)
            with observer:
                summary = runner.run_sim(conn, campaign_id, program=program, options=options, config=config,
                                         name=name, observer=observer)
        else:
            with observer:
                summary = runner.run_ami(conn, campaign_id, options=options, config=config, pbx_addresses=pbxes,
                                         script=Path(args.script).stem, observer=observer)
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    print_status(conn, store.campaign_by_name(conn, name), sys.stdout)
    if pbxes[0].kind == "sim" and outbox_store.counts(conn)[outbox_store.PENDING]:
        sent = deliver_due(config)     # the simulated PBX ran without the reactor: deliver the events now
        print(f"events: {sent['delivered']} delivered, {outbox_store.counts(conn)[outbox_store.PENDING]} waiting "
              "(delivered by the next autocall serve or campaign run; see autocall outbox)")
    if summary.get("stopped"):
        print(f"campaign {name}: stopped; run the same command again to resume")
        return 130
    return 0


# How long a dialer's statement waits for PostgreSQL before the dialer pauses (and tries again every second).
DIALER_DB_WAIT_S = 2.0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


# -- status, export, pause, resume -----------------------------------------------------------------------------------

def print_status(conn, campaign: dict, stream) -> dict:
    """The ``campaign status`` table; returns the counts."""
    from autocall.store import campaigns as store
    counts = store.status_counts(conn, campaign["id"])
    stream.write(f"campaign {campaign['name']}: {campaign['state']} (script {campaign['script']}, "
                 f"{counts['contacts']} contacts, {counts['attempts']} attempts, "
                 f"{counts['rejected']} rows skipped at import)\n")
    stream.write("by state:\n")
    for state, number in counts["by_status"].items():
        extra = f"  ({counts['waiting_retry']} waiting for a retry)" if state == "pending" and \
            counts["waiting_retry"] else ""
        stream.write(f"  {state:<10} {number:>7}{extra}\n")
    stream.write("by outcome:\n")
    if not counts["by_outcome"]:
        stream.write("  (none yet)\n")
    for outcome, number in sorted(counts["by_outcome"].items(), key=lambda item: (-item[1], item[0])):
        stream.write(f"  {outcome:<10} {number:>7}\n")
    if counts["by_result"]:
        stream.write("by result (the script's `result`):\n")
        for result, number in counts["by_result"].items():
            stream.write(f"  {result:<14} {number:>3}\n")
    return counts


def status_command(args) -> int:
    conn, campaign = _open_campaign(args)
    if args.json:
        from autocall.store import campaigns as store
        counts = store.status_counts(conn, campaign["id"])
        counts.update(name=campaign["name"], state=campaign["state"], script=campaign["script"])
        sys.stdout.write(json.dumps(counts, indent=2) + "\n")
    else:
        print_status(conn, campaign, sys.stdout)
    return 0


EXPORT_COLUMNS = ("outcome", "attempts", "result", "keys", "duration", "last_attempt_at", "status", "detail",
                  "call_id")


def export_command(args) -> int:
    from autocall.campaign.contacts import SPECIAL_COLUMNS
    from autocall.store import campaigns as store
    conn, campaign = _open_campaign(args)
    try:
        handle = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    except OSError as exc:
        raise UserError(f"{args.output}: cannot write ({exc.strerror})") from None
    count = 0
    try:
        writer = csv.writer(handle)
        if args.rejected:
            writer.writerow(["line", "number", "reason"])
            for row in store.rejects(conn, campaign["id"]):
                writer.writerow([row["line"], row["number"], row["reason"]])
                count += 1
        else:
            columns = [c for c in campaign["header"] if c.lower() not in SPECIAL_COLUMNS]
            writer.writerow(["line", "number", *columns, *EXPORT_COLUMNS])
            for row in store.export_rows(conn, campaign["id"]):
                values = {**json.loads(row["extra"]), **json.loads(row["params"])}
                last = row["last_attempt_at"]
                writer.writerow([row["line"], row["number"], *(values.get(c, "") for c in columns),
                                 row["outcome"] or "", row["attempts"], row["result"] or "", row["keys"] or "",
                                 "" if row["duration"] is None else f"{row['duration']:.1f}",
                                 datetime.fromtimestamp(last).astimezone().isoformat(timespec="seconds")
                                 if last else "", row["status"], row["detail"], row["last_call_id"] or ""])
                count += 1
    finally:
        if handle is not sys.stdout:
            handle.close()
    if args.output:
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
        campaign = _campaign(conn, args.name)
    if campaign["state"] == store.CAMPAIGN_PAUSED:
        store.set_campaign_state(conn, campaign["id"], store.CAMPAIGN_RUNNING, now)
        print(f"campaign {campaign['name']}: resumed")
    elif not args.retry_unknown:
        print(f"campaign {campaign['name']} is {campaign['state']}, not paused")
    if not store.live_workers(conn, campaign["id"], now):
        print(f"no dialer is running it now: run the same 'autocall campaign run' command to call")
    return 0
