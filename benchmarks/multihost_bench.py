"""Several hosts on one PostgreSQL: campaign workers sharing a campaign, and two FastAGI servers' record writers.

Targets (issue 15), on the simulated PBX with instant outcomes (every attempt
claimed and committed before its dial, its end and call record written
after, answered calls running the real engine on the test reminder script):

- attempts per second with 1, 2 and 4 worker processes on PostgreSQL,
  against 1 worker on SQLite in the same run; at least 500/s with 4 workers;
- memory flat as contacts grow: a worker's peak Python memory with 10,000
  contacts within 1.5x its peak with 2,000;
- call records written per second by two FastAGI servers' record writers
  (``autocall.agi.records.RecordWriter``, in two processes) into one
  PostgreSQL (printed, not targeted).

PostgreSQL: ``TEST_POSTGRESQL_URL`` if set, else a throwaway cluster
(``tests/postgres.py``) made for the run and removed after it.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twisted.internet.task import Clock  # noqa: E402

from autocall.campaign.pbx import CallSettings  # noqa: E402
from autocall.campaign.pbx_sim import SimLine, SimPbx  # noqa: E402
from autocall.campaign.scheduler import Scheduler  # noqa: E402
from autocall.campaign.setup import prepare_campaign, settings_from  # noqa: E402
from autocall.dsl.compiler import Compiler  # noqa: E402
from autocall.engine.record import CallRecord  # noqa: E402
from autocall.store.db import connect  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from campaign_bench import OPTIONS, SCRIPT, write_contacts  # noqa: E402

CONTACTS = 6000
ATTEMPTS_PER_SECOND = 500
MEMORY_GROWTH = 1.5
RECORDS_PER_SERVER = 20_000


def _program():
    result = Compiler().compile_file(str(SCRIPT))
    assert result.ok, result.render()
    return result.program


def _schema_url(base: str) -> str:
    import psycopg
    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{base}?options=-csearch_path%3D{schema}"


def _prepare(database: str, folder: Path, count: int, program) -> int:
    csv_path = folder / f"contacts-{count}.csv"
    write_contacts(csv_path, count)
    conn = connect(database)
    campaign_id, report = prepare_campaign(conn, name="bench", contacts_path=str(csv_path), script_path=str(SCRIPT),
                                           program=program, options=dict(OPTIONS, concurrency=200),
                                           now=1_780_000_000)
    assert report.imported == count
    conn.close()
    return campaign_id


def _worker(database: str, campaign_id: int, program, trace: bool, out) -> None:
    conn = connect(database)
    clock = Clock()
    clock.advance(1_780_000_000)
    if trace:
        tracemalloc.start()
    results: list = []
    options = dict(OPTIONS, concurrency=200)
    scheduler = Scheduler(conn, campaign_id, SimPbx(conn, clock, CallSettings(campaign="bench", amd=True),
                                                          SimLine(program, instant=True)), clock,
                          settings_from(options))
    scheduler.run().addBoth(results.append)
    while not results:
        clock.advance(max(0.0, min(call.getTime() for call in clock.getDelayedCalls()) - clock.seconds()))
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    conn.close()
    out.put((scheduler.dialled, peak))


def run_workers(database: str, folder: Path, workers: int, program, count: int = CONTACTS,
                trace: bool = False) -> dict:
    campaign_id = _prepare(database, folder, count, program)
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    began = time.perf_counter()
    processes = [context.Process(target=_worker, args=(database, campaign_id, program, trace, out))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    figures = [out.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - began
    conn = connect(database)
    attempts = conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    left = conn.execute("SELECT COUNT(*) FROM contacts WHERE status != 'done'").fetchone()[0]
    conn.close()
    assert left == 0, f"{left} contacts not done"
    assert attempts == sum(dialled for dialled, _ in figures)
    return {"attempts": attempts, "seconds": elapsed, "per_s": attempts / elapsed,
            "peak": max(peak for _, peak in figures)}


def _writer(database: str, prefix: str, out) -> None:
    from twisted.internet.task import Clock

    from autocall.agi.records import RecordWriter
    clock = Clock()
    writer = RecordWriter(database, clock=clock)
    writer.open()
    began = time.perf_counter()
    for index in range(RECORDS_PER_SERVER):
        record = CallRecord(call_id=f"{prefix}-{index}", script="reminder", caller="+390655500", called="100",
                            started_at=1_780_000_000 + index, ended_by="hangup", ended_at=1_780_000_030 + index,
                            result="confirmed")
        record.path = ["main", "confirmed"]
        record.inputs = [{"state": "main", "op": "menu", "keys": "1", "outcome": "match"}]
        record.input_notes = [{"failure": False}]
        writer.save(record)
        if index % 500 == 499:
            clock.advance(0.1)
            while writer.pending:
                clock.advance(0)
    writer.close()
    out.put((writer.written, time.perf_counter() - began))


def records_per_second(database: str) -> float:
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    began = time.perf_counter()
    processes = [context.Process(target=_writer, args=(database, name, out)) for name in ("agi1", "agi2")]
    for process in processes:
        process.start()
    written = sum(out.get(timeout=600)[0] for _ in processes)
    for process in processes:
        process.join()
    return written / (time.perf_counter() - began)


def main() -> int:
    from tests.postgres import ENV, Cluster
    program = _program()
    cluster = None
    base = os.environ.get(ENV)
    if not base:
        cluster = Cluster().start()
        base = cluster.url
    failures = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            sqlite = run_workers(str(folder / "bench.db"), folder, 1, program)
            print(f"SQLite, 1 worker:      {sqlite['per_s']:7.0f} attempts/s ({sqlite['attempts']} attempts, "
                  f"{sqlite['seconds']:.1f} s)  [baseline]")
            for workers in (1, 2, 4):
                figures = run_workers(_schema_url(base), folder, workers, program)
                print(f"PostgreSQL, {workers} worker(s): {figures['per_s']:7.0f} attempts/s "
                      f"({figures['per_s'] / sqlite['per_s']:.2f}x the baseline, {figures['seconds']:.1f} s)")
                if workers == 4 and figures["per_s"] < ATTEMPTS_PER_SECOND:
                    failures.append(f"4 workers on PostgreSQL: {figures['per_s']:.0f} attempts/s, below "
                                    f"{ATTEMPTS_PER_SECOND}")
            small = run_workers(_schema_url(base), folder, 1, program, count=2000, trace=True)
            large = run_workers(_schema_url(base), folder, 1, program, count=10_000, trace=True)
            growth = large["peak"] / small["peak"]
            print(f"worker memory, PostgreSQL: peak {small['peak'] / 1e6:.1f} MB with 2,000 contacts, "
                  f"{large['peak'] / 1e6:.1f} MB with 10,000 ({growth:.2f}x)")
            if growth > MEMORY_GROWTH:
                failures.append(f"a worker's memory grew {growth:.2f}x from 2,000 to 10,000 contacts")
            rate = records_per_second(_schema_url(base))
            print(f"call records, two FastAGI record writers into one PostgreSQL: {rate:7.0f} records/s")
    finally:
        if cluster is not None:
            cluster.remove()
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
