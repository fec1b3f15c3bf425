"""The demo's sample CRM, and web statements in a campaign on the simulated PBX (real requests to the
configured services only; notify queued in the outbox)."""

from __future__ import annotations

import json
import urllib.request

import pytest
from twisted.internet.task import Clock

from autocall.campaign.pbx import CallSettings
from autocall.campaign.pbx_sim import SimLine, SimPbx
from autocall.campaign.scheduler import DialRequest
from autocall.demo_crm import SampleCrm
from autocall.services_config import ServiceConfig
from autocall.store import outbox
from autocall.store.db import connect

SCRIPT = """dialogue remind
service booking = "https://booking.example.invalid/api"
service other = "https://other.example.invalid"
start main

state main:
    fetch account from booking "/accounts/{caller}"
    send booking "/confirmations" with number = caller into booked
    fetch elsewhere from other "/x"
    notify booking "/events" with booked = booked.data.ok, name = account.data.name
    result "{account.data.name}|{booked.ok}|{elsewhere.error}"
"""


@pytest.fixture
def crm():
    running = SampleCrm().start()
    yield running
    running.stop()


def test_the_sample_crm_answers_lookups_pin_checks_and_confirmations(crm):
    with urllib.request.urlopen(crm.url + "/accounts/5550100") as reply:
        assert json.loads(reply.read()) == {"id": 7, "name": "Ada Lovelace", "balance": 42}
    request = urllib.request.Request(crm.url + "/accounts/7/pin-checks", data=b'{"pin": "1234"}', method="POST")
    with urllib.request.urlopen(request) as reply:
        assert json.loads(reply.read()) == {"valid": True}
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(crm.url + "/accounts/999")
    assert missing.value.code == 404


def test_a_campaign_on_the_simulated_pbx_reaches_configured_services_and_queues_notify(compile_text, crm, tmp_path):
    program = compile_text(SCRIPT).program
    conn = connect(str(tmp_path / "c.db"))
    clock = Clock()
    clock.advance(1_000_000)
    pbx = SimPbx(conn, clock, CallSettings(campaign="c"),
                 SimLine(program, instant=True, services={"booking": ServiceConfig("booking", crm.url)}))
    request = DialRequest(attempt_id=1, attempt_number=1, contact_id=1, number="5550100", params={})
    record = pbx.run_call(request, "")
    assert record.result == "Ada Lovelace|1|no reply for GET other /x"      # `other` is not configured: not sent
    assert crm.received == [("GET", "/api/accounts/5550100"), ("POST", "/api/confirmations")]
    rows = outbox.listing(conn)
    assert [(row["kind"], row["service"], row["path"], row["call_id"]) for row in rows] == \
        [("notify", "booking", "/events", "c-1")]
    assert json.loads(rows[0]["body"]) == {"booked": 1, "name": "Ada Lovelace"}
