"""Each expectation of a scenario against the call it ran: a Failure with a short, readable difference."""

from __future__ import annotations

from dataclasses import dataclass, field

from autocall.engine import values as V
from autocall.engine.record import ENDED_ERROR, CallRecord

MAX_LISTED = 12   # prompts or inputs shown under a failure before "... N more"


@dataclass
class Failure:
    key: str
    message: str
    details: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"key": self.key, "message": self.message, "details": list(self.details)}


def check(expect: dict[str, object], record: CallRecord) -> list[Failure]:
    """Every expectation that the call does not meet, in the order of EXPECT_KEYS."""
    failures = []
    for key, wanted in expect.items():
        failure = CHECKS[key](wanted, record)
        if failure is not None:
            failure.key = key
            failures.append(failure)
    if record.ended_by == ENDED_ERROR and "expect_error" not in expect and "expect_ended_by" not in expect:
        failures.append(Failure("error", f"the call ended with an error: {record.error}",
                                [f"path: {_path(record.path)}"]))
    return failures


# -- states ---------------------------------------------------------------------------------------

def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _path(states: list[str]) -> str:
    return " -> ".join(states) if states else "(no state)"


def check_path(wanted: list[str], record: CallRecord) -> Failure | None:
    actual = record.path
    if actual == wanted:
        return None
    step = next((i for i, (a, b) in enumerate(zip(wanted, actual)) if a != b), min(len(wanted), len(actual)))
    if step < min(len(wanted), len(actual)):
        message = f"path differs at step {step + 1}: expected '{wanted[step]}', got '{actual[step]}'"
    elif len(actual) < len(wanted):
        message = f"path is shorter: the call ended in '{actual[-1] if actual else '-'}', expected next '{wanted[step]}'"
    else:
        message = f"path is longer: after '{wanted[-1] if wanted else '-'}' the call went on to '{actual[step]}'"
    caret_at = len("actual:   ") + len(" -> ".join(actual[:step])) + (4 if step else 0)
    width = len(actual[step]) if step < len(actual) else 1
    return Failure("", message, [f"expected: {_path(wanted)}", f"actual:   {_path(actual)}",
                                 " " * caret_at + "^" * width])


def check_visits(wanted: list[str], record: CallRecord) -> Failure | None:
    position = 0
    for index, state in enumerate(wanted):
        try:
            position = record.path.index(state, position) + 1
        except ValueError:
            after = f" after '{wanted[index - 1]}'" if index else ""
            return Failure("", f"never entered '{state}'{after}", [f"path: {_path(record.path)}"])
    return None


def check_not_visited(wanted: list[str], record: CallRecord) -> Failure | None:
    entered = [state for state in wanted if state in record.path]
    if not entered:
        return None
    return Failure("", f"entered '{entered[0]}', which this scenario says it must not",
                   [f"path: {_path(record.path)}"])


# -- outcome --------------------------------------------------------------------------------------

def check_result(wanted: str | bool, record: CallRecord) -> Failure | None:
    actual = record.result
    if wanted is False:
        return None if actual is None else Failure("", f"expected no result, got '{actual}'")
    if actual == wanted:
        return None
    got = "no result (no `result` statement ran)" if actual is None else f"'{actual}'"
    return Failure("", f"expected result '{wanted}', got {got}", [f"path: {_path(record.path)}"])


def check_ended_by(wanted: str, record: CallRecord) -> Failure | None:
    if record.ended_by == wanted:
        return None
    because = f" ({record.error})" if record.error else ""
    return Failure("", f"expected the call to end by {wanted}, it ended by {record.ended_by}{because}",
                   [f"path: {_path(record.path)}"])


def check_error(wanted: str, record: CallRecord) -> Failure | None:
    if record.error is not None and wanted in record.error:
        return None
    got = f"the error {record.error!r}" if record.error else f"no error (it ended by {record.ended_by})"
    return Failure("", f"expected an error containing {wanted!r}, got {got}")


def check_optout(wanted: bool, record: CallRecord) -> Failure | None:
    if record.optout == wanted:
        return None
    return Failure("", "expected the caller to opt out, no `optout` ran" if wanted
                   else "the caller was opted out (`optout` ran), the scenario says not")


def check_variables(wanted: dict, record: CallRecord) -> Failure | None:
    for name, value in wanted.items():
        actual = record.variables.get(name, "")
        # The language's own equality: a digit string equals the number it spells.
        if not V.compare("==", value, actual):
            return Failure("", f"variable '{name}': expected {value!r}, got {actual!r}")
    return None


# -- prompts --------------------------------------------------------------------------------------

def _shown(prompt: tuple[str, str] | dict) -> str:
    if isinstance(prompt, dict):
        prompt = _actual(prompt)
    kind, value = prompt
    return f'"{value}"' if kind == "tts" else f"{kind} {value}"


def _actual(prompt: dict) -> tuple[str, str]:
    kind = prompt["kind"]
    return (kind, prompt["text"] if kind == "tts" else prompt["file"] if kind == "file" else prompt["name"])


