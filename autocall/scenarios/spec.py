"""Scenario files (``SCRIPT.test.toml``): reading them strictly, with problems that name file, line,
scenario and key, and a suggestion for a misspelt name.

The format is documented in docs/getting-started.md ("Scenario tests"); the
keys and their meaning are the tables below.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from autocall.suggest import suggest
from autocall.engine.interpreter import runtime_of
from autocall.engine.ir import BUILTINS, Program
from autocall.engine.record import ENDED_CALLER, ENDED_ERROR, ENDED_HANGUP
from autocall.errors import UserError
from autocall.sim.caller import parse_keys
from autocall.sim.runner import DIAL_STATUSES, QUEUE_STATUSES, SETTABLE_BUILTINS, parse_settings
from autocall.sim.web import CannedReply, parse_replies

SUFFIX = ".test.toml"

# What one call is: the scripted caller, its values, its time.
RUN_KEYS = ("name", "keys", "set", "now", "timezone", "skip", "reply")
DEFAULT_KEYS = ("set", "now", "timezone", "reply")      # [[scenario.reply]]/[[defaults.reply]]: canned web replies
# What must be true of it. Lists are "all of them, in order" unless the name says otherwise.
EXPECT_KEYS = (
    "expect_path",          # [state...]: exactly the states entered, in order, repeats included
    "expect_visits",        # [state...]: entered in this order, other states may come between
    "expect_not_visited",   # [state...]: never entered
    "expect_result",        # "label", or false for "no `result` ran"
    "expect_ended_by",      # "hangup" | "caller_hangup" | "error"
    "expect_prompts",       # [prompt...]: exactly what the caller heard; "text" (TTS, whole text),
                            # {file = "audio/x.mp3"}, {sound = "beep"}
    "expect_heard",         # [prompt...]: heard in this order, others between; a string is a part of a TTS text
    "expect_not_heard",     # ["text"...]: no TTS prompt contains any of these
    "expect_inputs",        # [{state, op, keys, outcome}...]: every input, each compared on the fields given
    "expect_variables",     # {name = value}: these vars/gathered values at the end (others ignored)
    "expect_transfers",     # ["PJSIP/101" | {destination, dialstatus}...]: every transfer, in order
    "expect_error",         # "text": the call ended with a run-time error whose message contains it
    "expect_optout",        # true | false: the caller was (not) put on the do-not-call list
    "expect_requests",      # ["GET crm /accounts/5550100" | {service, method, path, query, body, status, ok}...]:
                            # every fetch/send, in order, each compared on the fields given
    "expect_notifications", # ["crm /events" | {service, path, body}...]: every notify, in order
)
ENDINGS = (ENDED_HANGUP, ENDED_CALLER, ENDED_ERROR)
INPUT_FIELDS = {"state": None, "op": ("menu", "gather"),
                "keys": None, "outcome": ("match", "invalid", "timeout", "complete", "terminated", "empty")}
PROMPT_KINDS = ("say", "file", "sound")

_HEADER = re.compile(r"^\s*\[\[\s*scenario\s*\]\]")
_DEFAULTS = re.compile(r"^\s*\[\s*defaults\s*\]")


@dataclass(frozen=True)
class Problem:
    """Something wrong in a scenario file; ``render`` gives ``FILE:LINE: scenario 'x': key: message``."""

    message: str
    line: int | None = None
    scenario: str | None = None
    key: str | None = None
    column: int | None = None

    def render(self, path: str, with_scenario: bool = True) -> str:
        where = f"{path}:{self.line}" if self.line else path
        if self.line and self.column:
            where += f":{self.column}"
        who = f" scenario '{self.scenario}':" if self.scenario and with_scenario else ""
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{who}{key} {self.message}"


@dataclass
class Scenario:
    name: str
    number: int                                  # 1-based position in the file
    line: int | None = None                      # its [[scenario]] header
    keys: str = ""
    settings: dict[str, str | int] = field(default_factory=dict)
    now: datetime | None = None
    skip: str | None = None                      # when skipped: the reason ("" if none given)
    expect: dict[str, object] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    replies: list[CannedReply] = field(default_factory=list)   # its own first, then [defaults]'s


@dataclass
class ScenarioFile:
    path: str
    scenarios: list[Scenario] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)   # problems of the whole file: nothing runs


def scenario_path(script: str) -> str:
    """``support.dlg`` -> ``support.test.toml`` (beside it)."""
    base = script[:-4] if script.endswith(".dlg") else script
    return base + SUFFIX


def load_scenario_file(path: str, program: Program) -> ScenarioFile:
    """Read and check ``path`` against ``program``; every problem found, not only the first."""
    result = ScenarioFile(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        result.problems.append(Problem("no such file"))
        return result
    except OSError as exc:
        result.problems.append(Problem(f"cannot read the file ({exc.strerror})"))
        return result
    except UnicodeDecodeError:
        result.problems.append(Problem("not UTF-8 text; save the file as UTF-8"))
        return result
    except tomllib.TOMLDecodeError as exc:
        result.problems.append(_toml_problem(str(exc)))
        return result
    _Reader(text, data, program, result).read()
    return result


def _toml_problem(message: str) -> Problem:
    found = re.search(r"\(at line (\d+), column (\d+)\)$", message)
    if not found:
        return Problem(f"not valid TOML: {message}")
    return Problem(f"not valid TOML: {message[:found.start()].strip()}", int(found.group(1)),
                   column=int(found.group(2)))


class _Reader:
    """Turns the parsed TOML into Scenarios, collecting problems."""

    def __init__(self, text: str, data: dict, program: Program, result: ScenarioFile) -> None:
        self.lines = text.splitlines()
        self.data = data
        self.program = program
        self.result = result
        self.headers = [n for n, line in enumerate(self.lines, start=1) if _HEADER.match(line)]
        self.states = list(program.states)
        self.output_names = runtime_of(program).output_names   # the variables a call's record reports

    # -- locations ------------------------------------------------------------------------------
    def _span(self, number: int | None) -> tuple[int, int]:
        """First and last line of scenario ``number`` (or of [defaults] for None)."""
        if number is None:
            start = next((n for n, line in enumerate(self.lines, 1) if _DEFAULTS.match(line)), 0)
        elif len(self.headers) == self._count() and number <= len(self.headers):
            start = self.headers[number - 1]
        else:
            return 0, 0
        following = [n for n in self.headers if n > start]
        return start, (following[0] - 1 if following else len(self.lines))

    def _count(self) -> int:
        scenarios = self.data.get("scenario")
        return len(scenarios) if isinstance(scenarios, list) else 0

    def _line(self, number: int | None, key: str | None = None) -> int | None:
        start, end = self._span(number)
        if not start:
            return None
        if key:
            pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
            for n in range(start, end + 1):
                if pattern.match(self.lines[n - 1]):
                    return n
        return start

    # -- the file -------------------------------------------------------------------------------
    def read(self) -> None:
        problems = self.result.problems
        for key in self.data:
            if key not in ("scenario", "defaults"):
                problems.append(Problem(f"unknown top-level key '{key}'{suggest(key, ['scenario', 'defaults'])}; "
                                        "a scenario file has [defaults] and [[scenario]] tables"))
        scenarios = self.data.get("scenario")
        if scenarios is None:
            problems.append(Problem("no scenarios; add one: [[scenario]] name = \"...\" keys = \"...\" "
                                    "expect_path = [...]"))
            return
        if not isinstance(scenarios, list) or not all(isinstance(s, dict) for s in scenarios):
            problems.append(Problem("'scenario' must be tables written [[scenario]]"))
            return
        defaults = self.data.get("defaults", {})
        if not isinstance(defaults, dict):
            problems.append(Problem("'defaults' must be a table written [defaults]"))
            return
        base = Scenario("[defaults]", 0)
        self._run_keys(defaults, base, None, DEFAULT_KEYS)
        problems.extend(base.problems)
        if problems:
            return
        seen: dict[str, Scenario] = {}
        for number, table in enumerate(scenarios, start=1):
            scenario = self._scenario(table, number, base)
            if scenario.name in seen:
                other = seen[scenario.name]
                scenario.problems.append(Problem(
                    f"'{scenario.name}' is already the name of scenario #{other.number}"
                    + (f" (line {other.line})" if other.line else "") + "; give each scenario its own name",
                    self._line(number, "name"), scenario.name, "name"))
            seen.setdefault(scenario.name, scenario)
            self.result.scenarios.append(scenario)

    def _scenario(self, table: dict, number: int, base: Scenario) -> Scenario:
        name = table.get("name")
        scenario = Scenario(name if isinstance(name, str) and name.strip() else f"#{number}", number,
                            self._line(number), settings=dict(base.settings), now=base.now,
                            replies=list(base.replies))
        if not isinstance(name, str) or not name.strip():
            self._problem(scenario, "name", "every scenario needs a name = \"...\" (what the call is about)")
        for key in table:
            if key not in RUN_KEYS and key not in EXPECT_KEYS:
                hint = suggest(key, RUN_KEYS + EXPECT_KEYS) or "; see docs/getting-started.md for the keys"
                self._problem(scenario, key, f"unknown key{hint}")
        self._run_keys(table, scenario, number, RUN_KEYS, base_timezone=self.data.get("defaults", {}).get("timezone"))
        for key in EXPECT_KEYS:
            if key in table:
                try:
                    scenario.expect[key] = self._expectation(key, table[key])
                except _Bad as bad:
                    self._problem(scenario, key, str(bad))
        if not scenario.problems:
            self._check_runnable(scenario)
        scenario.problems.sort(key=lambda p: p.line or 0)
        return scenario

    def _problem(self, scenario: Scenario, key: str | None, message: str) -> None:
        if scenario.number:
            scenario.problems.append(Problem(message, self._line(scenario.number, key), scenario.name, key))
        else:
            label = f"[defaults] {key}" if key else "[defaults]"
            scenario.problems.append(Problem(message, self._line(None, key), None, label))

    # -- keys, set, now ------------------------------------------------------------------------------
    def _run_keys(self, table: dict, scenario: Scenario, number: int | None, allowed: tuple,
                  base_timezone: object = None) -> None:
        if number is None:
            for key in table:
                if key not in allowed:
                    self._problem(scenario, key, f"not a [defaults] key{suggest(key, allowed)}; "
                                                 f"[defaults] may set {', '.join(allowed)}")
        if "keys" in table:
            keys = table["keys"]
            if not isinstance(keys, str):
                self._problem(scenario, "keys", 'write the keys as a string, e.g. keys = "2 1234#"')
            else:
                try:
                    parse_keys(keys)
                    scenario.keys = keys
                except UserError as exc:
                    self._problem(scenario, "keys", str(exc).removeprefix("--keys: "))
        if "set" in table:
            self._settings(table["set"], scenario)
        if "reply" in table:
            where = "[[defaults.reply]]" if number is None else "[[scenario.reply]]"
            try:
                scenario.replies = parse_replies(table["reply"], where) + scenario.replies
            except UserError as exc:
                self._problem(scenario, "reply", str(exc).removeprefix(f"{where}: "))
        if "skip" in table:
            skip = table["skip"]
            if isinstance(skip, bool):
                scenario.skip = "" if skip else None
            elif isinstance(skip, str) and skip.strip():
                scenario.skip = skip
            else:
                self._problem(scenario, "skip", 'write skip = true or skip = "the reason"')
        zone_name = table.get("timezone", base_timezone)
        zone = None
        if zone_name is not None:
            try:
                zone = ZoneInfo(zone_name) if isinstance(zone_name, str) else None
            except (ZoneInfoNotFoundError, ValueError):
                zone = None
            if zone is None and "timezone" in table:
                self._problem(scenario, "timezone", f"unknown time zone {zone_name!r}; write an Area/City "
                                                    "name such as \"Europe/Rome\"")
        if "now" in table:
            try:
                scenario.now = _moment(table["now"], zone)
            except _Bad as bad:
                self._problem(scenario, "now", str(bad))

    def _settings(self, values: object, scenario: Scenario) -> None:
        if not isinstance(values, dict):
            self._problem(scenario, "set", 'write set = { name = "value", ... }')
            return
        params = [p["name"] for p in self.program.params]
        known = list(dict.fromkeys(params + self.output_names + list(SETTABLE_BUILTINS) + ["dialstatus"]))
        for name, value in values.items():
            if name not in known:
                fixed = "read-only" if name in BUILTINS else "not a param, variable or settable built-in"
                self._problem(scenario, "set", f"'{name}' is {fixed} of '{self.program.name}'"
                                               + (suggest(name, known) or f"; it has: {', '.join(known)}"))
            elif isinstance(value, bool) or not isinstance(value, (str, int)):
                self._problem(scenario, "set", f"{name}: write a string or a whole number, not {_kind(value)}")
            elif name == "dialstatus" and str(value).upper() not in DIAL_STATUSES:
                self._problem(scenario, "set", f"dialstatus {value!r} is not a dial status; use one of "
                                               f"{', '.join(DIAL_STATUSES)}")
            elif name == "queuestatus" and str(value).upper() not in QUEUE_STATUSES:
                self._problem(scenario, "set", f"queuestatus {value!r} is not a queue status; use one of "
                                               f"{', '.join(QUEUE_STATUSES)}")
            else:
                scenario.settings[name] = value

    def _check_runnable(self, scenario: Scenario) -> None:
        """What can only be judged with everything merged: required params, a time for hours."""
        missing = [name for name in self.program.required_params() if name not in scenario.settings]
        if missing:
            self._problem(scenario, "set", f"the param '{missing[0]}' of '{self.program.name}' is required; "
                                           f"add set = {{ {missing[0]} = \"...\" }} here or in [defaults]")
            return
        try:
            parse_settings(self.program, scenario.settings)
        except UserError as exc:
            self._problem(scenario, "set", str(exc))
        if scenario.now is None and uses_hours(self.program) and scenario.skip is None:
            self._problem(scenario, "now", "this dialogue checks its hours (within), so the result depends on "
                                           "the time: give one, e.g. now = 2026-03-02T10:30:00+01:00 "
                                           "(here or in [defaults])")

    # -- expectations ------------------------------------------------------------------------------
    def _expectation(self, key: str, value: object) -> object:
        if key in ("expect_path", "expect_visits", "expect_not_visited"):
            states = _strings(value, "state names")
            for state in states:
                if state not in self.program.states:
                    raise _Bad(f"'{self.program.name}' has no state '{state}'"
                               + (suggest(state, self.states) or f"; its states: {', '.join(self.states)}"))
            return states
        if key == "expect_result":
            if value is False or isinstance(value, str):
                return value
            raise _Bad('write the label, e.g. expect_result = "confirmed", or false for "no result"')
        if key == "expect_ended_by":
            if value not in ENDINGS:
                raise _Bad(f"{value!r} is not a way a call ends; use {', '.join(repr(e) for e in ENDINGS)}")
            return value
        if key in ("expect_prompts", "expect_heard"):
            if not isinstance(value, list):
                raise _Bad('write a list: ["some text", { file = "audio/x.mp3" }, { sound = "beep" }]')
            return [_prompt(item, position) for position, item in enumerate(value, start=1)]
        if key == "expect_not_heard":
            return _strings(value, "texts")
        if key == "expect_inputs":
            if not isinstance(value, list):
                raise _Bad('write a list of tables: [{ op = "menu", keys = "2", outcome = "match" }, ...]')
            return [self._input(item, position) for position, item in enumerate(value, start=1)]
        if key == "expect_variables":
            if not isinstance(value, dict):
                raise _Bad('write a table: { pin = "1234", attempts = 1 }')
            for name, wanted in value.items():
                if name not in self.output_names:
                    listed = ", ".join(self.output_names) or "none"
                    raise _Bad(f"'{name}' is not a variable of '{self.program.name}'"
                               + (suggest(name, self.output_names) or f" (its variables: {listed})"))
                if isinstance(wanted, bool) or not isinstance(wanted, (str, int)):
                    raise _Bad(f"{name}: write a string or a whole number, not {_kind(wanted)}")
            return dict(value)
        if key == "expect_transfers":
            if not isinstance(value, list):
                raise _Bad('write a list: ["PJSIP/101", { destination = "PJSIP/200", dialstatus = "BUSY" }]')
            return [_transfer(item, position) for position, item in enumerate(value, start=1)]
        if key == "expect_error":
            if not isinstance(value, str) or not value:
                raise _Bad("write a part of the error message, e.g. expect_error = \"cannot use\"")
            return value
        if key == "expect_optout":
            if not isinstance(value, bool):
                raise _Bad("write true or false")
            return value
        if key == "expect_requests":
            if not isinstance(value, list):
                raise _Bad('write a list: ["GET crm /accounts/5550100", { method = "POST", path = "/bookings", '
                           'status = 200 }]')
            return [_web_entry(item, position, REQUEST_FIELDS, 3) for position, item in enumerate(value, start=1)]
        if key == "expect_notifications":
            if not isinstance(value, list):
                raise _Bad('write a list: ["crm /events", { path = "/events", body = { kind = "done" } }]')
            return [_web_entry(item, position, NOTIFICATION_FIELDS, 2) for position, item in enumerate(value, start=1)]
        raise AssertionError(key)

    def _input(self, item: object, position: int) -> dict:
        if not isinstance(item, dict) or not item:
            raise _Bad(f"item {position}: write a table such as {{ op = \"menu\", keys = \"2\", outcome = \"match\" }}")
        for name, wanted in item.items():
            if name not in INPUT_FIELDS:
                raise _Bad(f"item {position}: unknown field '{name}'{suggest(name, INPUT_FIELDS)}; "
                           f"fields: {', '.join(INPUT_FIELDS)}")
            if not isinstance(wanted, str):
                raise _Bad(f"item {position}: {name} must be a string")
            allowed = INPUT_FIELDS[name]
            if allowed and wanted not in allowed:
                raise _Bad(f"item {position}: {name} {wanted!r} is not one of {', '.join(allowed)}")
            if name == "state" and wanted not in self.program.states:
                raise _Bad(f"item {position}: '{self.program.name}' has no state '{wanted}'"
                           + suggest(wanted, self.states))
        return dict(item)


class _Bad(Exception):
    """One problem with one key's value."""


