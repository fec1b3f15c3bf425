"""The progress display: plain lines off a terminal, the rich panel on one, and the demo campaign."""

from __future__ import annotations

import io

from autocall.campaign.demo import run_demo_campaign
from autocall.campaign.progress import LiveProgress, PlainProgress, format_eta, progress_for
from autocall.campaign.scheduler import Scheduler
from campaign_helpers import contact_rows, new_campaign, write_csv, sim_pbx
from autocall.campaign.setup import settings_from
from autocall.store import campaigns as store


def _run(db, program, tmp_path, clock, run_clock, observer, **options):
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(["answer", "busy"]))
    campaign_id, _, merged = new_campaign(db, program, csv_path, clock.seconds(), attempts=2, **options)
    run_clock(clock, Scheduler(db, campaign_id, sim_pbx(program, clock, db), clock, settings_from(merged),
                               observer).run())


def test_off_a_terminal_each_attempt_is_one_plain_line(db, program, tmp_path, clock, run_clock):
    stream = io.StringIO()
    observer = progress_for("june", stream)
    assert isinstance(observer, PlainProgress)
    _run(db, program, tmp_path, clock, run_clock, observer)
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("june: 2 contacts, 0 done, 2 to call")
    assert any("+39065550001 attempt 1: busy, retry at" in line for line in lines)
    assert any("+39065550000 attempt 1: answered, result confirmed, keys 1," in line for line in lines)
    assert lines[-1].endswith("+39065550001 attempt 2: busy [2/2 done]")


def test_on_a_terminal_the_panel_shows_flight_done_answered_outcomes_and_eta(db, program, tmp_path, clock,
                                                                            run_clock):
    stream = io.StringIO()
    observer = progress_for("june", stream, tty=True)
    assert isinstance(observer, LiveProgress)
    with observer:
        _run(db, program, tmp_path, clock, run_clock, observer)
    shown = stream.getvalue()
    for label in ("in flight", "done", "2/2 (100%)", "answered", "answered 1, busy 1", "ETA"):
        assert label in shown
    assert format_eta(3725) == "1h02m" and format_eta(75) == "1m15s" and format_eta(None) == "-"


def test_the_demo_campaign_calls_20_contacts_and_ends_with_the_status_table(tmp_path):
    out = io.StringIO()
    summary = run_demo_campaign(tmp_path, out)
    assert summary["contacts"] == 20 and summary["by_status"]["done"] == 20
    assert summary["by_outcome"]["answered"] >= 10 and summary["by_outcome"].get("machine") == 2
    assert "campaign demo-reminders: done" in out.getvalue()


def test_the_paused_panel_shows_the_calls_in_flight_as_they_are_now(db, program, tmp_path, clock):
    """Paused with 2 calls in flight, then 1, then 0: the panel follows (it used to freeze the first number)."""
    campaign_id, _, merged = new_campaign(db, program, write_csv(tmp_path / "c.csv", contact_rows(["answer"] * 3)),
                                          clock.seconds(), concurrency=2)
    observer = PlainProgress("june", io.StringIO())
    scheduler = Scheduler(db, campaign_id, sim_pbx(program, clock, db), clock, settings_from(merged), observer)
    scheduler.run()
    assert scheduler.in_flight == 2
    store.set_campaign_state(db, campaign_id, store.CAMPAIGN_PAUSED, clock.seconds())
    clock.advance(1)                                        # the poll sees the pause
    assert observer.state_text() == "paused: 2 call(s) in flight finish"
    scheduler.in_flight = 1
    assert observer.state_text() == "paused: 1 call(s) in flight finish"


def test_the_demo_does_not_import_the_cli():
    """Dependencies point inward: the campaign package (the demo included) never reaches for the CLI."""
    import subprocess
    import sys
    code = ("import io, sys, tempfile, autocall.campaign.demo as demo; "
            "demo.run_demo_campaign(tempfile.mkdtemp(), io.StringIO()); "
            "sys.exit(1 if any(name.startswith('autocall.cli') for name in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
