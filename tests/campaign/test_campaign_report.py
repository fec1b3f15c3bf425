"""``autocall report --json`` over a simulated campaign: contacts, attempts, outcomes, rates, results and talk
time per campaign, exactly, and ``--campaign`` narrowing the calls to that campaign's."""

from __future__ import annotations

import json

from autocall.campaign.scheduler import Scheduler
from autocall.campaign.setup import settings_from
from autocall.cli.main import main
from campaign_helpers import contact_rows, new_campaign, sim_pbx, write_csv

# sim outcome and keys per contact: 4 people answer (3 confirm, 1 cancels), 2 are busy twice, 1 never
# answers, 1 answering machine, 1 failed line; two attempts each at most.
OUTCOMES = ["answer", "answer", "answer", "answer", "busy", "busy", "noanswer", "machine", "failed"]
KEYS = ["1", "1", "1", "2", "", "", "", "", ""]


def report(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["report", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_campaign_figures(db, database_url, program, tmp_path, clock, run_clock, monkeypatch, capsys):
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(OUTCOMES, KEYS))
    campaign_id, _, options = new_campaign(db, program, csv_path, clock.seconds(), name="spring", attempts=2,
                                           retry_after="10m", amd=True)
    pbx = sim_pbx(program, clock, db, campaign="spring", amd=True, instant=True)
    run_clock(clock, Scheduler(db, campaign_id, pbx, clock, settings_from(options)).run())
    monkeypatch.setenv("AUTOCALL_DATABASE", database_url)
    period = ["--since", _iso(clock.seconds() - 86_400), "--until", _iso(clock.seconds() + 60)]
    figures = report(capsys, *period)
    spring = figures["campaigns"]["spring"]
    assert spring["script"] == "reminder"
    assert (spring["contacts"], spring["contacts_tried"], spring["attempts"]) == (9, 9, 13)
    assert spring["outcomes"] == {"busy": 4, "answered": 4, "failed": 2, "noanswer": 2, "machine": 1}
    assert spring["answer_rate"] == round(4 / 13, 4) and spring["machine_rate"] == round(1 / 13, 4)
    assert spring["attempts_per_contact"] == round(13 / 9, 2)
    assert spring["results"] == {"confirmed": 3, "cancelled": 1, "voicemail": 1}
    talk = [row[0] for row in db.execute("SELECT duration FROM calls")]
    assert len(talk) == 5 and spring["average_talk_s"] == round(sum(talk) / 5, 1)
    assert sum(sum(counts.values()) for counts in spring["over_time"].values()) == 13
    assert figures["calls"] == 5 and figures["results"] == {"confirmed": 3, "cancelled": 1, "voicemail": 1}

    only = report(capsys, *period, "--campaign", "spring")
    assert only["calls"] == 5 and list(only["campaigns"]) == ["spring"]
    assert only["states"]["main"]["exits"] == {"confirmed": 3, "cancelled": 1, "noreply": 1}

    page = tmp_path / "spring.html"
    assert main(["report", *period, "--campaign", "spring", "--html", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert "Campaign spring" in html and 'alt="campaign outcomes chart"' in html
    assert 'alt="flow graph of reminder"' in html            # the script the campaign ran, found through it


def _iso(moment: float) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="seconds")
