"""attempt_ended, call_ended and campaign_finished are queued in the transactions of what they report."""

from __future__ import annotations

import json

from autocall.campaign.scheduler import Scheduler
from autocall.campaign.setup import settings_from
from autocall.outbox.events import EventWriter
from autocall.services_config import EventRoute
from autocall.store import outbox
from autocall.store.calls import call_by_id
from campaign_helpers import contact_rows, new_campaign, sim_pbx, write_csv

ROUTES = {name: EventRoute(name, "crm", f"/autocall/{name}") for name in
          ("call_ended", "attempt_ended", "campaign_finished")}


def test_a_campaign_queues_each_attempt_each_call_and_its_end(db, program, tmp_path, clock, run_clock):
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(["answer", "busy", "answer"], ["1", "", "2"]))
    campaign_id, _, options = new_campaign(db, program, csv_path, clock.seconds(), attempts=2, retry_after="1m")
    scheduler = Scheduler(db, campaign_id, sim_pbx(program, clock, db), clock, settings_from(options),
                          events=EventWriter(ROUTES))
    run_clock(clock, scheduler.run())
    rows = list(reversed(outbox.listing(db, limit=100)))
    kinds = [row["kind"] for row in rows]
    assert kinds.count("attempt_ended") == 4          # 2 answered + the busy contact's two attempts
    assert kinds.count("call_ended") == 2 and kinds[-1] == "campaign_finished" and kinds.count("campaign_finished") == 1
    attempts = [json.loads(row["body"]) for row in rows if row["kind"] == "attempt_ended"]
    answered = [a for a in attempts if a["outcome"] == "answered"]
    assert {a["columns"]["name"] for a in answered} == {"N0", "N2"}
    assert all(a["campaign"] == "t" and a["call_id"] and a["duration"] > 0 for a in answered)
    busy = [a for a in attempts if a["number"].endswith("0001")]
    assert [a["attempt"] for a in busy] == [1, 2] and {a["outcome"] for a in busy} == {"busy"}
    for row in rows:
        if row["kind"] == "call_ended":        # the call record as `autocall calls --json` prints it
            assert json.loads(row["body"]) == call_by_id(db, row["call_id"])
    # a call's call_ended goes before its attempt_ended (same ordering key, older row)
    for row in rows:
        if row["kind"] == "attempt_ended" and row["call_id"]:
            same = [r["kind"] for r in rows if r["ordering_key"] == row["ordering_key"]]
            assert same == ["call_ended", "attempt_ended"]
    finished = json.loads(rows[-1]["body"])
    assert finished["campaign"] == "t" and finished["by_outcome"] == {"answered": 2, "busy": 1}
    assert finished["attempts"] == 4 and finished["contacts"] == 3


def test_no_events_configured_queues_nothing(db, program, tmp_path, clock, run_clock):
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(["answer"]))
    campaign_id, _, options = new_campaign(db, program, csv_path, clock.seconds())
    scheduler = Scheduler(db, campaign_id, sim_pbx(program, clock, db), clock, settings_from(options),
                          events=EventWriter({}))
    run_clock(clock, scheduler.run())
    assert outbox.counts(db) == {"pending": 0, "delivered": 0, "failed": 0}


def test_campaign_run_on_the_simulated_pbx_delivers_its_events_at_the_end(tmp_path):
    import os
    import subprocess
    import sys

    from campaign_helpers import ROOT_DIR, SCRIPT
    from tests.fakes.http_service import HttpService

    receiver = HttpService().start()
    for name in ("calls", "attempts", "campaigns"):
        receiver.routes[f"/hooks/{name}"] = ("json", 200, {})
    try:
        (tmp_path / "autocall.toml").write_text(
            f'database = "{tmp_path / "autocall.db"}"\n[services.crm]\nurl = "{receiver.url}/hooks"\n'
            '[events]\ncall_ended = { service = "crm", path = "/calls" }\n'
            'attempt_ended = { service = "crm", path = "/attempts" }\n'
            'campaign_finished = { service = "crm", path = "/campaigns" }\n', encoding="utf-8")
        csv_path = write_csv(tmp_path / "june.csv", contact_rows(["answer", "noanswer"]))
        environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCALL_")}
        done = subprocess.run([sys.executable, "-m", "autocall", "campaign", "run", str(csv_path), "--script",
                               str(SCRIPT), "--sim-speed", "1000", "--attempts", "1", "--config",
                               str(tmp_path / "autocall.toml")], cwd=ROOT_DIR, env=environ, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "events: 4 delivered, 0 waiting" in done.stdout
        events = sorted(request["headers"]["X-AutoCall-Event"] for request in receiver.requests)
        assert events == ["attempt_ended", "attempt_ended", "call_ended", "campaign_finished"]
    finally:
        receiver.stop()
