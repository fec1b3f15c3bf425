"""fetch, send and notify through the FastAGI server, against a real HTTP service on 127.0.0.1.

The fake Asterisk plays the caller; the server's calls reach the service with
the ``WebClient`` (non-blocking) and queue ``notify`` in the outbox, which
delivers it. A service that is down or slow costs only the call that waits.
"""

from __future__ import annotations

import json
import logging

import pytest

from autocall.outbox.delivery import Outbox
from tests.fakes.fake_asterisk import FakeAsterisk
from tests.fakes.http_service import HttpService, free_port
from tests.server.helpers import HeldAsterisk, database_bytes, open_database, write
from tests.web.conftest import _resolver_threads, _thread_pool  # noqa: F401  (name resolution's threads)

LOOKUP = """\
dialogue lookup
service crm = "{url}"
start main

state main:
    answer
    fetch account from crm "/accounts/{{caller}}" timeout 500ms
    if account.ok:
        say "Hello {{account.data.name}}."
    else:
        say "Sorry: {{account.error}}."
    gather pin digits 4 secret
    send crm "/checks" with pin = pin, id = account.data.id into check
    notify crm "/events" with kind = "looked_up", found = account.ok, items = len(account.data.items)
    result "{{account.ok}}-{{check.data.valid}}"
"""
PIN = "9731"


@pytest.fixture
def crm():
    service = HttpService().start()
    service.routes["/accounts/5550100"] = ("json", 200, {"id": 7, "name": "Ada", "items": [1, 2, 3]})
    service.routes["/accounts/slow"] = ("slow", 5)
    service.routes["/checks"] = ("json", 200, {"valid": True})
    service.routes["/events"] = ("json", 200, {})
    yield service
    service.stop()


@pytest.fixture
def web_server(serve, scripts, live_reactor):
    outboxes = []

    def start(url: str):
        write(scripts, "lookup.dlg", LOOKUP.format(url=url))
        running = serve(scripts)
        outbox = Outbox(running.database, {}, reactor=live_reactor.reactor, poll_s=0.05)
        outbox.start()
        running.server.outbox = outbox
        outboxes.append(outbox)
        return running
    yield start
    for outbox in outboxes:
        live_reactor.run(outbox.stop())


def test_a_lookup_a_send_and_a_delivered_notify(web_server, crm, live_reactor, caplog):
    caplog.set_level(logging.INFO)
    running = web_server(crm.url)
    running.call(FakeAsterisk("lookup", keys=PIN, callerid="5550100", uniqueid="w.1"))
    record = running.last()
    assert record["ended_by"] == "hangup" and record["result"] == "1-1"
    assert record["prompts"][0]["text"] == "Hello Ada."
    requests = [entry["request"] for entry in record["log"] if "request" in entry]
    assert [(r["method"], r["service"], r["path"], r["status"], r["ok"]) for r in requests] == \
        [("GET", "crm", "/accounts/5550100", 200, 1), ("POST", "crm", "/checks", 200, 1)]
    assert all(r["ms"] >= 0 for r in requests)
    live_reactor.spin_until(lambda: running.server.outbox.delivered == 1)
    sent = {r["path"]: r for r in crm.requests}
    assert json.loads(sent["/checks"]["body"]) == {"pin": PIN, "id": 7}       # the service gets the real value
    assert json.loads(sent["/events"]["body"]) == {"kind": "looked_up", "found": 1, "items": 3}
    assert sent["/events"]["headers"]["Idempotency-Key"]
    # ... and nothing else ever keeps it: not the record, not the outbox, not the log.
    assert PIN.encode() not in database_bytes(running.database)
    assert PIN not in caplog.text
    rows = open_database(running.database).execute("SELECT status, path FROM outbox").fetchall()
    assert [tuple(row) for row in rows] == [("delivered", "/events")]


def test_a_service_that_is_down_gives_ok_0_and_the_call_goes_on(web_server, live_reactor):
    running = web_server(f"http://127.0.0.1:{free_port()}")
    running.call(FakeAsterisk("lookup", keys=PIN, callerid="5550100", uniqueid="w.2"))
    record = running.last()
    assert record["ended_by"] == "hangup" and record["result"] == "0-"
    assert record["prompts"][0]["text"] == "Sorry: connection refused."


def test_a_slow_service_costs_only_the_call_that_waits(web_server, crm, live_reactor):
    running = web_server(crm.url)
    running.start(HeldAsterisk(FakeAsterisk("lookup", keys=PIN, callerid="slow", uniqueid="w.slow"),
                                      hold_at="GET VARIABLE NOT_A_COMMAND"))
    live_reactor.spin_until(lambda: any(r["path"] == "/accounts/slow" for r in crm.requests))
    # While the slow call waits for its reply, another call runs from start to end.
    running.call(FakeAsterisk("lookup", keys=PIN, callerid="5550100", uniqueid="w.fast"), timeout=5)
    fast = {r["call_id"]: r for r in running.records()}["w.fast"]
    assert fast["result"] == "1-1"
    assert "w.slow" not in {r["call_id"] for r in running.records()}
    live_reactor.spin_until(lambda: running.server.calls_ended == 2, timeout=5)
    slow_record = {r["call_id"]: r for r in running.records()}["w.slow"]
    assert slow_record["prompts"][0]["text"] == "Sorry: timeout after 0.5s."
    assert slow_record["result"] == "0-1"

