"""The outbox: store rules, delivery against a real receiver on 127.0.0.1 with an injected clock, signatures,
secrets, and the events queued in the transactions of what they report."""

from __future__ import annotations

import json
import logging

import pytest
from twisted.internet.task import Clock

from autocall.outbox.delivery import Outbox
from autocall.outbox.signing import verify
from autocall.services_config import SecretSetting, ServiceConfig
from autocall.store import outbox as store
from autocall.store.db import connect, transaction
from autocall.web.client import WebClient
from tests.fakes.http_service import HttpService
from tests.fakes.reactor import iterate_until

TOKEN = "tok-9f8e7d6c5b4a"
SIGNING = "whsec-0a1b2c3d4e5f"


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "autocall.db")


@pytest.fixture
def conn(db_path):
    made = connect(db_path)
    yield made
    made.close()


def queue(conn, n=1, key="call:1", now=1000.0, **extra):
    with transaction(conn):
        return [store.enqueue(conn, kind="notify", service="crm", path=f"/events/{i}", body={"n": i},
                              ordering_key=key, call_id=key.split(":")[1], now=now, **extra) for i in range(n)]


# --- the store ----------------------------------------------------------------------------------------------------

def test_only_the_oldest_pending_row_of_a_call_is_claimed(conn):
    first, second = queue(conn, 2, "call:a")
    other, = queue(conn, 1, "call:b")
    with transaction(conn):
        claimed = [row["id"] for row in store.claim_due(conn, "w1", 1000.0, 10, 60)]
    assert claimed == [first, other]
    with transaction(conn):           # claimed rows are leased: another worker gets nothing until the lease ends
        assert store.claim_due(conn, "w2", 1001.0, 10, 60) == []
        assert [row["id"] for row in store.claim_due(conn, "w2", 1061.0, 10, 60)] == [first, other]
    with transaction(conn):
        store.mark_delivered(conn, first, "w2", 200, 1062.0)
        assert [row["id"] for row in store.claim_due(conn, "w2", 1062.0, 10, 60)] == [second]


def test_retries_grow_and_stop_after_24_hours(conn):
    row_id, = queue(conn)
    now, waits = 1000.0, []
    while True:
        with transaction(conn):
            assert [row["id"] for row in store.claim_due(conn, "w", now, 10, 60)] == [row_id]
            status = store.mark_retry(conn, row_id, "w", 503, "HTTP 503", now)
        if status == store.FAILED:
            break
        due = store.row_by_id(conn, row_id)["next_try_at"]
        waits.append(due - now)
        now = due
    assert waits[:5] == [2, 4, 8, 16, 32] and max(waits) == 300
    row = store.row_by_id(conn, row_id)
    assert row["status"] == "failed" and row["last_error"] == "gave up after 24 hours: HTTP 503"
    assert 24 * 3600 - 300 <= now - 1000.0 <= 24 * 3600
    with transaction(conn):
        again = store.retry(conn, row_id, now + 10)
    assert again["status"] == "pending" and again["next_try_at"] == now + 10


# --- delivery ---------------------------------------------------------------------------------------------------------

