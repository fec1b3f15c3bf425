"""Campaign speed: 10,000 contacts on the simulated PBX with instant outcomes.

Targets (issue 5): at least 500 attempts per second of scheduler and store work
(every attempt committed before its dial, its end and call record written
after), and memory that does not grow with the number of contacts: the peak
Python memory of the run with 10,000 contacts stays within 1.5x that of a run
with 2,000 (contacts are streamed from the database, never all loaded).
Answered calls run the real engine on the test reminder script. Import time
is printed too, not targeted.
"""

from __future__ import annotations

import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twisted.internet.task import Clock  # noqa: E402

from autocall.campaign.pbx import CallSettings
from autocall.campaign.pbx_sim import SimLine, SimPbx  # noqa: E402
from autocall.campaign.scheduler import Scheduler  # noqa: E402
from autocall.campaign.setup import prepare_campaign, settings_from  # noqa: E402
from autocall.dsl.compiler import Compiler  # noqa: E402
from autocall.store.db import connect  # noqa: E402

SCRIPT = ROOT / "tests" / "campaign" / "scripts" / "reminder.dlg"
MIX = [("answer", "1")] * 6 + [("busy", ""), ("noanswer", ""), ("machine", ""), ("failed", ""), ("answer", "2"),
                               ("answer", "w")]
OPTIONS = {"concurrency": 50, "rate": None, "attempts": 2, "retry_after": "0s", "window": None, "timezone": None,
           "pbx": "sim", "channel": "PJSIP/{number}@trunk", "caller_id": "", "amd": True}
ATTEMPTS_PER_SECOND = 500
MEMORY_GROWTH = 1.5


def write_contacts(path: Path, count: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("number,name,date,sim_outcome,sim_keys\n")
        for index in range(count):
            outcome, keys = MIX[index % len(MIX)]
            handle.write(f"+3906{index:08d},Name {index},monday,{outcome},{keys}\n")


def one_run(folder: Path, count: int, program, trace: bool) -> dict:
    csv_path = folder / f"contacts-{count}.csv"
    write_contacts(csv_path, count)
    conn = connect(str(folder / f"bench-{count}-{trace}.db"))
    clock = Clock()
    clock.advance(1_780_000_000)
    began = time.perf_counter()
    campaign_id, report = prepare_campaign(conn, name="bench", contacts_path=str(csv_path),
                                           script_path=str(SCRIPT), program=program, options=OPTIONS,
                                           now=clock.seconds())
    imported = time.perf_counter() - began
    if trace:
        tracemalloc.start()
    began = time.perf_counter()
    results: list = []
    scheduler = Scheduler(conn, campaign_id, SimPbx(conn, clock, CallSettings(campaign="bench", amd=True),
                                                          SimLine(program, instant=True)), clock,
                          settings_from(OPTIONS))
    scheduler.run().addBoth(results.append)
    while not results:
        clock.advance(max(0.0, min(call.getTime() for call in clock.getDelayedCalls()) - clock.seconds()))
    elapsed = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    summary = results[0]
    assert isinstance(summary, dict), summary
    assert summary["by_status"]["done"] == count == report.imported
    conn.close()
    return {"imported_s": imported, "run_s": elapsed, "attempts": summary["attempts"], "peak": peak,
            "outcomes": summary["by_outcome"]}


def main() -> int:
    program = Compiler().compile_file(str(SCRIPT)).program
    with tempfile.TemporaryDirectory() as folder:
        speed = one_run(Path(folder), 10_000, program, trace=False)
        small = one_run(Path(folder), 2_000, program, trace=True)
        large = one_run(Path(folder), 10_000, program, trace=True)
    rate = speed["attempts"] / speed["run_s"]
    growth = large["peak"] / max(small["peak"], 1)
    print(f"import of 10,000 contacts: {speed['imported_s']:.2f} s "
          f"({10_000 / speed['imported_s']:,.0f} rows/s)")
    print(f"campaign run: {speed['attempts']:,} attempts in {speed['run_s']:.2f} s = {rate:,.0f} attempts/s "
          f"(target >= {ATTEMPTS_PER_SECOND}); outcomes {speed['outcomes']}")
    print(f"peak Python memory of the run: 2,000 contacts {small['peak'] / 1e6:.2f} MB, "
          f"10,000 contacts {large['peak'] / 1e6:.2f} MB, x{growth:.2f} (target <= x{MEMORY_GROWTH})")
    ok = rate >= ATTEMPTS_PER_SECOND and growth <= MEMORY_GROWTH
    print("campaign bench: " + ("ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
