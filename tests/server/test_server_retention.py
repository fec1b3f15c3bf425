"""`autocall serve` with ``retention`` set deletes the records older than that when it starts (and daily: the
job's schedule is tested on a clock in tests/report/test_retention.py)."""

from __future__ import annotations

import signal
import time

from autocall.engine.record import CallRecord
from autocall.store.calls import save_call
from autocall.store.db import connect
from tests.server import test_server_process
from tests.server.test_server_process import Server


def test_serve_purges_what_is_older_than_the_retention_at_start(tmp_path, monkeypatch):
    database = tmp_path / "calls.db"
    conn = connect(str(database))
    for call_id, age_days in (("ancient", 400), ("recent", 2)):
        record = CallRecord(call_id, "slow", time.time() - age_days * 86_400, caller="5550100")
        record.path, record.ended_by, record.ended_at = ["main"], "hangup", record.started_at + 5
        save_call(conn, record)
    conn.close()
    original = test_server_process.autocall

    def with_retention(*args, env=None, **popen):
        return original(*args, env={**(env or {}), "AUTOCALL_RETENTION": "30d"}, **popen)

    monkeypatch.setattr(test_server_process, "autocall", with_retention)     # the server's environment
    server = Server(tmp_path)
    try:
        line = server.wait_for("retention: deleted")
        assert " calls=1 " in line and "retention_days=30" in line
        assert [record["call_id"] for record in server.records()] == ["recent"]
    finally:
        server.process.send_signal(signal.SIGTERM)
        assert server.finish() == 0
