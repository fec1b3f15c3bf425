"""Fills a database with call records for the report benchmark: ``python benchmarks/report_data.py DB N``.

The records are what the server writes (``store.calls.insert_calls``): the
support line's shapes (menu, secret PIN gather, transfers, caller hang-ups,
errors), spread over the last 365 days at office-hour peaks, from a fixed seed.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autocall.engine.record import ENDED_CALLER, ENDED_ERROR, ENDED_HANGUP, CallRecord  # noqa: E402
from autocall.store.calls import insert_calls  # noqa: E402
from autocall.store.db import connect, transaction  # noqa: E402

DAY_S = 86_400
BATCH = 5_000
# (weight, path, inputs as (state, op, keys, outcome, note), transfers as (state, destination, status), ended_by)
SHAPES = [
    (30, ["main", "billing"], [("main", "menu", "1", "match", {"failure": False})],
     [("billing", "PJSIP/billing", "ANSWER")], ENDED_HANGUP),
    (20, ["main", "tech", "nobody_answered", "voicemail", "goodbye"], [("main", "menu", "2", "match", {"failure": False})],
     [("tech", "PJSIP/tech", "NOANSWER")], ENDED_HANGUP),
    (15, ["main", "login", "account", "goodbye"],
     [("main", "menu", "3", "match", {"failure": False}),
      ("login", "gather", "***", "complete", {"name": "pin", "secret": True}),
      ("account", "menu", "1", "match", {"failure": False})], [], ENDED_HANGUP),
    (10, ["main", "login", "login", "operator"],
     [("main", "menu", "3", "match", {"failure": False}),
      ("login", "gather", "***", "complete", {"name": "pin", "secret": True}),
      ("login", "gather", "", "empty", {"name": "pin", "secret": True})],
     [("operator", "PJSIP/100", "ANSWER")], ENDED_HANGUP),
    (12, ["main"], [("main", "menu", "", "timeout", {"failure": False})], [], ENDED_CALLER),
    (8, ["main", "operator"], [("main", "menu", "9", "invalid", {"failure": False}),
                               ("main", "menu", "", "timeout", {"failure": False}),
                               ("main", "menu", "", "timeout", {"failure": True})],
     [("operator", "PJSIP/100", "BUSY")], ENDED_CALLER),
    (3, ["main", "billing"], [("main", "menu", "1", "match", {"failure": False})], [], ENDED_ERROR),
    (2, ["main", "tech"], [("main", "menu", "2", "match", {"failure": False})],
     [("tech", "PJSIP/tech", "CHANUNAVAIL")], ENDED_HANGUP),
]
RESULTS = {"billing": "billing", "tech": "tech", "account": "balance", "operator": "operator",
           "voicemail": "voicemail"}


def make_record(number: int, rng: random.Random, now: float) -> CallRecord:
    _, path, inputs, transfers, ended_by = rng.choices(SHAPES, weights=[s[0] for s in SHAPES])[0]
    day = rng.randrange(365)
    hour = rng.choice((9, 9, 10, 10, 10, 11, 11, 12, 14, 15, 15, 16, 17, 18, 20, 22))
    started = now - (day + 1) * DAY_S + hour * 3600 + rng.random() * 3600
    record = CallRecord(f"bench.{number}", "support", started, caller=f"+3906{rng.randrange(10**7):07d}",
                        called="5550000")
    record.path = list(path)
    record.inputs = [{"state": s, "op": op, "keys": k, "outcome": o} for s, op, k, o, _ in inputs]
    record.input_notes = [dict(note) for *_, note in inputs]
    record.transfers = [{"destination": d, "dialstatus": st} for _, d, st in transfers]
    record.transfer_states = [state for state, _, _ in transfers]
    record.prompts = [{"kind": "tts", "text": "Thank you for calling Acme support."}]
    record.result = next((RESULTS[s] for s in reversed(path) if s in RESULTS), None)
    record.ended_by = ended_by
    record.error = "channel failure: the line dropped" if ended_by == ENDED_ERROR else None
    record.ended_at = started + rng.expovariate(1 / 45)
    return record


def fill(database: str, count: int, seed: int = 14) -> float:
    """Write ``count`` records to ``database``; the seconds it took."""
    rng = random.Random(seed)
    now = time.time()
    begun = time.perf_counter()
    conn = connect(database)
    try:
        for start in range(0, count, BATCH):
            batch = [(make_record(n, rng, now), "Local/s@ivr-1;2", None, "agi")
                     for n in range(start, min(start + BATCH, count))]
            with transaction(conn):
                insert_calls(conn, batch)
    finally:
        conn.close()
    return time.perf_counter() - begun


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python benchmarks/report_data.py DATABASE COUNT")
    seconds = fill(sys.argv[1], int(sys.argv[2]))
    print(f"{int(sys.argv[2]):,} call records written in {seconds:.1f} s")
