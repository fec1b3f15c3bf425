"""Hypothesis over the scheduler on ``task.Clock``: the rules hold for any list, timing and settings.

A scripted backend gives each attempt an outcome and a duration (zero: the
outcome comes back synchronously, inside ``dial``), checks at every dial that
the attempt was committed (through a second connection) and that the number
is not on the do-not-call list, and records when each dial happened.
"""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import replace
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.internet.task import Clock

from autocall.campaign.scheduler import RETRYABLE, DialResult, Scheduler
from autocall.campaign.setup import settings_from
from autocall.store import campaigns as store
from autocall.store.calls import add_dnc, is_dnc
from autocall.store.db import connect
from campaign_helpers import contacts, drive, new_campaign, write_csv

OUTCOMES = ("answered", "machine", "optout", "busy", "noanswer", "congestion", "failed")
WINDOWS = (None, ("mon-fri 09:00-17:00", "Europe/Rome"), ("daily 10:00-10:30", "America/New_York"),
           ("sat-sun 22:00-02:00", "UTC"))
EPS = 1e-6


class ScriptedBackend:
    """Outcomes and durations per number, attempt by attempt; records every dial."""

    def __init__(self, clock: Clock, conn, db_path: str, plan: dict[str, list[tuple[str, float]]]) -> None:
        self.clock, self.conn, self.plan = clock, conn, plan
        self.observer = sqlite3.connect(db_path)       # sees committed rows only
        self.in_flight = 0
        self.max_in_flight = 0
        self.dials: list[tuple[float, str, int]] = []
        self.final_dials: dict[str, float] = {}          # number -> time of an answered/opted-out attempt

    def ready(self) -> bool:
        return True

    def when_ready(self):
        return defer.succeed(None)

    def dial(self, request, on_answered):
        now = self.clock.seconds()
        committed = self.observer.execute("SELECT state FROM attempts WHERE id = ?", (request.attempt_id,)).fetchone()
        assert committed == ("dialling",), "the attempt must be committed before it is dialled"
        assert not is_dnc(self.conn, request.number), "a number on the do-not-call list was dialled"
        assert request.number not in self.final_dials, "an answered or opted-out contact was dialled again"
        self.dials.append((now, request.number, request.attempt_number))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        steps = self.plan[request.number]
        outcome, duration = steps[min(request.attempt_number, len(steps)) - 1]

        def finish() -> DialResult:
            self.in_flight -= 1
            if outcome in ("answered", "machine", "optout"):
                on_answered(None, "")
                self.final_dials[request.number] = now
                if outcome == "optout":
                    add_dnc(self.conn, request.number, source="test")
                return DialResult("answered" if outcome == "optout" else outcome)
            return DialResult(outcome)

        if duration == 0:
            return defer.succeed(finish())
        done = defer.Deferred()
        self.clock.callLater(duration, lambda: done.callback(finish()))
        return done


