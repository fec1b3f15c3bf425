"""Helpers of the report tests: a dialogue with every kind of figure, calls simulated into a database,
and ``autocall report --json`` run in-process."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from autocall.cli.main import main
from autocall.sim.runner import parse_settings, simulate
from autocall.store.calls import save_call

# A menu (with a failure target), a transfer, a secret gather and a plain gather.
LINES = """\
dialogue lines
start main

state main:
    answer
    menu "Press 1 for sales, 2 for your account, 3 to leave a number." timeout 2s tries 2:
        1 -> sales
        2 -> account
        3 -> callback
        failure -> bye

state sales:
    result "sales"
    transfer "PJSIP/100" timeout 5s
    goto bye

state account:
    gather pin digits 4 prompt "Your PIN?" timeout 2s secret
    if pin == "1234":
        result "ok"
    else:
        result "bad"
    goto bye

state callback:
    gather number max 6 prompt "Your number, then hash." timeout 2s
    result "callback"
    goto bye

state bye:
    say "Goodbye."
    hangup
"""


def simulate_into(conn, program, calls: list[tuple[str, str]], start: datetime, step_s: float = 60.0) -> None:
    """Save one simulated call per ``(keys, dialstatus)``, ``step_s`` apart from ``start``."""
    for index, (keys, dialstatus) in enumerate(calls):
        settings = parse_settings(program, {"dialstatus": dialstatus} if dialstatus else {})
        record = simulate(program, keys=keys, settings=settings, now=start + timedelta(seconds=index * step_s),
                          call_id=f"call-{start.timestamp():.0f}-{index}")
        save_call(conn, record)


def report_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    code = main(["report", "--json", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)