class Delivering:
    """An Outbox on a task.Clock, its HTTP on the real reactor: ``run(seconds)`` moves time and lets I/O finish."""

    def __init__(self, db_path, url, signing=None, **options):
        self.clock = Clock()
        self.clock.advance(1000)
        secret = SecretSetting(signing) if signing else None
        services = {"crm": ServiceConfig("crm", url, {"Authorization": SecretSetting(f"Bearer {TOKEN}")}, secret)}
        client = WebClient(services, clock=self.clock)
        self.outbox = Outbox(db_path, services, clock=self.clock, client=client, **options)
        self.outbox.start()

    def settle(self):
        """Let the real I/O happen and the timers due now run; a request still in flight after 0.3 s of no
        change waits for the clock (its timeout)."""
        from twisted.internet import reactor
        import time
        deadline = time.monotonic() + 10
        quiet_since, seen = time.monotonic(), len(self.outbox.in_flight)
        while self.outbox.in_flight or self.clock.getDelayedCalls() and \
                min(c.getTime() for c in self.clock.getDelayedCalls()) <= self.clock.seconds():
            if self.outbox.in_flight:
                reactor.iterate(0.002)
                if len(self.outbox.in_flight) != seen:
                    quiet_since, seen = time.monotonic(), len(self.outbox.in_flight)
                elif time.monotonic() - quiet_since > 0.3:
                    break
            else:
                self.clock.advance(0)
            assert time.monotonic() < deadline

    def run(self, seconds, step=1.0):
        end = self.clock.seconds() + seconds
        self.settle()
        while self.clock.seconds() < end:
            self.clock.advance(min(step, end - self.clock.seconds()))
            self.settle()

    def stop(self):
        self.outbox.stop()
        self.settle()


@pytest.fixture
def receiver():
    running = HttpService().start()
    yield running
    running.stop()


def test_a_receiver_down_for_an_hour_gets_every_event_once_back_in_order(db_path, conn, receiver):
    for key in ("call:1", "call:2", "call:3"):
        queue(conn, 3, key, now=1000.0)
    for i in range(3):
        receiver.routes[f"/hook/events/{i}"] = ("json", 503, {})
    delivering = Delivering(db_path, receiver.url + "/hook")
    delivering.run(3600, step=5)
    down = len(receiver.requests)
    assert store.counts(conn) == {"pending": 9, "delivered": 0, "failed": 0}
    assert down < 3 * 3600 / 2                       # growing delays, not a hammering
    for i in range(3):
        receiver.routes[f"/hook/events/{i}"] = ("json", 200, {})
    delivering.run(301, step=1)
    assert store.counts(conn) == {"pending": 0, "delivered": 9, "failed": 0}
    accepted = [r for r in receiver.requests[down:]]
    assert len(accepted) == 9                       # each once after the receiver is back
    for key in ("1", "2", "3"):                     # in order per call
        keys = [json.loads(r["body"])["n"] for r in accepted if r["headers"]["Idempotency-Key"] in
                {row["idempotency_key"] for row in store.listing(conn) if row["call_id"] == key}]
        assert keys == [0, 1, 2]
    # the same Idempotency-Key on every try of a row
    by_path: dict = {}
    for request in receiver.requests:
        by_path.setdefault(json.loads(request["body"])["n"], set()).add(request["headers"]["Idempotency-Key"])
    assert all(len(keys) == 3 for keys in by_path.values())
    delivering.stop()


def test_429_is_retried_and_other_4xx_fail_at_once(db_path, conn, receiver):
    queue(conn, 1, "call:a")
    queue(conn, 1, "call:b")
    receiver.routes["/events/0"] = ("sequence", [("json", 429, {}), ("json", 200, {})])
    delivering = Delivering(db_path, receiver.url)
    delivering.run(1)
    waiting = store.listing(conn, status="pending")
    assert len(waiting) == 1 and waiting[0]["last_status"] == 429 and waiting[0]["tries"] == 1   # the other: 200
    receiver.routes["/events/0"] = ("json", 422, {"error": "bad"})
    delivering.run(10)
    statuses = sorted(row["status"] for row in store.listing(conn))
    assert statuses == ["delivered", "failed"]
    failed = store.listing(conn, status="failed")[0]
    assert failed["last_status"] == 422 and failed["tries"] == 2 and failed["last_error"] == "HTTP 422"
    delivering.stop()