step = st.tuples(st.sampled_from(OUTCOMES), st.sampled_from([0, 0.5, 3, 30, 95]))
scenario = st.fixed_dictionaries({
    "plans": st.lists(st.lists(step, min_size=1, max_size=4), min_size=1, max_size=18),
    "concurrency": st.integers(1, 5),
    "rate": st.sampled_from([None, "1/s", "3/s", "20/m", "2/h"]),
    "attempts": st.integers(1, 4),
    "retry_after": st.sampled_from(["0s", "10m", "busy=5m,noanswer=30s,failed=1h", "congestion=1s"]),
    "window": st.sampled_from(WINDOWS),
    "start_offset_h": st.integers(0, 24 * 7),
    "dnc_before": st.sets(st.integers(0, 17), max_size=3),
    "dnc_later": st.lists(st.tuples(st.integers(0, 17), st.integers(1, 7200)), max_size=3),
    "pauses": st.lists(st.tuples(st.integers(1, 7200), st.integers(1, 3600)), max_size=2),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario)
def test_scheduler_keeps_every_rule_for_any_list_timing_and_settings(program, data):
    with tempfile.TemporaryDirectory() as folder:
        _check_scenario(program, Path(folder), data)


def _check_scenario(program, folder: Path, data: dict) -> None:
    db_path = str(folder / "autocall.db")
    conn = connect(db_path)
    clock = Clock()
    clock.advance(1_780_000_000 + data["start_offset_h"] * 3600)
    numbers = [f"+3906555{index:04d}" for index in range(len(data["plans"]))]
    csv_path = write_csv(folder / "c.csv", [[n, "N", "monday", "", ""] for n in numbers])
    for index in data["dnc_before"]:
        if index < len(numbers):
            add_dnc(conn, numbers[index])
    window, zone = data["window"] or (None, None)
    campaign_id, report, options = new_campaign(
        conn, program, csv_path, clock.seconds(), concurrency=data["concurrency"], rate=data["rate"],
        attempts=data["attempts"], retry_after=data["retry_after"], window=window, timezone=zone)
    backend = ScriptedBackend(clock, conn, db_path, dict(zip(numbers, data["plans"])))
    # A pause is seen at the next poll; polling every virtual second would make days of clock steps.
    settings_ = replace(settings_from(options), poll_interval_s=300)
    scheduler = Scheduler(conn, campaign_id, backend, clock, settings_)

    dnc_times: dict[str, float] = {}
    for index, delay in data["dnc_later"]:
        if index < len(numbers):
            def add(number=numbers[index]):
                if add_dnc(conn, number, source="later"):
                    dnc_times[number] = clock.seconds()
            clock.callLater(delay, add)
    paused: list[tuple[float, float]] = []
    at = 0
    for gap, length in data["pauses"]:            # one after the other, never overlapping
        at += gap
        def pause(length=length):
            store.set_campaign_state(conn, campaign_id, store.CAMPAIGN_PAUSED, clock.seconds())
            begin = clock.seconds()
            def resume():        # as ``campaign resume``: only a paused campaign is resumed
                if store.campaign_state(conn, campaign_id) == store.CAMPAIGN_PAUSED:
                    store.set_campaign_state(conn, campaign_id, store.CAMPAIGN_RUNNING, clock.seconds())
                paused.append((begin, clock.seconds()))
            clock.callLater(length, resume)
        clock.callLater(at, pause)
        at += length + 1

    summary = drive(clock, scheduler.run(), max_steps=500_000)

    # Never more calls in flight than the limit.
    assert backend.max_in_flight <= data["concurrency"]
    times = [t for t, _, _ in backend.dials]
    # Never faster than the rate.
    if settings_.rate:
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(gap >= 1 / settings_.rate - EPS for gap in gaps), gaps
    # Never outside the window.
    if settings_.window is not None:       # in the callee's time zone, which its +39 number gives
        rome = replace(settings_.window, timezone="Europe/Rome")
        assert all(rome.contains(datetime.fromtimestamp(t, timezone.utc)) for t in times)
    # Never while paused (the pause is seen at the next poll, at most poll_interval_s later).
    for begin, end in paused:
        assert not [t for t in times if begin + settings_.poll_interval_s + EPS < t < end - EPS]
    # Never a number after it went on the do-not-call list (checked at each dial as well).
    for number, added in dnc_times.items():
        assert not [t for t, n, _ in backend.dials if n == number and t > added]
    # Every contact ends in a final state, with no more attempts than allowed.
    rows = contacts(conn, campaign_id)
    assert summary["by_status"] == {"pending": 0, "dialling": 0, "done": len(numbers)}
    dialled = {}
    for _, number, attempt in backend.dials:
        dialled[number] = dialled.get(number, 0) + 1
    for row in rows:
        assert row["status"] == "done"
        assert row["attempts"] == dialled.get(row["number"], 0) <= data["attempts"]
        if row["outcome"] in RETRYABLE:
            assert row["attempts"] == data["attempts"]
        if row["outcome"] == "dnc":
            assert row["number"] in dnc_times or numbers.index(row["number"]) in data["dnc_before"]
    open_attempts = conn.execute("SELECT COUNT(*) FROM attempts WHERE state != 'done'").fetchone()[0]
    assert open_attempts == 0
    assert store.campaign_state(conn, campaign_id) == store.CAMPAIGN_DONE
    backend.observer.close()
    conn.close()
