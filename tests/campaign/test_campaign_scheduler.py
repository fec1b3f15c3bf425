"""The scheduler and the simulated PBX, case by case on ``task.Clock`` (the properties are in *_properties.py)."""

from __future__ import annotations

import pytest

from datetime import datetime, timezone

from twisted.internet import defer

from autocall.campaign.pbx_sim import SimPbx
from autocall.campaign.scheduler import CampaignFailed, DialResult, Scheduler
from autocall.campaign.setup import parse_retry_after, settings_from
from autocall.store import campaigns as store
from autocall.store.calls import calls_for_attempt, is_dnc
from campaign_helpers import contact_rows, contacts, new_campaign, write_csv


def _campaign(db, program, tmp_path, clock, outcomes, keys=None, **options):
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(outcomes, keys))
    campaign_id, _, merged = new_campaign(db, program, csv_path, clock.seconds(), **options)
    return campaign_id, settings_from(merged)


def test_sim_calls_take_ring_and_talk_time_so_concurrency_is_visible(db, program, tmp_path, clock, run_clock):
    campaign_id, settings = _campaign(db, program, tmp_path, clock, ["answer"] * 4, concurrency=2)
    scheduler = Scheduler(db, campaign_id, SimPbx(program, clock, db), clock, settings)
    done = scheduler.run()
    assert scheduler.in_flight == 2
    clock.advance(3.9)
    assert scheduler.in_flight == 2 and scheduler.ended == 0        # still ringing (4 s)
    run_clock(clock, done)
    starts = [row[0] for row in db.execute("SELECT started_at FROM attempts ORDER BY id")]
    assert starts[:2] == [starts[0]] * 2 and starts[2] > starts[0] + 4


def test_the_script_sees_params_caller_called_attempt_and_amd(db, program, tmp_path, clock, run_clock):
    campaign_id, settings = _campaign(db, program, tmp_path, clock, ["machine", "answer"], keys=["", "1"],
                                      amd=True, caller_id="Acme <5551234>")
    pbx = SimPbx(program, clock, db, campaign="t", amd=True, caller_id="Acme <5551234>")
    run_clock(clock, Scheduler(db, campaign_id, pbx, clock, settings).run())
    machine, human = contacts(db, campaign_id)
    assert (machine["outcome"], machine["result"]) == ("machine", "voicemail")
    assert (human["outcome"], human["result"]) == ("answered", "confirmed")
    record = calls_for_attempt(db, 2)[0]
    assert (record["caller"], record["called"], record["origin"]) == ("+39065550001", "5551234", "campaign")
    assert "Hello N1. Your appointment is on monday" in record["prompts"][0]["text"]


def test_optout_in_a_call_puts_the_number_on_the_dnc_list_at_once(db, program, tmp_path, clock, run_clock):
    campaign_id, settings = _campaign(db, program, tmp_path, clock, ["answer"], keys=["9"])
    pbx = SimPbx(program, clock, db)
    scheduler = Scheduler(db, campaign_id, pbx, clock, settings)
    done = scheduler.run()
    clock.advance(4)                         # answered: the dialogue has run, the call is still talking
    assert is_dnc(db, "+39065550000") and scheduler.in_flight == 1
    run_clock(clock, done)


@pytest.mark.one_engine
def test_retries_wait_their_per_outcome_delay(db, program, tmp_path, clock, run_clock):
    campaign_id, settings = _campaign(db, program, tmp_path, clock, ["busy", "noanswer"], attempts=2,
                                      retry_after="busy=5m,noanswer=30m")
    pbx = SimPbx(program, clock, db, instant=True)
    run_clock(clock, Scheduler(db, campaign_id, pbx, clock, settings).run())
    start = clock.seconds()
    rows = db.execute("SELECT number, started_at FROM attempts ORDER BY id").fetchall()
    gaps = {number: [] for number, _ in rows}
    for number, started in rows:
        gaps[number].append(started)
    assert gaps["+39065550000"][1] - gaps["+39065550000"][0] == 300
    assert gaps["+39065550001"][1] - gaps["+39065550001"][0] == 1800
    assert start - rows[0][1] == 1800