def _kind(value: object) -> str:
    return {bool: "true/false", float: "a decimal number", list: "a list", dict: "a table"}.get(
        type(value), type(value).__name__)


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Bad(f"write a list of {what} in quotes, e.g. [\"main\", \"login\"]"
                   if what == "state names" else f"write a list of {what} in quotes")
    return list(value)


def _prompt(item: object, position: int) -> tuple[str, str]:
    """A prompt expectation as (kind, value): ("tts", text), ("file", path) or ("sound", name)."""
    if isinstance(item, str):
        return ("tts", item)
    if isinstance(item, dict) and len(item) == 1:
        (kind, value), = item.items()
        if kind in PROMPT_KINDS and isinstance(value, str):
            return ("tts" if kind == "say" else kind, value)
    raise _Bad(f"item {position}: write \"text\", {{ say = \"text\" }}, {{ file = \"path\" }} or {{ sound = \"name\" }}")


REQUEST_FIELDS = ("service", "method", "path", "query", "body", "status", "ok", "error")
NOTIFICATION_FIELDS = ("service", "path", "body")


def _web_entry(item: object, position: int, fields: tuple[str, ...], words: int) -> dict:
    """``"GET crm /path"`` (or ``"crm /path"`` for a notification) or a table of some of ``fields``."""
    if isinstance(item, str):
        parts = item.split()
        if len(parts) == words:
            return dict(zip(fields[:words] if words == 2 else ("method", "service", "path"), parts))
    elif isinstance(item, dict) and item:
        for name in item:
            if name not in fields:
                raise _Bad(f"item {position}: unknown field '{name}'{suggest(name, fields)}; "
                           f"fields: {', '.join(fields)}")
        return dict(item)
    example = '"GET crm /accounts/5550100"' if words == 3 else '"crm /events"'
    raise _Bad(f"item {position}: write {example} or a table of some of: {', '.join(fields)}")


