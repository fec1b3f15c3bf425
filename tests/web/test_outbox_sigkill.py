"""Outbox delivery across a SIGKILL: a process queues and starts delivering, is killed, another delivers the rest;
every event arrives, each call's in order (a duplicate only for what was in flight at the kill)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from autocall.store import outbox as store
from autocall.store.db import connect
from tests.fakes.http_service import HttpService

ROOT = Path(__file__).resolve().parents[2]
COUNT = 20


def _worker(mode: str, database: str, url: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.web.outbox_worker", mode, database, url, str(COUNT)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_while_delivering_loses_nothing(tmp_path):
    database = str(tmp_path / "autocall.db")
    receiver = HttpService().start()
    try:
        for i in range(COUNT):
            receiver.routes[f"/events/{i}"] = ("slow", 0.05)
        first = _worker("enqueue", database, receiver.url)
        try:
            assert first.stdout.readline().strip() == f"queued {COUNT}"      # every notify committed
            deadline = time.monotonic() + 20
            while len(receiver.requests) < 6:
                assert time.monotonic() < deadline and first.poll() is None
                time.sleep(0.02)
            os.kill(first.pid, signal.SIGKILL)
        finally:
            first.kill()
            first.wait()
        before = len(receiver.requests)
        assert before < COUNT
        second = _worker("deliver", database, receiver.url)
        try:
            second.wait(timeout=60)
        finally:
            second.kill()
        assert second.returncode == 0, second.stderr.read()
        conn = connect(database)
        rows = store.listing(conn, limit=1000)
        conn.close()
        assert len(rows) == COUNT and {row["status"] for row in rows} == {"delivered"}
        received = [(request["headers"]["Idempotency-Key"], json.loads(request["body"])["n"])
                    for request in receiver.requests]
        assert {key for key, _ in received} == {row["idempotency_key"] for row in rows}
        assert len(received) - COUNT <= 2            # at most the two in flight at the kill, sent again
        for call in range(5):                        # in order per call (first arrival of each)
            seen: list[int] = []
            for _, n in received:
                if n % 5 == call and n not in seen:
                    seen.append(n)
            assert seen == sorted(seen)
    finally:
        receiver.stop()
