"""Three dialers on one campaign in PostgreSQL, one SIGKILLed every few seconds and started again, PostgreSQL
itself restarted mid-campaign: nobody is dialled twice, nobody is lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from campaign_helpers import ROOT_DIR, SCRIPT, write_csv

CONTACTS = 1000
WORKERS = 3


def _command(csv_path):
    return [sys.executable, "-m", "autocall", "campaign", "run", str(csv_path), "--script", str(SCRIPT),
            "--name", "chaos", "--concurrency", "45", "--attempts", "2", "--retry-after", "300ms",
            "--sim-speed", "45"]


@pytest.mark.slow
def test_workers_killed_and_postgresql_restarted_lose_no_contact_and_dial_none_twice(tmp_path, own_postgresql):
    import psycopg

    cluster = own_postgresql            # our own: it is restarted below
    rng = random.Random(15)
    rows = [[f"+3906{index:07d}", f"N{index}", "monday", "busy" if index % 10 == 3 else "answer", "1"]
            for index in range(CONTACTS)]
    csv_path = write_csv(tmp_path / "contacts.csv", rows)
    env = dict(os.environ, AUTOCALL_DATABASE=cluster.url, AUTOCALL_WORKER_LEASE="3s", PYTHONPATH=str(ROOT_DIR))
    logs = []

    def start(index: int) -> subprocess.Popen:
        log = open(tmp_path / f"worker{index}-{len(logs)}.log", "w")
        logs.append(log)
        return subprocess.Popen(_command(csv_path), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log)

    def peek(sql: str):
        try:
            with psycopg.connect(cluster.url, connect_timeout=2) as conn:
                return conn.execute(sql).fetchone()
        except psycopg.Error:
            return None

    workers = [start(index) for index in range(WORKERS)]      # one imports the list, the others join it
    started = time.monotonic()
    while (peek("SELECT COUNT(*) FROM attempts") or [0])[0] < 50:   # the chaos starts once all are dialling
        assert time.monotonic() - started < 20, "the workers did not start dialling"
        time.sleep(0.05)
    kills, restarted_db, started = 0, False, time.monotonic()
    next_kill = started + 1.0
    try:
        while True:
            now = time.monotonic()
            assert now - started < 100, f"the campaign did not finish ({peek('SELECT COUNT(*) FROM contacts')})"
            left = peek("SELECT COUNT(*) FROM contacts WHERE status != 'done'")
            if left is not None and left[0] == 0 and kills >= 3 and restarted_db:
                break
            if not restarted_db and now - started > 2.5:
                cluster.stop()                          # down long enough for every worker to notice
                time.sleep(2.5)
                cluster.start()
                restarted_db = True
                next_kill = time.monotonic() + 3.0     # let the workers tell that it is back
            if now >= next_kill:
                victim = rng.randrange(WORKERS)
                if workers[victim].poll() is None:
                    workers[victim].send_signal(signal.SIGKILL)
                    workers[victim].wait()
                    kills += 1
                workers[victim] = start(victim)
                next_kill = now + rng.uniform(1.5, 3.0)
            for index, worker in enumerate(workers):       # one started while PostgreSQL was down: again
                if worker.poll() not in (None, 0):
                    workers[index] = start(index)
            time.sleep(0.1)
        for worker in workers:
            worker.wait(timeout=30)
        with psycopg.connect(cluster.url) as conn:
            contacts = conn.execute("SELECT id, number, sim_outcome, status, outcome, attempts FROM contacts").fetchall()
            attempts = conn.execute("SELECT contact_id, attempt_number, state, outcome FROM attempts"
                                    " ORDER BY contact_id, id").fetchall()
            calls_per_contact = dict(conn.execute(
                "SELECT a.contact_id, COUNT(*) FROM calls c JOIN attempts a ON a.id = c.attempt_id"
                " GROUP BY a.contact_id").fetchall())
            state = conn.execute("SELECT state FROM campaigns").fetchone()[0]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        for log in logs:
            log.close()

    by_contact: dict[int, list] = {}
    for contact_id, number, state_, outcome in attempts:
        by_contact.setdefault(contact_id, []).append((number, state_, outcome))
    assert len(contacts) == CONTACTS and state == "done"
    lost = [number for _, number, _, status, _, _ in contacts if status != "done"]
    assert lost == [], f"{len(lost)} contacts lost"
    double = []
    unknown = 0
    for contact_id, number, sim, _, outcome, count in contacts:
        tries = by_contact.get(contact_id, [])
        assert [n for n, _, _ in tries] == list(range(1, len(tries) + 1)) and count == len(tries) <= 2
        # A second attempt only after a busy one; a call record (a call that happened) at most once.
        if any(o not in ("busy",) for _, _, o in tries[:-1]) or calls_per_contact.get(contact_id, 0) > 1:
            double.append(number)
        if sim == "answer" and len(tries) != 1:
            double.append(number)
        unknown += outcome == "unknown"
    print(f"chaos: {kills} kills, {unknown} unknown, {len(attempts)} attempts")
    assert double == [], f"dialled twice: {double[:10]}"
    assert unknown <= kills * 45            # only calls in flight at a kill end unknown
    text = "".join((tmp_path / name).read_text() for name in os.listdir(tmp_path) if name.endswith(".log"))
    assert "Traceback" not in text and "internal error" not in text
    assert "database unavailable" in text and "database back" in text
