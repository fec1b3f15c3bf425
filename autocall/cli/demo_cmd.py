"""``autocall demo``: the main job on the simulated PBX, as ``make demo`` shows it."""

from __future__ import annotations

import sys
from pathlib import Path

from autocall.errors import UserError

EXAMPLES = Path(__file__).resolve().parents[2] / "scripts_examples"
SUPPORT_CALL = {
    "keys": "3 1234",
    "now": "2026-03-02T10:30:00-05:00",
    "set": {"caller": "5550100"},
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="show a call and a campaign on the simulated PBX",
        description="Check the sample support line, play one caller through it, show the call's path "
                    "through the dialogue's graph, then run a 20-contact reminder campaign on the simulated PBX.")
    parser.add_argument("--workdir", default="demo-out", metavar="DIR",
                        help="where the graph, the campaign's contacts and database go (default: demo-out)")
    parser.add_argument("--keys", default=SUPPORT_CALL["keys"], help="what the demo caller presses")
    parser.add_argument("--no-campaign", action="store_true", help="only the call, not the campaign")
    parser.set_defaults(func=run)


def _report(out, workdir: Path, database: Path, record) -> None:
    """Store the demo call beside the campaign's, then the report of them all: tables here, a page in workdir."""
    import time

    from rich.console import Console

    from autocall.cli.report_cmd import programs_for
    from autocall.config import Config
    from autocall.report.figures import build_report
    from autocall.report.html import write_page
    from autocall.report.terminal import render
    from autocall.store.calls import save_call
    from autocall.store.db import connect
    from autocall.store.reports import Scope

    conn = connect(str(database))
    try:
        save_call(conn, record, origin="demo")
        since = record.started_at - record.started_at % 86_400
        report = build_report(conn, Scope(since, time.time() + 1))
        page = workdir / "report.html"
        write_page(str(page), report, programs_for(conn, Config(database=str(database),
                                                                 scripts_dir=str(EXAMPLES)), report))
    finally:
        conn.close()
    out.write(f"$ autocall report --since {time.strftime('%Y-%m-%d', time.localtime(since))} "
              f"--html {page}    (database {database})\n\n")
    render(report, Console(file=out, width=120, force_terminal=out.isatty()))
    out.write(f"\nthe report as a page, charts and the flow graphs with their traffic: {page.resolve()}\n")


def _deliver_events(out, database: Path, services, events, crm) -> None:
    """The campaign's queued events, delivered to the sample CRM (as ``campaign run`` does at its end)."""
    import logging

    from autocall.config import Config
    from autocall.outbox.delivery import deliver_due

    logging.getLogger("autocall.web").setLevel(logging.ERROR)
    sent = deliver_due(Config(database=str(database), services=services, events=events))
    confirmations = sum(1 for _method, path in crm.received if path == "/api/confirmations")
    out.write(f"\nthe sample CRM received {confirmations} booking confirmations (send) during the calls, and "
              f"{sent['delivered']} attempt_ended events from the outbox after them")
    if crm.events:
        first = crm.events[0]
        out.write(f"; the first: {first.get('number')} attempt {first.get('attempt')}: {first.get('outcome')}")
    out.write("\n")


def _heading(out, number: int, text: str) -> None:
    out.write(f"\n== {number}. {text}\n\n")


def run(args) -> int:
    from autocall.demo_crm import SampleCrm

    out = sys.stdout
    script = EXAMPLES / "support.dlg"
    if not script.is_file():
        raise UserError(f"{script}: the sample dialogue is missing; run the demo from a full checkout")
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    crm = SampleCrm().start()
    try:
        return _run(args, out, script, workdir, crm)
    finally:
        crm.stop()


def _run(args, out, script: Path, workdir: Path, crm) -> int:
    from autocall.cli.common import new_compiler, print_diagnostics
    from autocall.cli.simulate_cmd import TranscriptPrinter
    from autocall.demo_crm import EVENTS_PATH
    from autocall.graph import build_graph, render_dot, render_mermaid, render_trace_text, trace_path
    from autocall.services_config import EventRoute, ServiceConfig
    from autocall.sim.runner import parse_now, parse_settings, simulate
    from autocall.web.blocking import BlockingWeb

    services = {name: ServiceConfig(name, crm.url) for name in ("crm", "booking")}
    events = {"attempt_ended": EventRoute("attempt_ended", "booking", EVENTS_PATH.removeprefix("/api"))}
    out.write("AutoCall demo: the sample support line and a reminder campaign, on the simulated PBX.\n")
    out.write(f"A sample CRM answers on {crm.url} (autocall.toml would say: [services.crm] url = \"{crm.url}\").\n")
    _heading(out, 1, f"Check {script.relative_to(EXAMPLES.parent)}")
    result = new_compiler().compile_file(str(script))
    print_diagnostics(result, stream=out)
    if not result.ok:
        return 1
    program = result.program
    out.write(f"$ autocall check {script.relative_to(EXAMPLES.parent)}\n"
              f"ok: {len(program.states)} states, no errors\n")

    _heading(out, 2, f"A caller presses '{args.keys}' (Monday 10:30 in New York, PIN on file 1234)")
    out.write(f"$ autocall simulate scripts_examples/support.dlg --keys '{args.keys}' "
              f"--now {SUPPORT_CALL['now']} --set caller=5550100 --http live\n")
    printer = TranscriptPrinter(out)
    record = simulate(program, keys=args.keys, settings=parse_settings(program, SUPPORT_CALL["set"]),
                      now=parse_now(SUPPORT_CALL["now"]), on_event=printer.event,
                      web=lambda clock: BlockingWeb(services, clock))
    printer.summary(record)

    _heading(out, 3, "The call's path through the dialogue")
    graph = build_graph(program)
    trace = trace_path(graph, program, record.path, inputs=record.inputs, ended_by=record.ended_by,
                       transfers=record.transfers)
    out.write(render_trace_text(trace) + "\n")
    dot_text = render_dot(graph, trace, title="support.dlg: the demo call")
    (workdir / "support.dot").write_text(dot_text, encoding="utf-8")
    (workdir / "support.mmd").write_text(render_mermaid(graph, trace), encoding="utf-8")
    written = ["support.dot", "support.mmd"]
    try:
        from autocall.graph import render_image
        (workdir / "support.svg").write_bytes(render_image(dot_text, "svg"))
        written.append("support.svg")
    except UserError as exc:
        out.write(f"(no SVG: {exc})\n")
    out.write(f"graph with the call's path highlighted: {', '.join(str(workdir / w) for w in written)}\n")

    from autocall.campaign.demo import DATABASE
    database = workdir / DATABASE
    if args.no_campaign:
        database.unlink(missing_ok=True)
    else:
        from autocall.campaign.demo import run_demo_campaign
        _heading(out, 4, "An appointment-reminder campaign: 20 contacts on the simulated PBX")
        run_demo_campaign(workdir, out, services=services, events=events)
        _deliver_events(out, database, services, events, crm)

    _heading(out, 5 if not args.no_campaign else 4, "The report: what happened on the lines")
    _report(out, workdir, database, record)

    out.write("\nNext: docs/getting-started.md (write your own dialogue), docs/operations.md "
              "(serve it through Asterisk), docs/campaigns.md (call a list), docs/reports.md (read a report).\n")
    return 0
