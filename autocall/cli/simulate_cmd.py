"""``autocall simulate FILE``: one call with a scripted (``--keys``) or keyboard caller, no PBX needed."""

from __future__ import annotations

import json
import sys

from autocall.cli.common import add_config_option, config_from, load_program, use_color
from autocall.engine.dial import QUEUE_PREFIX
from autocall.engine.record import ENDED_ERROR, SECRET_MASK
from autocall.engine.spoken import SpeechDefaults


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "simulate", help="run one call in the simulator",
        description="Run one call of a dialogue without a PBX. The caller presses --keys "
                    "(0-9 * #, w = stay silent, h = hang up); without --keys on a terminal, you are the caller.")
    parser.add_argument("file", metavar="FILE", help=".dlg script (or compiled .json)")
    parser.add_argument("--keys", help="the scripted caller's keys, e.g. '2 1234#' or '1w1h'")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                        help="a param, built-in (caller, amd, ...) or starting value; dialstatus=BUSY sets "
                             "what transfers return (ANSWER ends the call there), queuestatus=FULL what "
                             "queues return")
    parser.add_argument("--now", metavar="ISO-8601", help="the time the call starts (for hours and within())")
    parser.add_argument("--json", action="store_true", help="print the call as one JSON object")
    parser.add_argument("--http", metavar="FILE.toml|live",
                        help="answer fetch/send from the canned [[reply]] tables of FILE.toml, or 'live' to send "
                             "real requests to the configured services (default: nothing is sent; every request "
                             "gets status 0)")
    add_config_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from autocall.sim.runner import parse_now, parse_settings, simulate

    config = config_from(args)
    program = load_program(args.file)
    if program is None:
        return 1
    settings = parse_settings(program, args.settings)
    now = parse_now(args.now)
    replies, web = _http(args.http, config)
    interactive = args.keys is None and sys.stdin.isatty() and not args.json
    printer = None if args.json else TranscriptPrinter(sys.stdout)
    followers = [printer.event] if printer else []
    sets: list[dict] = []

    def on_event(kind: str, data) -> None:
        if kind == "set":
            sets.append(data)
        for follow in followers:
            follow(kind, data)

    speech = SpeechDefaults(config.voice, config.currency)
    if interactive:
        from autocall.sim.terminal import TerminalCaller
        with TerminalCaller(program=program, color=use_color(sys.stdout)) as caller:
            followers.append(caller.event)
            record = simulate(program, caller=caller, settings=settings, now=now, on_event=on_event,
                              max_duration_ms=config.max_call_duration, replies=replies, web=web, speech=speech)
    else:
        record = simulate(program, keys=args.keys or "", settings=settings, now=now, on_event=on_event,
                          max_duration_ms=config.max_call_duration, replies=replies, web=web, speech=speech)
    if args.json:
        data = {**record.simulate_json(), "sets": sets, "optout": record.optout}
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        printer.summary(record)
    return 1 if record.ended_by == ENDED_ERROR else 0


def _http(option: str | None, config):
    """(canned replies, live port factory) for ``--http``."""
    if option is None:
        return [], None
    if option == "live":
        from autocall.services_config import check_services
        from autocall.web.blocking import BlockingWeb
        check_services(config.services)
        return [], lambda clock: BlockingWeb(config.services, clock)
    from autocall.sim.web import load_replies
    return load_replies(option), None


class TranscriptPrinter:
    """The call as a readable transcript, event by event."""

    def __init__(self, stream) -> None:
        self.stream = stream
        color = use_color(stream)
        self.bold = "\033[1m" if color else ""
        self.dim = "\033[2m" if color else ""
        self.reset = "\033[0m" if color else ""

    def line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def event(self, kind: str, data) -> None:
        if kind == "state":
            self.line(f"{self.bold}[{data}]{self.reset}")
        elif kind == "prompt":
            if data["kind"] == "tts":
                self.line(f'   says      "{data["text"]}"')
            elif data["kind"] == "file":
                self.line(f"   plays     file {data['file']}")
            else:
                self.line(f"   plays     sound {data['name']}")
        elif kind == "input":
            keys = data["keys"] or "(nothing)"
            self.line(f"   {data['op']:<9} caller: {keys} -> {data['outcome']}")
        elif kind == "transfer":
            destination = data["destination"]
            if destination.startswith(QUEUE_PREFIX):
                self.line(f"   queue     {destination[len(QUEUE_PREFIX):]} -> {data['dialstatus']}")
            else:
                self.line(f"   transfer  {destination} -> {data['dialstatus']}")
        elif kind == "record":
            self.line(f"   record    -> {data}")
        elif kind == "set":
            value = data["value"]
            shown = json.dumps(value, ensure_ascii=False) if isinstance(value, str) and value != SECRET_MASK else value
            self.line(f"   set       {data['name']} = {shown}")
        elif kind == "request":
            outcome = f"{data['status']}" + (f" {data['error']}" if data["error"] else "")
            verb = "fetch" if data["method"] == "GET" else "send"
            self.line(f"   {verb:<9} {data['service']} {data['path']} -> {outcome}")
        elif kind == "notify":
            self.line(f"   notify    {data['service']} {data['path']}")
        elif kind == "optout":
            self.line("   optout    the caller's number goes on the do-not-call list")
        elif kind == "result":
            self.line(f"   result    {data}")
        elif kind == "log":
            self.line(f"   {self.dim}log       {data}{self.reset}")

    def summary(self, record) -> None:
        ended = record.ended_by if record.error is None else f"error: {record.error}"
        result = record.result if record.result is not None else "(none)"
        self.line(f"{self.bold}call ended:{self.reset} {ended}; result: {result}; "
                  f"path: {' -> '.join(record.path)}")