def test_retry_after_without_outcome_sets_the_default_for_all():
    assert parse_retry_after("2m,busy=5m") == {"default": 120_000, "busy": 300_000}


@pytest.mark.one_engine
def test_nothing_is_dialled_before_the_window_opens(db, program, tmp_path, clock, run_clock):
    # 2026-05-28 is a Thursday; the clock starts at 20:26 UTC, after the window.
    campaign_id, settings = _campaign(db, program, tmp_path, clock, ["answer"], window="mon-fri 09:00-17:00",
                                      timezone="Europe/Rome")
    run_clock(clock, Scheduler(db, campaign_id, SimPbx(program, clock, db, instant=True), clock, settings).run())
    started = db.execute("SELECT started_at FROM attempts").fetchone()[0]
    assert datetime.fromtimestamp(started, timezone.utc).isoformat() == "2026-05-29T07:00:00+00:00"


def test_the_rate_counts_the_last_dial_of_the_previous_run(db, program, tmp_path, clock, run_clock):
    campaign_id, settings = _campaign(db, program, tmp_path, clock, ["answer"] * 2, rate="1/m")
    store.begin_attempts(db, campaign_id, store.due_contacts(db, campaign_id, clock.seconds(), 1), clock.seconds())
    store.recover_open_attempts(db, campaign_id, clock.seconds())
    clock.advance(10)
    run_clock(clock, Scheduler(db, campaign_id, SimPbx(program, clock, db, instant=True), clock, settings).run())
    first, second = (row[0] for row in db.execute("SELECT started_at FROM attempts ORDER BY id"))
    assert second - first == 60


class _Flaky:
    """A backend that is not connected at first, gives back one attempt not sent, then fails for good."""

    def __init__(self):
        self.ready_now = False
        self.waiter = defer.Deferred()
        self.dials = 0

    def ready(self):
        return self.ready_now

    def when_ready(self):
        return self.waiter

    def dial(self, request, on_answered):
        self.dials += 1
        if self.dials == 1:
            return defer.succeed(DialResult("failed", "not connected", not_dialled=True))
        return defer.succeed(DialResult("busy"))


def test_a_not_dialled_attempt_is_given_back_and_a_backend_failure_ends_the_run(db, program, tmp_path, clock):
    campaign_id, settings = _campaign(db, program, tmp_path, clock, ["answer"], attempts=1)
    backend = _Flaky()
    results = []
    scheduler = Scheduler(db, campaign_id, backend, clock, settings)
    scheduler.run().addBoth(results.append)
    assert backend.dials == 0 and scheduler.waiting_for == "pbx"
    backend.ready_now = True
    backend.waiter.callback(None)
    row = contacts(db, campaign_id)[0]
    assert backend.dials == 2 and (row["attempts"], row["outcome"], row["status"]) == (1, "busy", "done")
    assert results and isinstance(results[0], dict)

    backend2 = _Flaky()
    store.reopen_retryable(db, campaign_id, 2, ["busy"], clock.seconds())
    failing = Scheduler(db, campaign_id, backend2, clock, settings)
    failing.run().addBoth(results.append)
    backend2.waiter.errback(CampaignFailed("the login was refused"))
    assert results[-1].check(CampaignFailed) and "refused" in results[-1].getErrorMessage()


def test_attempt_context_gives_the_fastagi_server_what_the_call_needs(db, program, tmp_path, clock):
    campaign_id, _ = _campaign(db, program, tmp_path, clock, ["answer"], caller_id="Acme <5551234>", amd=True)
    (attempt_id, _), = store.begin_attempts(db, campaign_id, store.due_contacts(db, campaign_id, clock.seconds(), 1),
                                            clock.seconds())
    assert store.attempt_context(db, attempt_id) == {
        "campaign": "t", "script": "reminder", "params": {"name": "N0", "date": "monday"},
        "number": "+39065550000", "attempt_number": 1, "attempt_id": attempt_id,
        "caller_id": "Acme <5551234>", "amd": True}
    assert store.attempt_context(db, f" {attempt_id} ") is not None
    assert store.attempt_context(db, 999) is None and store.attempt_context(db, "x; DROP") is None
