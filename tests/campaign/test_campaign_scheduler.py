"""The scheduler and the simulated PBX, case by case on ``task.Clock`` (the properties are in *_properties.py)."""

from __future__ import annotations

import pytest

from datetime import datetime, timezone

import pytest

from twisted.internet import defer

from autocall.campaign.scheduler import REFUSED_BACKOFF_S, CampaignFailed, DialResult, Scheduler
from autocall.campaign.setup import parse_retry_after, settings_from
from autocall.store import campaigns as store
from autocall.store.calls import calls_for_attempt, is_dnc
from campaign_helpers import contact_rows, contacts, new_campaign, write_csv, sim_pbx
from campaign_helpers import drive as drive_clock


def _campaign(db, program, tmp_path, clock, outcomes, keys=None, **options):
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(outcomes, keys))
    campaign_id, _, merged = new_campaign(db, program, csv_path, clock.seconds(), **options)
    return campaign_id, settings_from(merged)


def test_sim_calls_take_ring_and_talk_time_so_concurrency_is_visible(db, program, tmp_path, clock, run_clock):
    campaign_id, settings = _campaign(db, program, tmp_path, clock, ["answer"] * 4, concurrency=2)
    scheduler = Scheduler(db, campaign_id, sim_pbx(program, clock, db), clock, settings)
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
    pbx = sim_pbx(program, clock, db, campaign="t", amd=True, caller_id="Acme <5551234>")
    run_clock(clock, Scheduler(db, campaign_id, pbx, clock, settings).run())
    machine, human = contacts(db, campaign_id)
    assert (machine["outcome"], machine["result"]) == ("machine", "voicemail")
    assert (human["outcome"], human["result"]) == ("answered", "confirmed")
    record = calls_for_attempt(db, 2)[0]
    assert (record["caller"], record["called"], record["origin"]) == ("+39065550001", "5551234", "campaign")
    assert "Hello N1. Your appointment is on monday" in record["prompts"][0]["text"]


def test_optout_in_a_call_puts_the_number_on_the_dnc_list_at_once(db, program, tmp_path, clock, run_clock):
    campaign_id, settings = _campaign(db, program, tmp_path, clock, ["answer"], keys=["9"])
    pbx = sim_pbx(program, clock, db)
    scheduler = Scheduler(db, campaign_id, pbx, clock, settings)
    done = scheduler.run()
    clock.advance(4)                         # answered: the dialogue has run, the call is still talking
    assert is_dnc(db, "+39065550000") and scheduler.in_flight == 1
    run_clock(clock, done)


@pytest.mark.one_engine
def test_retries_wait_their_per_outcome_delay(db, program, tmp_path, clock, run_clock):
    campaign_id, settings = _campaign(db, program, tmp_path, clock, ["busy", "noanswer"], attempts=2,
                                      retry_after="busy=5m,noanswer=30m")
    pbx = sim_pbx(program, clock, db, instant=True)
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
    run_clock(clock, Scheduler(db, campaign_id, sim_pbx(program, clock, db, instant=True), clock, settings).run())
    started = db.execute("SELECT started_at FROM attempts").fetchone()[0]
    assert datetime.fromtimestamp(started, timezone.utc).isoformat() == "2026-05-29T07:00:00+00:00"


def test_the_rate_counts_the_last_dial_of_the_previous_run(db, program, tmp_path, clock, run_clock):
    campaign_id, settings = _campaign(db, program, tmp_path, clock, ["answer"] * 2, rate="1/m")
    store.begin_attempts(db, campaign_id, store.due_contacts(db, campaign_id, clock.seconds(), 1), clock.seconds())
    store.recover_open_attempts(db, campaign_id, clock.seconds())
    clock.advance(10)
    run_clock(clock, Scheduler(db, campaign_id, sim_pbx(program, clock, db, instant=True), clock, settings).run())
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
    assert backend.dials == 1 and (row["attempts"], row["status"]) == (0, "pending")    # given back, not counted
    clock.advance(REFUSED_BACKOFF_S)                      # tried again after the back-off
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
    (attempt_id, _, token), = store.begin_attempts(
        db, campaign_id, store.due_contacts(db, campaign_id, clock.seconds(), 1), clock.seconds())
    assert store.attempt_context(db, attempt_id) == {
        "campaign": "t", "script": "reminder", "params": {"name": "N0", "date": "monday"},
        "number": "+39065550000", "attempt_number": 1, "attempt_id": attempt_id,
        "caller_id": "Acme <5551234>", "amd": True}
    assert store.attempt_context(db, 999) is None and store.attempt_context(db, "x; DROP") is None
    # The token: the id and 128 bits of HMAC over the id and the number; good once.
    assert token.startswith(f"{attempt_id}.") and len(token.partition(".")[2]) == 32
    for forged in (str(attempt_id), f"{attempt_id}.{'0' * 32}", f"{attempt_id + 1}.{token.partition('.')[2]}", ""):
        with pytest.raises(store.AttemptRefused):
            store.claim_attempt(db, forged, clock.seconds())
    assert store.claim_attempt(db, f" {token} ", clock.seconds())["attempt_id"] == attempt_id
    with pytest.raises(store.AttemptRefused, match="replayed"):
        store.claim_attempt(db, token, clock.seconds())


def test_the_window_applies_in_each_callees_own_time_zone(db, program, tmp_path):
    """09:30 in Rome is 03:30 in New York: the Rome contact is called now, the New York one at its 09:00,
    and meanwhile ``status`` counts it as waiting for its window."""
    from twisted.internet.task import Clock
    clock = Clock()
    clock.advance(datetime(2026, 5, 28, 7, 30, tzinfo=timezone.utc).timestamp())
    rows = [["+39 06 1234567", "Rome", "monday", "answer", "1"], ["+1 212 555 0123", "NY", "monday", "answer", "1"],
            ["+39 06 7654321", "Rome but", "monday", "answer", "1", "America/New_York"]]
    csv_path = write_csv(tmp_path / "c.csv", rows, header=["number", "name", "date", "sim_outcome", "sim_keys",
                                                            "timezone"])
    campaign_id, _, options = new_campaign(db, program, csv_path, clock.seconds(), window="daily 09:00-10:00",
                                           timezone="Asia/Tokyo")      # the numbers decide: Tokyo is not used
    scheduler = Scheduler(db, campaign_id, sim_pbx(program, clock, db, instant=True), clock, settings_from(options))
    done = scheduler.run()
    counts = store.status_counts(db, campaign_id)
    assert counts["by_status"]["done"] == 1 and counts["waiting_window"] == 2
    summary = drive_clock(clock, done)
    assert summary["by_outcome"] == {"answered": 3}
    started = {row["number"]: row["started_at"] for row in db.execute("SELECT number, started_at FROM attempts")}
    new_york_9am = datetime(2026, 5, 28, 13, 0, tzinfo=timezone.utc).timestamp()
    assert started == {"+39061234567": datetime(2026, 5, 28, 7, 30, tzinfo=timezone.utc).timestamp(),
                       "+12125550123": new_york_9am, "+39067654321": new_york_9am}
