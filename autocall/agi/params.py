"""Where a FastAGI call's ``param`` values and built-ins come from (pure: no I/O).

Precedence, first found wins (docs/operations.md, "Params"):

1. the query string of the AGI URL: ``agi://host/support?company=Acme``;
2. AGI arguments (``AGI(agi://host/support,ARG1,ARG2)``): an argument
   ``NAME=VALUE`` whose NAME is a param of the script sets that param;
   every other argument is positional and fills, in declaration order, the
   params not named by 1 or by a ``NAME=VALUE`` argument;
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
    """Params from the query string and the AGI arguments; also notes about what was ignored (for the log)."""
    declared = [param["name"] for param in program.params]
    if not declared:
        return {}, []
    known = set(declared)
    given: dict[str, str] = {}
    notes: list[str] = []
    for name, value in environment.query.items():
        if name in known:
            given[name] = value
        else:
            notes.append(f"query parameter {name!r} is not a param of the script; ignored")
    positional: list[str] = []
    for argument in environment.args:
        name, equals, value = argument.partition("=")
        if equals and name in known:
            given.setdefault(name, value)
        else:
            positional.append(argument)
    if positional:
        unfilled = [name for name in declared if name not in given]
        for name, value in zip(unfilled, positional):
            given[name] = value
        if len(positional) > len(unfilled):
            notes.append(f"{len(positional) - len(unfilled)} AGI argument(s) left over after filling "
                         f"every param; ignored")
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
