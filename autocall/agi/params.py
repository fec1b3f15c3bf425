"""Where a FastAGI call's ``param`` values and built-ins come from (pure: no I/O).

Precedence, first found wins (docs/operations.md, "Params"):

1. the query string of the AGI URL: ``agi://host/support?company=Acme``;
2. AGI arguments ``NAME=VALUE`` (``AGI(agi://host/support,company=Acme)``)
   whose NAME is a param of the script. Any other argument, positional ones
   included, fills nothing and is logged: a positional argument is often
   the dialled extension (``${EXTEN}``), which the caller chooses, and must
   never become, say, an account PIN;
3. for a campaign call, the contact's columns;
4. ``GET VARIABLE NAME`` on the channel (the server asks);
5. the param's default. A required param still missing ends the call with
   ``ended_by: error`` (the engine says which).

Built-ins: ``caller`` (``agi_callerid``; ``unknown`` is Asterisk's "none"
and becomes ``""``), ``caller_name``, ``called`` (``agi_dnid``, else
``agi_extension``), ``channel``, ``attempt`` 1 (a campaign call: the
contact's number and the attempt number instead).
"""

from __future__ import annotations

from autocall.agi.protocol import Environment
from autocall.engine.ir import Program

_NONE = frozenset({"", "unknown"})


def request_params(program: Program, environment: Environment) -> tuple[dict[str, str], list[str]]:
    """Params from the query string and the ``NAME=VALUE`` AGI arguments; also notes about what was ignored."""
    known = {param["name"] for param in program.params}
    given: dict[str, str] = {}
    notes: list[str] = []
    for name, value in environment.query.items():
        if name in known:
            given[name] = value
        elif known:
            notes.append(f"query parameter {name!r} is not a param of the script; ignored")
    positional = 0
    for argument in environment.args:
        name, equals, value = argument.partition("=")
        if equals and name in known:
            given.setdefault(name, value)
        elif equals:
            if known:
                notes.append(f"AGI argument {name!r}= is not a param of the script; ignored")
        else:
            positional += 1
    if positional:
        notes.append(f"{positional} positional AGI argument(s) ignored: only NAME=VALUE arguments and the "
                     f"query string fill params")
    return given, notes


def missing_params(program: Program, given: dict[str, object]) -> list[str]:
    """Declared params not yet given, in declaration order (the server asks the channel for these)."""
    return [param["name"] for param in program.params if param["name"] not in given]


def environment_builtins(environment: Environment) -> dict[str, object]:
    """The built-ins an inbound call's environment gives."""
    fields = environment.fields
    caller = fields.get("agi_callerid", "")
    name = fields.get("agi_calleridname", "")
    called = fields.get("agi_dnid", "")
    if called in _NONE:
        called = fields.get("agi_extension", "")
    return {"caller": "" if caller in _NONE else caller, "caller_name": "" if name in _NONE else name,
            "called": called, "channel": fields.get("agi_channel", ""), "attempt": 1}
