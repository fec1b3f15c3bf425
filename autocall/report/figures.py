"""The figures of a report, as the ``report --json`` object: built from the store's aggregates, never from
the calls one by one."""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from autocall.engine.record import ENDED_CALLER, ENDED_ERROR, ENDED_HANGUP, EXIT_ERROR, EXIT_HANGUP
from autocall.store import reports as store
from autocall.store.reports import QUARTER_HOUR_S, Scope

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NO_RESULT = "(none)"
IN_PROGRESS = "(in progress)"
ENDINGS = (ENDED_HANGUP, ENDED_CALLER, ENDED_ERROR)
PERSON, MACHINE = "answered", "machine"
DAILY_AFTER_S = 3 * 86_400        # outcomes over time: by hour for short periods, by day beyond
TOP_KEYS = 20                     # key strings listed per menu or gather; the rest are counted together
CHOSEN = frozenset({"match", "complete", "terminated"})
HISTOGRAM_S, HISTOGRAM_BUCKETS = 10, 60      # call durations by 10 s, up to 10 minutes
MAX_WORKERS = 4


def printable(text: str) -> str:
    """``text`` with control characters (a terminal escape in a result, say) shown as U+FFFD."""
    return text if text.isprintable() else "".join(ch if ch.isprintable() else "\ufffd" for ch in text)


def build_report(conn: sqlite3.Connection, scope: Scope, *, campaign: str | None = None, compare: bool = False,
                 opener: Callable[[], sqlite3.Connection] | None = None) -> dict:
    """The report of ``scope``; with ``compare``, the previous period of the same length under ``previous``.

    With ``opener`` (a function opening another connection to the same database) the queries run several
    at once, each thread on a connection of its own: SQLite computes outside the GIL.
    """
    store.refresh_statistics(conn)
    reader = _Reader(conn, opener)
    try:
        scopes = [scope]
        if compare:
            length = scope.until - scope.since
            scopes.append(Scope(scope.since - length, scope.since, scope.script, scope.campaign_id))
        fetched = [_submit(reader, each) for each in scopes]
        reports = [_figures(conn, each, campaign, {key: future.result() for key, future in rows.items()})
                   for each, rows in zip(scopes, fetched)]
    finally:
        reader.close()
    if compare:
        reports[0]["previous"] = reports[1]
    return reports[0]


