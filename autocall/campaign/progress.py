"""What a campaign shows: a live panel on a terminal (rich), plain log lines otherwise, and the status table.

Both running displays hear the scheduler as an ``Observer``. The panel shows calls in flight,
contacts done out of the total, answered, the outcomes so far, the state
(running, paused, waiting for the window...) and an ETA from this run's pace.
The plain form writes one line per attempt and per change of state, for log
files and pipes.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import TextIO

from autocall.campaign.scheduler import DialRequest, DialResult, Observer, Scheduler
from autocall.store import campaigns as store

WAITING = {"window": "outside the calling window", "rate": "rate limit", "retry": "waiting for retries",
           "pbx": "waiting for the PBX connection"}


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class ProgressCounts(Observer):
    """The numbers both displays show, kept up to date from the scheduler's events.

    Used as ``with progress:`` around the run; only the live panel has something to start and stop.
    """

    def __init__(self, name: str, monotonic=time.monotonic) -> None:
        self.name = name
        self.monotonic = monotonic
        self.scheduler: Scheduler | None = None
        self.total = self.done = self.done_before = self.answered = 0
        self.outcomes: Counter = Counter()
        self.state = "running"
        self.detail = ""
        self.begun = monotonic()

    def __enter__(self) -> "ProgressCounts":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def started(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        counts = scheduler.summary()
        self.total = counts["contacts"]
        self.done = self.done_before = counts["by_status"]["done"]
        self.outcomes.update(counts["by_outcome"])
        self.answered = self.outcomes["answered"] + self.outcomes["machine"]
        self.begun = self.monotonic()

    @property
    def in_flight(self) -> int:
        return self.scheduler.in_flight if self.scheduler else 0

    def eta_seconds(self) -> float | None:
        finished = self.done - self.done_before
        elapsed = self.monotonic() - self.begun
        if finished <= 0 or elapsed <= 0:
            return None
        return (self.total - self.done) / (finished / elapsed)

    def attempt_ended(self, request: DialRequest, result: DialResult, final: bool,
                      next_try_at: float | None) -> None:
        if final:
            self.done += 1
            self.outcomes[result.outcome] += 1
            self.answered += result.outcome in ("answered", "machine")

    def contact_skipped(self, number: str, outcome: str) -> None:
        self.done += 1
        self.outcomes[outcome] += 1

    def state_changed(self, state: str, detail: str = "") -> None:
        if state == "waiting":
            self.state, self.detail = ("running", "") if not detail else ("waiting", WAITING.get(detail, detail))
        else:
            self.state, self.detail = state, detail

    def state_text(self) -> str:
        """The state as shown; paused and stopping show the calls in flight as they are now."""
        if self.state in ("paused", "stopping"):
            return f"{self.state}: {self.in_flight} call(s) in flight finish"
        return self.state + (f": {self.detail}" if self.detail else "")

    def outcome_text(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())) or "-"


class PlainProgress(ProgressCounts):
    """One line per attempt and per change of state (``HH:MM:SS campaign: ...``)."""

    def __init__(self, name: str, stream: TextIO, **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.stream = stream

    def _line(self, text: str) -> None:
        now = self.scheduler.clock.seconds() if self.scheduler else time.time()
        self.stream.write(f"{datetime.fromtimestamp(now):%H:%M:%S} {self.name}: {text}\n")
        self.stream.flush()

    def started(self, scheduler: Scheduler) -> None:
        super().started(scheduler)
        settled = scheduler.recovered
        if settled.get("answered") or settled.get("unknown"):
            self._line(f"settled what the last run left open: {settled['answered']} answered, "
                       f"{settled['unknown']} unknown (not redialled)")
        self._line(f"{self.total} contacts, {self.done} done, {self.total - self.done} to call")

    def attempt_ended(self, request: DialRequest, result: DialResult, final: bool,
                      next_try_at: float | None) -> None:
        super().attempt_ended(request, result, final, next_try_at)
        text = f"{request.number} attempt {request.attempt_number}: {result.outcome}"
        call = result.call or ({"result": result.record.result, "keys": result.record.keys,
                                "duration": result.record.duration} if result.record else None)
        if call is not None:
            text += f", result {call['result'] or '-'}, keys {call['keys'] or '-'}, {call['duration']:.0f}s"
        if result.not_dialled:
            text += " (not dialled, will try again)"
        elif not final and next_try_at is not None:
            text += f", retry at {datetime.fromtimestamp(next_try_at):%H:%M:%S}"
        self._line(f"{text} [{self.done}/{self.total} done]")

    def contact_skipped(self, number: str, outcome: str) -> None:
        super().contact_skipped(number, outcome)
        self._line(f"{number}: on the do-not-call list, not called [{self.done}/{self.total} done]")

    def state_changed(self, state: str, detail: str = "") -> None:
        before = (self.state, self.detail)
        super().state_changed(state, detail)
        quiet = self.state == "waiting" and (detail == "rate" or self.in_flight)   # only when truly idle
        if (self.state, self.detail) != before and not quiet:
            self._line(self.detail if self.state == "waiting" else self.state_text())


class LiveProgress(ProgressCounts):
    """A rich live panel, redrawn four times a second; ``with LiveProgress(...):`` around the run."""

    def __init__(self, name: str, stream: TextIO, **kwargs) -> None:
        super().__init__(name, **kwargs)
        from rich.console import Console
        from rich.live import Live
        self.console = Console(file=stream)
        self.live = Live(console=self.console, get_renderable=self.render, refresh_per_second=4, transient=False)

    def __enter__(self) -> "LiveProgress":
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)

    def render(self):
        from rich.table import Table
        table = Table(title=f"campaign {self.name}", show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        share = f" ({self.done * 100 // self.total}%)" if self.total else ""
        table.add_row("state", self.state_text())
        table.add_row("in flight", str(self.in_flight))
        table.add_row("done", f"{self.done}/{self.total}{share}")
        table.add_row("answered", str(self.answered))
        table.add_row("outcomes", self.outcome_text())
        table.add_row("ETA", format_eta(self.eta_seconds()) if self.done < self.total else "done")
        return table


def progress_for(name: str, stream: TextIO, tty: bool | None = None) -> ProgressCounts:
    """The live panel on a terminal, plain lines otherwise."""
    tty = stream.isatty() if tty is None else tty
    return LiveProgress(name, stream) if tty else PlainProgress(name, stream)


def write_status(conn, campaign: dict, stream: TextIO) -> dict:
    """The ``campaign status`` table (also the end of ``campaign run`` and the demo); returns the counts."""
    counts = store.status_counts(conn, campaign["id"])
    stream.write(f"campaign {campaign['name']}: {campaign['shown_state']} (script {campaign['script']}, "
                 f"{counts['contacts']} contacts, {counts['attempts']} attempts, "
                 f"{counts['rejected']} rows skipped at import)\n")
    stream.write("by state:\n")
    for state, number in counts["by_status"].items():
        waits = []
        if state == "pending" and counts["waiting_retry"]:
            waits.append(f"{counts['waiting_retry']} waiting for a retry")
        if state == "pending" and counts["waiting_window"]:
            waits.append(f"{counts['waiting_window']} waiting for their calling window")
        extra = f"  ({'; '.join(waits)})" if waits else ""
        stream.write(f"  {state:<10} {number:>7}{extra}\n")
    stream.write("by outcome:\n")
    if not counts["by_outcome"]:
        stream.write("  (none yet)\n")
    for outcome, number in sorted(counts["by_outcome"].items(), key=lambda item: (-item[1], item[0])):
        stream.write(f"  {outcome:<10} {number:>7}\n")
    if counts["by_result"]:
        stream.write("by result (the script's `result`):\n")
        for result, number in counts["by_result"].items():
            stream.write(f"  {result:<14} {number:>3}\n")
    return counts
