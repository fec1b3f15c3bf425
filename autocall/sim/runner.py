"""Running one simulated call: ``--set`` values, ``--now``, the scripted caller, the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from autocall.engine.interpreter import DEFAULT_MAX_DURATION_MS, Call
from autocall.engine.spoken import SpeechDefaults
from autocall.engine.ir import BUILTINS, Program
from autocall.engine.record import CallRecord
from autocall.errors import UserError
from autocall.sim.caller import ScriptedCaller
from autocall.sim.channel import (DEFAULT_QUEUE_STATUS, DEFAULT_TRANSFER_STATUS, SimCaller, SimChannel, SimClock,
                                  run_sync)
from autocall.sim.web import CannedReply, CannedWeb
from autocall.engine.web import WebPort
from autocall.suggest import suggest

SETTABLE_BUILTINS = tuple(name for name in BUILTINS if name not in ("call_id", "choice"))
DIAL_STATUSES = ("ANSWER", "BUSY", "NOANSWER", "CHANUNAVAIL", "CONGESTION", "CANCEL", "DONTCALL",
                 "TORTURE", "INVALIDARGS")
# Asterisk's QUEUESTATUS values, and ANSWER: an agent took the call.
QUEUE_STATUSES = ("ANSWER", "TIMEOUT", "FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL")


@dataclass
class SimSettings:
    """What ``--set NAME=VALUE`` pairs mean for one dialogue."""

    params: dict[str, str] = field(default_factory=dict)
    builtins: dict[str, object] = field(default_factory=dict)
    initial: dict[str, object] = field(default_factory=dict)
    transfer_status: str = DEFAULT_TRANSFER_STATUS
    queue_status: str = DEFAULT_QUEUE_STATUS


def parse_settings(program: Program, pairs: list[str] | dict[str, object]) -> SimSettings:
    """Sort ``NAME=VALUE`` pairs into params, built-ins and starting values; refuse unknown names."""
    settings = SimSettings()
    items = list(pairs.items()) if isinstance(pairs, dict) else [_split(pair) for pair in pairs]
    params = [p["name"] for p in program.params]
    var_inits = {v["name"]: v["init"] for v in program.data["vars"]}
    gathered = set(program.data["gathered"])
    for name, value in items:
        if name == "dialstatus":
            status = str(value).upper()
            if status not in DIAL_STATUSES:
                raise UserError(f"--set dialstatus={value}: not a dial status; use one of {', '.join(DIAL_STATUSES)}")
            settings.transfer_status = status
        elif name == "queuestatus":
            status = str(value).upper()
            if status not in QUEUE_STATUSES:
                raise UserError(f"--set queuestatus={value}: not a queue status; use one of "
                                f"{', '.join(QUEUE_STATUSES)}")
            settings.queue_status = status
        elif name in params:
            settings.params[name] = value if isinstance(value, int) else str(value)
        elif name in SETTABLE_BUILTINS:
            settings.builtins[name] = _as_number(value) if name == "attempt" else str(value)
        elif name in var_inits or name in gathered:
            numeric = name in var_inits and var_inits[name][0] == "int"
            settings.initial[name] = _as_number(value) if numeric and str(value).isdigit() else value
        else:
            known = list(dict.fromkeys([*params, *var_inits, *program.data["gathered"], *SETTABLE_BUILTINS]))
            raise UserError(f"--set {name}: '{program.name}' has no param or variable '{name}'"
                            + (suggest(name, known) or f"; it has: {', '.join(known)}"))
    missing = [name for name in program.required_params() if name not in settings.params]
    if missing:
        raise UserError(f"the param '{missing[0]}' of '{program.name}' is required; pass --set {missing[0]}=VALUE")
    return settings


def _split(pair: str) -> tuple[str, str]:
    name, sep, value = pair.partition("=")
    if not sep or not name.strip():
        raise UserError(f"--set {pair!r}: write NAME=VALUE")
    return name.strip(), value


def _as_number(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UserError(f"--set: {value!r} is not a whole number") from None


def parse_now(text: str | None) -> datetime:
    """``--now`` as an aware datetime; a time without an offset is the machine's local time."""
    if text is None:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--now {text!r}: not an ISO-8601 time; write e.g. 2026-03-02T10:30 or "
                        "2026-03-02T10:30+01:00") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment


def simulate(program: Program, *, keys: str = "", caller: SimCaller | None = None,
             settings: SimSettings | None = None, now: datetime | None = None, call_id: str = "sim",
             max_duration_ms: int = DEFAULT_MAX_DURATION_MS,
             on_event: Callable[[str, object], None] | None = None,
             replies: list[CannedReply] = (), web: Callable[[SimClock], WebPort] | None = None,
             speech: SpeechDefaults = SpeechDefaults()) -> CallRecord:
    """Run one call of ``program`` in the simulator and return its record.

    ``fetch``/``send`` are answered from ``replies`` (canned), or by the port ``web(clock)`` makes
    (``--http live``); nothing reaches the network otherwise.
    """
    settings = settings or parse_settings(program, {})
    clock = SimClock((now or datetime.now(timezone.utc)).timestamp())
    port = web(clock) if web is not None else CannedWeb(list(replies), clock)
    channel = SimChannel(caller or ScriptedCaller(keys), clock, call_id=call_id,
                         transfer_status=settings.transfer_status, queue_status=settings.queue_status)
    call = Call(program, channel, clock, call_id=call_id, params=settings.params, builtins=settings.builtins,
                initial=settings.initial, max_duration_ms=max_duration_ms, on_event=on_event, web=port,
                speech=speech)
    return run_sync(call.run())
