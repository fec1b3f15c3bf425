"""Helpers of the campaign tests (a module with its own name, so test modules import it unambiguously)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "scripts" / "reminder.dlg"
HEADER = ["number", "name", "date", "sim_outcome", "sim_keys"]

OPTIONS = {"concurrency": 3, "rate": None, "attempts": 3, "retry_after": "10m", "window": None,
           "timezone": None, "pbx": "sim", "channel": "PJSIP/{number}@trunk", "caller_id": "", "amd": False}


def write_csv(path: Path, rows: Iterable[Iterable[Any]], header: Iterable[str] = HEADER) -> Path:
    lines = [",".join(header)] + [",".join(str(cell) for cell in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def contact_rows(outcomes: Iterable[str], keys: Iterable[str] | None = None) -> list[list[str]]:
    """One row per outcome: +3906555<nnnn>, a name, a date, the sim columns."""
    keys = list(keys) if keys is not None else None
    return [[f"+3906555{index:04d}", f"N{index}", "monday", outcome, keys[index] if keys else "1"]
            for index, outcome in enumerate(outcomes)]


def drive(clock: Clock, deferred: defer.Deferred, max_steps: int = 200_000) -> Any:
    """Advance ``clock`` to each next timer until ``deferred`` fires; returns its result (raises its failure)."""
    results: list = []
    deferred.addBoth(results.append)
    steps = 0
    while not results:
        calls = clock.getDelayedCalls()
        assert calls, "nothing left to happen, and the Deferred has not fired"
        clock.advance(max(0.0, min(call.getTime() for call in calls) - clock.seconds()))
        steps += 1
        assert steps < max_steps, "the clock ran too many steps"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def new_campaign(conn, program, csv_path: Path, now: float, name: str = "t", **options):
    from autocall.campaign.setup import prepare_campaign
    merged = dict(OPTIONS, **options)
    campaign_id, report = prepare_campaign(conn, name=name, contacts_path=str(csv_path), script_path=str(SCRIPT),
                                           program=program, options=merged, now=now)
    return campaign_id, report, merged


def contacts(conn, campaign_id: int) -> list[dict]:
    return [dict(row) for row in conn.execute("SELECT * FROM contacts WHERE campaign_id = ? ORDER BY line",
                                              (campaign_id,))]

ROOT_DIR = HERE.parents[1]


def sim_pbx(program, clock, conn, *, instant: bool = False, **calls):
    """A simulated PBX for ``program`` (``calls``: ``CallSettings`` fields such as amd, caller_id, campaign)."""
    from autocall.campaign.pbx import CallSettings
    from autocall.campaign.pbx_sim import SimLine, SimPbx
    return SimPbx(conn, clock, CallSettings(**calls), SimLine(program, instant=instant))