def _transfer(item: object, position: int) -> dict:
    if isinstance(item, str):
        return {"destination": item}
    if isinstance(item, dict) and item and set(item) <= {"destination", "dialstatus"} \
            and all(isinstance(v, str) for v in item.values()):
        return dict(item)
    raise _Bad(f"item {position}: write \"PJSIP/101\" or {{ destination = \"PJSIP/101\", dialstatus = \"BUSY\" }}")


def _moment(value: object, zone: ZoneInfo | None) -> datetime:
    """``now`` as an aware datetime: a TOML date-time or an ISO-8601 string; without an offset, in ``zone``."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise _Bad(f"{value!r} is not a date and time; write e.g. 2026-03-02T10:30:00+01:00") from None
    if isinstance(value, (date, time)) and not isinstance(value, datetime):
        raise _Bad("give a date and a time of day, e.g. 2026-03-02T10:30:00+01:00")
    if not isinstance(value, datetime):
        raise _Bad("write a date and time, e.g. now = 2026-03-02T10:30:00+01:00")
    if value.tzinfo is None:
        if zone is None:
            raise _Bad("give the offset (2026-03-02T10:30:00+01:00) or a timezone = \"Europe/Rome\", so the "
                       "scenario gives the same result on every machine")
        value = value.replace(tzinfo=zone)
    return value


def uses_hours(program: Program) -> bool:
    """True when some expression of ``program`` calls within(): its calls depend on the time."""
    exprs = [v["init"] for v in program.data["vars"]]
    for state in program.states.values():
        for op in state["code"]:
            exprs.extend(op[key] for key in ("cond", "expr", "dest", "callerid") if op.get(key))
    while exprs:
        expr = exprs.pop()
        if expr[0] == "call":
            if expr[1] == "within":
                return True
            exprs.extend(expr[2])
        elif expr[0] == "bin":
            exprs.extend(expr[2:])
        elif expr[0] in ("not", "neg"):
            exprs.append(expr[1])
    return False
