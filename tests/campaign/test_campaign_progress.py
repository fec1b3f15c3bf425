"""The progress display: plain lines off a terminal, the rich panel on one, and the demo campaign."""

from __future__ import annotations

import io

from autocall.campaign.demo import run_demo_campaign
from autocall.campaign.progress import LiveProgress, PlainProgress, format_eta, progress_for
from autocall.campaign.scheduler import Scheduler
from campaign_helpers import contact_rows, new_campaign, write_csv, sim_pbx
from autocall.campaign.setup import settings_from


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