class _Reader:
    """Runs the store's queries: in turn on ``conn``, or several at once with ``opener``'s connections."""

    def __init__(self, conn: sqlite3.Connection, opener: Callable[[], sqlite3.Connection] | None) -> None:
        self.conn = conn
        self._opener = opener
        self._pool = ThreadPoolExecutor(min(MAX_WORKERS, os.cpu_count() or 1)) if opener else None
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def submit(self, function: Callable, *args) -> Future:
        if self._pool is not None:
            return self._pool.submit(self._run, function, args)
        future: Future = Future()
        try:
            future.set_result(function(self.conn, *args))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def _run(self, function: Callable, args: tuple):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._opener()
            with self._lock:
                self._opened.append(conn)
        return function(conn, *args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        for conn in self._opened:
            conn.close()


def _submit(reader: _Reader, scope: Scope) -> dict[str, Future]:
    """Every aggregate of a period, the slowest first."""
    return {"states": reader.submit(store.state_exits, scope),
            "input_outcomes": reader.submit(store.input_outcomes, scope),
            "input_keys": reader.submit(store.input_keys, scope),
            "histogram": reader.submit(store.duration_histogram, scope, HISTOGRAM_S),
            "quarters": reader.submit(store.calls_by_quarter_hour, scope),
            "groups": reader.submit(store.call_groups, scope),
            "transfers": reader.submit(store.transfers, scope),
            "campaign_attempts": reader.submit(store.campaign_attempts, scope),
            "campaign_outcomes": reader.submit(store.campaign_outcomes, scope),
            "campaign_calls": reader.submit(store.campaign_calls, scope),
            "campaign_hours": reader.submit(store.campaign_outcomes_by_hour, scope)}


def _figures(conn: sqlite3.Connection, scope: Scope, campaign: str | None, rows: dict[str, list]) -> dict:
    groups = rows["groups"]
    calls = sum(row["n"] for row in groups)
    ended_by = dict.fromkeys(ENDINGS, 0)
    results: dict[str, int] = {}
    scripts: dict[str, int] = {}
    for row in groups:
        way = row["ended_by"] or ENDED_ERROR
        ended_by[way] = ended_by.get(way, 0) + row["n"]
        result = row["result"] if row["result"] is not None else NO_RESULT
        results[result] = results.get(result, 0) + row["n"]
        scripts[row["script"]] = scripts.get(row["script"], 0) + row["n"]
    seconds = sum(row["seconds"] for row in groups)
    legacy = sum(row["legacy"] for row in groups)
    transfers = _transfers(rows["transfers"])
    # An answered transfer ends the call (never in an error), and a call has at most one.
    contained = calls - ended_by[ENDED_ERROR] - transfers["answered"]
    return {
        "period": {"since": _iso(scope.since), "until": _iso(scope.until), "script": scope.script,
                   "campaign": campaign},
        "calls": calls,
        "ended_by": ended_by,
        "results": _by_count(results),
        "duration_s": {"average": _round(seconds / calls) if calls else None,
                       "median": _percentile(conn, scope, calls, 0.5),
                       "p90": _percentile(conn, scope, calls, 0.9),
                       "total": _round(seconds),
                       "histogram": _histogram(rows["histogram"]) if calls else []},
        "transfers": transfers,
        "containment": {"contained": contained, "share": _share(contained, calls)},
        "scripts": _by_count(scripts),
        "states": _states(rows["states"], several=len(scripts) > 1),
        "inputs": _inputs(rows["input_outcomes"], rows["input_keys"]),
        "by_hour": _by_hour(rows["quarters"]),
        "campaigns": _campaigns(rows, scope),
        "not_recorded": _not_recorded(conn, scope, legacy),
    }


def _by_count(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment).astimezone().isoformat(timespec="seconds")


def _round(value: float, digits: int = 3) -> float:
    return round(value, digits)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _percentile(conn: sqlite3.Connection, scope: Scope, count: int, fraction: float) -> float | None:
    """The continuous percentile (PERCENTILE_CONT): interpolated between the two nearest ranks."""
    if not count:
        return None
    rank = fraction * (count - 1)
    low = math.floor(rank)
    values = store.durations_at(conn, scope, low)
    if not values:                  # calls deleted (retention) since they were counted
        return None
    if len(values) == 1 or rank == low:
        return _round(values[0])
    return _round(values[0] + (values[1] - values[0]) * (rank - low))


def _histogram(buckets: list[tuple[int, int]]) -> list[list[int]]:
    """``[[from_s, calls], ...]`` by ``HISTOGRAM_S`` seconds; the last bucket holds everything longer."""
    counts = [0] * (HISTOGRAM_BUCKETS + 1)
    for bucket, count in buckets:
        counts[min(bucket, HISTOGRAM_BUCKETS)] += count
    while len(counts) > 1 and not counts[-1]:
        counts.pop()
    return [[index * HISTOGRAM_S, count] for index, count in enumerate(counts)]


def _transfers(rows: list) -> dict:
    by_destination: dict[str, dict[str, int]] = {}
    total = answered = 0
    for row in rows:
        by_destination.setdefault(row["destination"], {})[row["dialstatus"]] = row["n"]
        total += row["n"]
        answered += row["n"] if row["dialstatus"] == "ANSWER" else 0
    return {"total": total, "answered": answered, "by_destination": by_destination}


def _states(rows: list, several: bool) -> dict:
    """``{STATE: {"entered", "visits", "exits", "hangup_share", "error_share"}}``; ``SCRIPT:STATE`` keys
    when the period holds calls of several scripts."""
    states: dict[str, dict] = {}
    for row in rows:
        key = f"{row['script']}:{row['state']}" if several else row["state"]
        entry = states.setdefault(key, {"script": row["script"], "state": row["state"], "entered": 0, "visits": 0,
                                        "exits": {}})
        entry["entered"] += row["calls"]
        entry["visits"] += row["visits"]
        entry["exits"][row["exit_to"]] = row["visits"]
    for entry in states.values():
        entry["exits"] = dict(sorted(entry["exits"].items(), key=lambda item: (-item[1], item[0])))
        entry["hangup_share"] = _share(entry["exits"].get(EXIT_HANGUP, 0), entry["visits"])
        entry["error_share"] = _share(entry["exits"].get(EXIT_ERROR, 0), entry["visits"])
    return dict(sorted(states.items(), key=lambda item: (item[1]["script"], -item[1]["entered"], item[0])))


def _inputs(outcomes: list, keys: list) -> list[dict]:
    """One entry per menu (per state) and per gather (per state and variable), most used first."""
    found: dict[tuple, dict] = {}

    def entry(row) -> dict:
        key = (row["script"], row["state"], row["op"], row["name"])
        if key not in found:
            found[key] = {"script": row["script"], "state": row["state"], "op": row["op"],
                          "name": row["name"] or None, "count": 0, "outcomes": {}, "keys": {}, "other_keys": 0,
                          "secret": False}
        return found[key]

    failures: dict[tuple, list[int]] = {}
    for row in outcomes:
        item = entry(row)
        item["count"] += row["n"]
        item["outcomes"][row["outcome"]] = row["n"]
        item["secret"] = item["secret"] or bool(row["secret"])
        counted = failures.setdefault((row["script"], row["state"], row["op"], row["name"]), [0, 0])
        counted[0] += row["failures"] or 0
        counted[1] += row["failure_known"] or 0
    for row in keys:
        chosen = entry(row)["keys"]
        chosen[row["keys"]] = chosen.get(row["keys"], 0) + row["n"]
    for item in found.values():
        chosen = sum(n for outcome, n in item["outcomes"].items() if outcome in CHOSEN)
        item["keys"] = dict(sorted(item["keys"].items(), key=lambda pair: (-pair[1], pair[0]))[:TOP_KEYS])
        item["other_keys"] = chosen - sum(item["keys"].values())
    for key, item in found.items():
        outcomes = item["outcomes"]
        if item["op"] == "menu":
            failed, known = failures.get(key, (0, 0))
            item["invalid"] = outcomes.get("invalid", 0)
            item["timeout"] = outcomes.get("timeout", 0)
            item["failure"] = failed
            item["failure_not_recorded"] = item["count"] - known
        else:
            item["invalid"] = None
            item["timeout"] = outcomes.get("timeout", 0)
            item["failure"] = outcomes.get("empty", 0)
        if item["secret"]:
            item["keys"], item["other_keys"] = None, None
    return sorted(found.values(), key=lambda item: (item["script"], -item["count"], item["state"],
                                                    item["name"] or ""))


def _by_hour(quarters: list[tuple[int, int]]) -> dict[str, list[int]]:
    """Calls by local weekday and hour: ``{"mon": [24 counts], ...}``."""
    grid = {day: [0] * 24 for day in WEEKDAYS}
    for quarter, count in quarters:
        local = datetime.fromtimestamp(quarter * QUARTER_HOUR_S)
        grid[WEEKDAYS[local.weekday()]][local.hour] += count
    return grid


def _campaigns(rows: dict[str, list], scope: Scope) -> dict:
    campaigns: dict[int, dict] = {}
    names: dict[int, str] = {}
    for row in rows["campaign_attempts"]:
        names[row["id"]] = row["name"]
        campaigns[row["id"]] = {"script": row["dialogue"], "contacts": row["contacts"],
                                "contacts_tried": row["contacts_tried"], "attempts": row["attempts"],
                                "outcomes": {}, "answer_rate": None, "machine_rate": None, "results": {},
                                "attempts_per_contact": _round(row["attempts"] / row["contacts_tried"], 2)
                                if row["contacts_tried"] else None,
                                "average_talk_s": None, "over_time": {}}
    for row in rows["campaign_outcomes"]:
        if row["campaign_id"] in campaigns:
            campaigns[row["campaign_id"]]["outcomes"][row["outcome"] or IN_PROGRESS] = row["n"]
    talk: dict[int, list[float]] = {}
    for row in rows["campaign_calls"]:
        if row["campaign_id"] in campaigns:
            result = row["result"] if row["result"] is not None else NO_RESULT
            campaigns[row["campaign_id"]]["results"][result] = row["n"]
            spent = talk.setdefault(row["campaign_id"], [0, 0.0])
            spent[0] += row["n"]
            spent[1] += row["seconds"]
    daily = scope.until - scope.since > DAILY_AFTER_S
    for row in rows["campaign_hours"]:
        if row["campaign_id"] not in campaigns:
            continue
        start = datetime.fromtimestamp(row["hour"] * 3600).astimezone()
        label = start.strftime("%Y-%m-%d") if daily else start.strftime("%Y-%m-%d %H:00")
        bucket = campaigns[row["campaign_id"]]["over_time"].setdefault(label, {})
        outcome = row["outcome"] or IN_PROGRESS
        bucket[outcome] = bucket.get(outcome, 0) + row["n"]
    for campaign_id, item in campaigns.items():
        attempts = item["attempts"]
        item["outcomes"] = dict(sorted(item["outcomes"].items(), key=lambda pair: (-pair[1], pair[0])))
        item["results"] = dict(sorted(item["results"].items(), key=lambda pair: (-pair[1], pair[0])))
        item["answer_rate"] = _share(item["outcomes"].get(PERSON, 0), attempts)
        item["machine_rate"] = _share(item["outcomes"].get(MACHINE, 0), attempts)
        calls, seconds = talk.get(campaign_id, (0, 0.0))
        item["average_talk_s"] = _round(seconds / calls, 1) if calls else None
    return {names[campaign_id]: item for campaign_id, item in campaigns.items()}


def _not_recorded(conn: sqlite3.Connection, scope: Scope, legacy_calls: int) -> dict | None:
    """What the calls recorded before this version of AutoCall cannot tell, or None when all can."""
    if not legacy_calls:
        return None
    return {"calls": legacy_calls,
            "figures": ["menu failure counts (a menu's last try)", "gather names (their keys are counted "
                        "under the state)", "the state a transfer ran in"],
            "transfers_without_state": store.legacy_transfers(conn, scope)}
