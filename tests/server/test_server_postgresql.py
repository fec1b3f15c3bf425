"""FastAGI servers writing call records into one PostgreSQL, and riding out a database outage."""

from __future__ import annotations

import logging
import time

import pytest
from twisted.internet import task

from autocall.agi.records import RecordWriter
from autocall.engine.record import CallRecord
from autocall.store.calls import recent_calls
from autocall.store.db import connect


def _record(call_id: str, started: float = 1000.0) -> CallRecord:
    return CallRecord(call_id=call_id, script="s", started_at=started, ended_by="hangup", ended_at=started + 1)


def test_two_servers_write_into_one_database_and_a_shared_call_id_is_kept_twice(postgresql_url):
    clock = task.Clock()
    servers = [RecordWriter(postgresql_url, clock=clock, batch_delay=0.1, chunk=5) for _ in range(2)]
    for server in servers:
        server.open()
    for index in range(12):
        servers[index % 2].save(_record(f"c{index}", 1000.0 + index))
    servers[1].save(_record("c0", 2000.0))                  # the other Asterisk reused a uniqueid
    clock.advance(0.1)
    for _ in range(5):
        clock.advance(0)
    for server in servers:
        server.close()
    reader = connect(postgresql_url)
    ids = [row["call_id"] for row in recent_calls(reader, 50)]
    reader.close()
    assert sorted(ids) == sorted([f"c{index}" for index in range(12)] + ["c0-2"])


@pytest.mark.slow
def test_records_wait_in_memory_while_postgresql_is_down_and_are_written_when_it_is_back(caplog, own_postgresql):
    cluster = own_postgresql
    clock = task.Clock()
    writer = RecordWriter(cluster.url, clock=clock, batch_delay=0.1, outage_limit_records=5)
    caplog.set_level(logging.WARNING, logger="autocall")
    writer.open()
    writer.save(_record("before"))
    clock.advance(0.1)
    assert writer.written == 1
    cluster.stop()
    for index in range(7):
        writer.save(_record(f"during{index}"))
    started = time.monotonic()
    clock.advance(0.1)
    assert time.monotonic() - started < 1.0          # the reactor is not held up by the outage
    assert writer.down_since is not None and writer.pending == 5    # bounded: the two oldest given up
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("database unavailable") for m in messages)
    given_up = [r for r in caplog.records if getattr(r, "fields", {}).get("call_id") in ("during0", "during1")]
    assert len(given_up) == 2 and all('"call_id"' in r.fields["record"] for r in given_up)   # in full
    cluster.start()
    deadline = time.monotonic() + 20
    while writer.pending and time.monotonic() < deadline:
        clock.advance(1.0)
        time.sleep(0.1)
    assert writer.pending == 0 and writer.down_since is None
    assert any(r.getMessage().startswith("database back") for r in caplog.records)
    writer.close()
    reader = connect(cluster.url)
    ids = sorted(row["call_id"] for row in recent_calls(reader, 50))
    reader.close()
    assert ids == ["before"] + [f"during{index}" for index in range(2, 7)]