def _heard_list(record: CallRecord, mark: int | None = None) -> list[str]:
    lines = ["heard:"] if record.prompts else ["heard: nothing"]
    for number, prompt in enumerate(record.prompts[:MAX_LISTED], start=1):
        pointer = ">" if mark == number else " "
        lines.append(f" {pointer}{number:>3}. {_shown(prompt)}")
    if len(record.prompts) > MAX_LISTED:
        lines.append(f"       ... {len(record.prompts) - MAX_LISTED} more")
    return lines


def check_prompts(wanted: list[tuple[str, str]], record: CallRecord) -> Failure | None:
    actual = [_actual(p) for p in record.prompts]
    if actual == wanted:
        return None
    step = next((i for i, (a, b) in enumerate(zip(wanted, actual)) if a != b), None)
    if step is not None:
        message = f"prompt {step + 1} differs: expected {_shown(wanted[step])}, got {_shown(actual[step])}"
        return Failure("", message, _heard_list(record, step + 1))
    if len(actual) < len(wanted):
        return Failure("", f"expected {_count(len(wanted), 'prompt')}, heard {len(actual)}; missing "
                           f"{_shown(wanted[len(actual)])}", _heard_list(record))
    return Failure("", f"expected {_count(len(wanted), 'prompt')}, heard {len(actual)}; the first extra is "
                       f"{_shown(actual[len(wanted)])}", _heard_list(record, len(wanted) + 1))


def _find(wanted: tuple[str, str], actual: list[tuple[str, str]], start: tuple[int, int]) -> tuple[int, int] | None:
    """Where ``wanted`` is next heard at or after ``start`` (prompt index, offset in its text): a TTS
    expectation is a part of a spoken text, a file or sound must be that one. Returns the point after it."""
    index, offset = start
    for position in range(index, len(actual)):
        kind, value = actual[position]
        skip = offset if position == index else 0
        if kind != wanted[0] or (kind != "tts" and (skip or value != wanted[1])):
            continue
        if kind != "tts":
            return position + 1, 0
        found = value.find(wanted[1], skip)
        if found >= 0:
            return position, found + len(wanted[1])
    return None


def check_heard(wanted: list[tuple[str, str]], record: CallRecord) -> Failure | None:
    """In order, as a stream: the next part is looked for after the previous one, in the same prompt
    or a later one (so the same text expected twice must be heard twice)."""
    actual = [_actual(p) for p in record.prompts]
    point = (0, 0)
    for item in wanted:
        found = _find(item, actual, point)
        if found is None:
            where = f" after prompt {point[0] + 1}" if point != (0, 0) else ""
            if point != (0, 0) and _find(item, actual, (0, 0)) is not None:
                where += " (it was heard earlier: check the order, or how many times it is expected)"
            return Failure("", f"never heard {_shown(item)}{where}", _heard_list(record))
        point = found
    return None


def check_not_heard(wanted: list[str], record: CallRecord) -> Failure | None:
    for text in wanted:
        for number, prompt in enumerate(record.prompts, start=1):
            if prompt["kind"] == "tts" and text in prompt["text"]:
                return Failure("", f"heard \"{text}\" (prompt {number}), which this scenario says it must not",
                               _heard_list(record, number))
    return None


# -- inputs and transfers -----------------------------------------------------------------------------

def _fields(entry: dict) -> str:
    return "{" + ", ".join(f"{k} = {v!r}" for k, v in entry.items()) + "}"


def _listed(items: list[dict], title: str) -> list[str]:
    lines = [f"{title}:"] if items else [f"{title}: none"]
    lines += [f"  {number:>3}. {_fields(item)}" for number, item in enumerate(items[:MAX_LISTED], start=1)]
    if len(items) > MAX_LISTED:
        lines.append(f"       ... {len(items) - MAX_LISTED} more")
    return lines


def _compare_entries(wanted: list[dict], actual: list[dict], what: str) -> Failure | None:
    for number, (want, got) in enumerate(zip(wanted, actual), start=1):
        if any(got.get(name) != value for name, value in want.items()):
            return Failure("", f"{what} {number} differs: expected {_fields(want)}, got {_fields(got)}",
                           _listed(actual, f"actual {what}s"))
    if len(wanted) != len(actual):
        return Failure("", f"expected {_count(len(wanted), what)}, got {len(actual)}",
                       _listed(actual, f"actual {what}s"))
    return None


def check_inputs(wanted: list[dict], record: CallRecord) -> Failure | None:
    return _compare_entries(wanted, record.inputs, "input")


def check_transfers(wanted: list[dict], record: CallRecord) -> Failure | None:
    return _compare_entries(wanted, record.transfers, "transfer")


def check_requests(wanted: list[dict], record: CallRecord) -> Failure | None:
    return _compare_entries(wanted, record.requests, "request")


def check_notifications(wanted: list[dict], record: CallRecord) -> Failure | None:
    return _compare_entries(wanted, record.notifications, "notification")


CHECKS = {
    "expect_path": check_path,
    "expect_visits": check_visits,
    "expect_not_visited": check_not_visited,
    "expect_result": check_result,
    "expect_ended_by": check_ended_by,
    "expect_prompts": check_prompts,
    "expect_heard": check_heard,
    "expect_not_heard": check_not_heard,
    "expect_inputs": check_inputs,
    "expect_variables": check_variables,
    "expect_transfers": check_transfers,
    "expect_error": check_error,
    "expect_optout": check_optout,
    "expect_requests": check_requests,
    "expect_notifications": check_notifications,
}
