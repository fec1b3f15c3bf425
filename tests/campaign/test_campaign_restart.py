"""Resume after the dialer stops at any instant: no contact lost, none dialled twice because of the restart."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock

from autocall.campaign.scheduler import Scheduler
from autocall.campaign.setup import settings_from
from autocall.store import campaigns as store
from autocall.store.calls import save_call
from autocall.engine.record import CallRecord
from autocall.store.db import connect
from campaign_helpers import contact_rows, contacts, drive, new_campaign, write_csv, sim_pbx

SIM = ("answer", "busy", "noanswer", "machine", "failed", "congestion")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outcomes=st.lists(st.sampled_from(SIM), min_size=1, max_size=12), stop_after=st.integers(0, 60),
       concurrency=st.integers(1, 4))
def test_a_restart_after_any_number_of_steps_loses_no_contact_and_dials_none_twice(program, outcomes, stop_after,
                                                                                  concurrency):
    with tempfile.TemporaryDirectory() as folder:
        db_path = str(Path(folder) / "autocall.db")
        csv_path = write_csv(Path(folder) / "c.csv", contact_rows(outcomes))
        clock = Clock()
        clock.advance(1_780_000_000)
        conn = connect(db_path)
        campaign_id, _, options = new_campaign(conn, program, csv_path, clock.seconds(), concurrency=concurrency,
                                               retry_after="1m")
        first = Scheduler(conn, campaign_id, sim_pbx(program, clock, conn), clock, settings_from(options))
        first.run()
        for _ in range(stop_after):                 # the process dies here: nothing more of it runs
            calls = clock.getDelayedCalls()
            if not calls or first.done.called:
                break
            clock.advance(min(call.getTime() for call in calls) - clock.seconds())
        open_at_stop = {row[0] for row in conn.execute("SELECT contact_id FROM attempts WHERE state != 'done'")}
        conn.close()

        clock2 = Clock()
        clock2.advance(clock.seconds() + 5)
        conn2 = connect(db_path)
        second = Scheduler(conn2, campaign_id, sim_pbx(program, clock2, conn2), clock2, settings_from(options))
        summary = drive(clock2, second.run())
        assert summary["by_status"]["done"] == len(outcomes)
        for row in contacts(conn2, campaign_id):
            attempts = store.attempts_of_contact(conn2, row["id"])
            assert row["status"] == "done" and row["attempts"] == len(attempts) <= 3
            if row["outcome"] == "unknown":
                # Only an attempt left open by the stop becomes unknown, and it is the contact's last.
                assert row["id"] in open_at_stop and attempts[-1]["state"] == "unknown"
            answered = [a for a in attempts if a["outcome"] in ("answered", "machine")]
            assert len(answered) <= 1 and (not answered or answered[0] is attempts[-1])
        conn2.close()


def test_an_answered_attempt_left_open_is_settled_from_its_call_record(db, program, tmp_path, clock):
    """The FastAGI server's record for an attempt the dead dialer left open gives it its outcome and result."""
    campaign_id, _, _ = new_campaign(db, program, write_csv(tmp_path / "c.csv", contact_rows(["answer"] * 3)),
                                     clock.seconds())
    rows = store.due_contacts(db, campaign_id, clock.seconds(), 10)
    started = store.begin_attempts(db, campaign_id, rows, clock.seconds())
    store.mark_answered(db, started[1][0], clock.seconds(), "1795685579.7")
    record = CallRecord(call_id="agi-1", script="reminder", started_at=clock.seconds(), result="confirmed",
                        ended_at=clock.seconds() + 12)
    save_call(db, record, attempt_id=started[0][0], origin="agi")
    settled = store.recover_open_attempts(db, campaign_id, clock.seconds() + 60)
    assert settled == {"answered": 2, "unknown": 1, "late_records": 0}
    by_id = {row["id"]: row for row in contacts(db, campaign_id)}
    first, second, third = (by_id[row["id"]] for row in rows)
    assert (first["outcome"], first["result"], first["duration"]) == ("answered", "confirmed", 12)
    assert (second["outcome"], second["result"]) == ("answered", None)
    assert third["outcome"] == "unknown" and third["status"] == "done"


def test_resume_retry_unknown_puts_unknown_contacts_back_in_the_queue(db, program, tmp_path, clock):
    campaign_id, _, _ = new_campaign(db, program, write_csv(tmp_path / "c.csv", contact_rows(["answer"])),
                                     clock.seconds())
    store.begin_attempts(db, campaign_id, store.due_contacts(db, campaign_id, clock.seconds(), 10), clock.seconds())
    store.recover_open_attempts(db, campaign_id, clock.seconds())
    assert store.retry_unknown(db, campaign_id, 3, clock.seconds()) == 1
    assert contacts(db, campaign_id)[0]["status"] == "pending"
