"""``autocall report``: what happened on the lines in a period, as tables, JSON or one HTML page."""

from __future__ import annotations

import json
import os
import sys
import time

from autocall.cli.common import add_config_option, config_from, open_existing_database
from autocall.errors import UserError

DEFAULT_SINCE = "7d"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="statistics of the calls in a period",
        description="Totals, results, durations, transfers, containment, the funnel of each state, the keys "
                    "chosen at each menu and gather, calls by weekday and hour, and campaign figures, for the "
                    "calls of a period (default: the last 7 days).",
        epilog="examples: autocall report --since 2026-03-01 --until 2026-03-31; autocall report --since 7d "
               "--compare; autocall report --script support --html support-report.html")
    parser.add_argument("--since", metavar="WHEN", help="start: a date (2026-03-01), a time (2026-03-01T09:00) "
                                                        "or an age (7d, 12h); default 7d")
    parser.add_argument("--until", metavar="WHEN", help="end (a date includes that day); default now")
    parser.add_argument("--script", metavar="NAME", help="only the calls of this dialogue (its name, or its "
                                                         ".dlg file)")
    parser.add_argument("--campaign", metavar="NAME", help="only the calls and attempts of this campaign")
    parser.add_argument("--compare", action="store_true", help="beside each figure, the previous period of "
                                                                "the same length and the change")
    parser.add_argument("--json", action="store_true", help="one JSON object on standard output")
    parser.add_argument("--html", metavar="FILE", help="also write one self-contained HTML page with charts "
                                                       "and the dialogue's flow graph")
    add_config_option(parser, database=True)
    parser.set_defaults(func=run)


def run(args) -> int:
    from autocall.ages import parse_when
    from autocall.report.figures import build_report
    from autocall.store.reports import Scope, campaign_id

    config = config_from(args)
    now = time.time()
    since = parse_when(args.since or DEFAULT_SINCE, now, "--since")
    until = parse_when(args.until, now, "--until", end_of_day=True) if args.until else now
    if since >= until:
        raise UserError(f"--since {args.since or DEFAULT_SINCE} is not before --until {args.until or 'now'}; "
                        "give a period that starts before it ends")
    script, script_file = _script(args.script)
    if args.html:
        _check_writable(args.html)
    conn = open_existing_database(config)
    try:
        chosen = None
        if args.campaign is not None:
            chosen = campaign_id(conn, args.campaign)
            if chosen is None:
                from autocall.store.campaigns import campaign_names
                known = ", ".join(campaign_names(conn)) or "none yet"
                raise UserError(f"--campaign {args.campaign}: no such campaign (campaigns: {known})")
        report = build_report(conn, Scope(since, until, script, chosen), campaign=args.campaign,
                              compare=args.compare, opener=_opener(config.database))
        if args.html:
            from autocall.report.html import write_page
            write_page(args.html, report, programs_for(conn, config, report, script_file))
    finally:
        conn.close()
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    else:
        from rich.console import Console

        from autocall.report.terminal import render
        render(report, Console(file=sys.stdout, width=None if sys.stdout.isatty() else 120))
    if args.html:
        sys.stderr.write(f"wrote {args.html}: open it in a browser (it needs no network)\n")
    return 0


def _opener(database: str):
    """Connections for the report's queries that run at once (none for an in-memory database)."""
    if database == ":memory:":
        return None
    from autocall.store.db import connect
    return lambda: connect(database)


def _script(value: str | None) -> tuple[str | None, str | None]:
    """``--script``: a dialogue name, or a ``.dlg`` file (then its dialogue's name, and the file)."""
    if value is None or not value.endswith(".dlg"):
        return value, None
    from autocall.cli.common import compile_or_report

    if not os.path.isfile(value):
        raise UserError(f"--script {value}: no such file; give the dialogue's name or an existing .dlg")
    program = compile_or_report(value)
    if program is None:
        raise UserError(f"--script {value}: does not compile (errors above); fix it or give the dialogue's name")
    return program.name, value


def _check_writable(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"--html {path}: the folder {folder} does not exist; create it or write elsewhere")


def programs_for(conn, config, report: dict, script_file: str | None = None) -> dict:
    """The compiled dialogue of each script in the report (to draw its flow graph), or why there is none:
    the file given, else NAME.dlg in the scripts folder, else the file its latest campaign ran."""
    from autocall.dsl.compiler import Compiler
    from autocall.store.reports import script_path_of_campaign

    compiler = Compiler()
    programs: dict = {}
    names = list(report["scripts"]) + [c["script"] for c in report["campaigns"].values()]
    for name in dict.fromkeys(names):
        candidates = [script_file] if script_file else []
        candidates += [os.path.join(config.scripts_dir, f"{name}.dlg"), script_path_of_campaign(conn, name)]
        found = next((path for path in candidates if path and os.path.isfile(path)), None)
        if found is None:
            programs[name] = f"no {name}.dlg in the scripts folder ({config.scripts_dir}); set scripts_dir"
            continue
        result = compiler.compile_file(found)
        if not result.ok:
            programs[name] = f"{found} does not compile now; fix it to see its graph"
        elif result.program.name != name:
            programs[name] = f"{found} is the dialogue {result.program.name}, not {name}"
        else:
            programs[name] = result.program
    return programs