def test_signed_deliveries_verify_and_no_secret_reaches_rows_or_logs(db_path, conn, receiver, caplog):
    queue(conn, 2)
    receiver.routes["/events/0"] = receiver.routes["/events/1"] = ("json", 200, {})
    with caplog.at_level(logging.DEBUG):
        delivering = Delivering(db_path, receiver.url, signing=SIGNING)
        delivering.run(2)
        delivering.stop()
    assert len(receiver.requests) == 2
    for request in receiver.requests:
        headers = request["headers"]
        assert verify(SIGNING, headers["X-AutoCall-Timestamp"], request["body"], headers["X-AutoCall-Signature"],
                      now=delivering.clock.seconds())
        assert not verify("another secret", headers["X-AutoCall-Timestamp"], request["body"],
                          headers["X-AutoCall-Signature"])
        assert not verify(SIGNING, headers["X-AutoCall-Timestamp"], request["body"] + b" ",
                          headers["X-AutoCall-Signature"])
        assert headers["Authorization"] == f"Bearer {TOKEN}" and headers["X-AutoCall-Event"] == "notify"
    dump = "\n".join(conn.iterdump())
    for secret in (TOKEN, SIGNING):
        assert secret not in dump and secret not in caplog.text


def test_enqueue_notify_is_committed_before_its_deferred_fires(db_path, conn):
    outbox = Outbox(db_path, {}, clock=Clock(), client=object())
    outbox.open()
    fired = iterate_until(outbox.enqueue_notify(call_id="c9", service="crm", path="/x%2Fy", body={"kind": "k"},
                                                script_url="https://crm.example.com/api"))
    other = connect(db_path)                     # another connection sees it: it is committed
    row = store.row_by_id(other, fired)
    other.close()
    assert (row["kind"], row["service"], row["path"], row["call_id"], row["base_url"], json.loads(row["body"])) == \
        ("notify", "crm", "/x%2Fy", "c9", "https://crm.example.com/api", {"kind": "k"})
    outbox.conn.close()


def test_a_locked_database_holds_the_notify_until_it_is_free(db_path, conn):
    outbox = Outbox(db_path, {}, clock=Clock(), client=object())
    outbox.open()
    conn.execute("BEGIN IMMEDIATE")               # another process holds the write lock
    done = outbox.enqueue_notify(call_id="c1", service="crm", path="/e", body={})
    assert not done.called
    conn.execute("COMMIT")
    outbox.clock.advance(0.05)
    assert done.called and store.counts(conn)["pending"] == 1
    outbox.conn.close()


# --- events ----------------------------------------------------------------------------------------------------------

def test_call_ended_is_queued_in_the_record_transaction(db_path, conn):
    from autocall.agi.records import RecordWriter
    from autocall.engine.record import CallRecord
    from autocall.outbox.events import EventWriter
    from autocall.services_config import EventRoute
    from autocall.store.calls import call_by_id

    clock = Clock()
    writer = RecordWriter(db_path, clock=clock, checkpoint_every=3600,
                          events=EventWriter({"call_ended": EventRoute("call_ended", "crm", "/calls")}))
    writer.open()
    record = CallRecord(call_id="c-77", script="support", caller="5550100", started_at=1000.0)
    record.ended_at, record.ended_by = 1010.0, "hangup"
    writer.save(record)
    clock.advance(1)
    writer.close()
    rows = store.listing(conn)
    assert [(row["kind"], row["path"], row["ordering_key"]) for row in rows] == [("call_ended", "/calls", "call:c-77")]
    assert json.loads(rows[0]["body"]) == call_by_id(conn, "c-77")


def test_stop_waits_for_the_delivery_in_flight_then_gives_back_its_claims(db_path, conn, receiver):
    queue(conn, 1, "call:a")
    queue(conn, 1, "call:b")
    receiver.routes["/events/0"] = ("slow", 30)
    delivering = Delivering(db_path, receiver.url, timeout_s=2.0)
    delivering.run(0.5)
    assert len(delivering.outbox.in_flight) == 2
    stopped = delivering.outbox.stop()
    delivering.run(3)                       # the deliveries time out (2 s), then the stop finishes
    assert stopped.called and delivering.outbox.conn is None
    rows = store.listing(conn)
    assert [(row["status"], row["claimed_by"], row["last_error"]) for row in rows] == \
        [("pending", "", "timeout after 2s")] * 2      # the next process takes them at once
