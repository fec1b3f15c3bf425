"""Scenario results as a test runner shows them (a line per scenario, differences under failures,
a summary line), or as one JSON object."""

from __future__ import annotations

import codecs

from autocall.scenarios.runner import ERROR, FAILED, PASSED, SKIPPED, ScriptOutcome, Summary

_MARKS_UTF8 = {PASSED: "✓", FAILED: "✗", ERROR: "✗", SKIPPED: "-"}
_MARKS_ASCII = {PASSED: "ok", FAILED: "FAIL", ERROR: "ERROR", SKIPPED: "skip"}
_COLOURS = {PASSED: "\033[32m", FAILED: "\033[31m", ERROR: "\033[31m", SKIPPED: "\033[33m"}
_BOLD, _DIM, _RESET = "\033[1m", "\033[2m", "\033[0m"


def can_write_utf8(stream) -> bool:
    encoding = getattr(stream, "encoding", None)
    try:
        return bool(encoding) and codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


class TextReport:
    """Writes results to ``stream``; ✓/✗ on a UTF-8 stream, ok/FAIL otherwise; colour when asked."""

    def __init__(self, stream, color: bool = False, unicode: bool | None = None) -> None:
        self.stream = stream
        self.color = color
        self.unicode = can_write_utf8(stream) if unicode is None else unicode
        self.marks = _MARKS_UTF8 if self.unicode else _MARKS_ASCII
        self.width = max(len(m) for m in self.marks.values())
        # On a stream that cannot take UTF-8, characters it cannot encode become "?" rather than a crash.
        self.encoding = None if self.unicode else getattr(stream, "encoding", None)

    def _paint(self, text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if self.color else text

    def _line(self, text: str = "") -> None:
        if self.encoding:
            text = text.encode(self.encoding, "replace").decode(self.encoding)
        self.stream.write(text + "\n")

    def script(self, outcome: ScriptOutcome) -> None:
        header = outcome.script
        if outcome.outcomes or outcome.deselected:
            shown = len(outcome.outcomes)
            header += f"  ({shown} scenario{'s' if shown != 1 else ''}"
            header += f", {outcome.deselected} deselected)" if outcome.deselected else ")"
        self._line(self._paint(header, _BOLD))
        for problem in outcome.problems:
            self._line(f"  {self._paint(self.marks[ERROR].ljust(self.width), _COLOURS[ERROR])} {problem}")
        for result in outcome.outcomes:
            mark = self._paint(self.marks[result.status].ljust(self.width), _COLOURS[result.status])
            name = result.scenario.name
            if result.status == SKIPPED:
                reason = result.scenario.skip
                name += self._paint(f"  (skipped{': ' + reason if reason else ''})", _DIM)
            elif result.status == ERROR:
                name += "  (invalid scenario)"
            self._line(f"  {mark} {name}")
            indent = " " * (self.width + 4)
            for failure in result.failures:
                self._line(f"{indent}{failure.message}")
                for detail in failure.details:
                    self._line(f"{indent}  {detail}")
            if result.status == FAILED and result.rerun:
                self._line(self._paint(f"{indent}replay: {result.rerun}", _DIM))
        self.stream.flush()

    def summary(self, summary: Summary, filters: list[str]) -> None:
        parts = [f"{summary.passed} passed"]
        for count, word in ((summary.failed, "failed"), (summary.errors, "error" if summary.errors == 1 else "errors"),
                            (summary.skipped, "skipped"), (summary.deselected, "deselected")):
            if count:
                parts.append(f"{count} {word}")
        text = f"{', '.join(parts)} in {summary.seconds:.2f}s"
        colour = _COLOURS[PASSED] if summary.ok else _COLOURS[FAILED]
        self._line()
        if not summary.passed + summary.failed + summary.skipped and not summary.errors and filters:
            self._line(f"no scenario matches -k {' -k '.join(filters)}; the names are listed by "
                       "'autocall test' without -k")
        self._line(self._paint(text, _BOLD + colour))
        self.stream.flush()


def json_report(outcomes: list[ScriptOutcome], summary: Summary) -> dict:
    """One JSON object: every script, every scenario with its failures and the call it ran, the totals."""
    scripts = []
    for outcome in outcomes:
        scripts.append({
            "script": outcome.script,
            "scenario_file": outcome.scenario_file,
            "ok": outcome.ok,
            "problems": list(outcome.problems),
            "diagnostics": list(outcome.diagnostics),
            "deselected": outcome.deselected,
            "scenarios": [{
                "name": result.scenario.name,
                "line": result.scenario.line,
                "status": result.status,
                "skip_reason": result.scenario.skip,
                "failures": [f.to_json() for f in result.failures],
                "replay": result.rerun or None,
                "call": result.record.simulate_json() if result.record is not None else None,
            } for result in outcome.outcomes],
        })
    return {"scripts": scripts, "summary": summary.to_json(), "ok": summary.ok}
