"""The SQL of ``autocall report``: every figure is a GROUP BY over calls, their report rows and campaign attempts.

Each function takes a ``Scope`` (the period and the optional script and
campaign) and returns small aggregates: a report reads a few thousand rows
whatever the number of calls. Plain SQL throughout (no JSON functions,
no date functions): times are epoch seconds, bucketed by integer division,
and turned into local weekdays and hours by the caller.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

QUARTER_HOUR_S = 900
KEYS_PER_OUTCOME = 100   # key strings read per menu or gather and outcome (the report lists the top 20)


def _bucket(conn, column: str, width: int) -> str:
    """``floor(column / width)`` for a non-negative column: SQLite's CAST truncates, PostgreSQL's rounds."""
    if isinstance(conn, sqlite3.Connection):
        return f"CAST({column} / {int(width)} AS INTEGER)"
    return f"CAST(FLOOR({column} / {int(width)}) AS BIGINT)"


@dataclass(frozen=True)
class Scope:
    """Calls that started in ``[since, until)``, of ``script`` (a dialogue name) and campaign id if given."""

    since: float
    until: float
    script: str | None = None
    campaign_id: int | None = None

    def where(self, alias: str) -> tuple[str, tuple]:
        """The WHERE condition for a table with ``call_id``, ``started_at`` and ``script`` (calls or report rows)."""
        sql = f"{alias}.started_at >= ? AND {alias}.started_at < ?"
        params: list = [self.since, self.until]
        if self.script is not None:
            sql += f" AND {alias}.script = ?"
            params.append(self.script)
        if self.campaign_id is not None:
            sql += (f" AND {alias}.call_id IN (SELECT cc.call_id FROM attempts aa CROSS JOIN calls cc"
                    " WHERE cc.attempt_id = aa.id AND aa.campaign_id = ?)")
            params.append(self.campaign_id)
        return sql, tuple(params)

    def attempts_where(self, alias: str) -> tuple[str, tuple]:
        """The WHERE condition for campaign attempts started in the period (of the campaign if given)."""
        sql = f"{alias}.started_at >= ? AND {alias}.started_at < ?"
        params: list = [self.since, self.until]
        if self.campaign_id is not None:
            sql += f" AND {alias}.campaign_id = ?"
            params.append(self.campaign_id)
        if self.script is not None:
            sql += f" AND {alias}.campaign_id IN (SELECT id FROM campaigns WHERE dialogue = ?)"
            params.append(self.script)
        return sql, tuple(params)


def refresh_statistics(conn: sqlite3.Connection) -> None:
    """Let the query planner know the tables' shapes (a sampled ANALYZE, milliseconds even on millions of
    rows), so that it reads the report indexes of migration 0004 in order rather than sorting the rows.
    Only a speed-up: a database that cannot be written to now (read-only, busy) is reported on anyway."""
    from autocall.store.db import engine_of
    if engine_of(conn) == "postgresql":
        return                          # autovacuum keeps PostgreSQL's statistics
    try:
        conn.execute("PRAGMA analysis_limit = 1000")
        conn.execute("ANALYZE")
    except sqlite3.OperationalError:
        pass


def call_groups(conn: sqlite3.Connection, scope: Scope) -> list[sqlite3.Row]:
    """Per script, ``ended_by`` and result: calls, total duration, and how many were recorded before
    report rows existed (the totals, results and scripts of a report, in one pass)."""
    where, params = scope.where("c")
    return conn.execute(
        "SELECT c.script, c.ended_by, c.result, COUNT(*) AS n, SUM(c.duration) AS seconds,"
        " SUM(CASE WHEN c.detail = 0 THEN 1 ELSE 0 END) AS legacy"
        f" FROM calls c WHERE {where} GROUP BY c.script, c.ended_by, c.result", params).fetchall()


def durations_at(conn: sqlite3.Connection, scope: Scope, offset: int) -> list[float]:
    """The durations at ranks ``offset`` and ``offset + 1`` (0-based) in increasing order: percentiles.
    (``+started_at`` keeps the planner off the time index: walking the duration index needs no sort.)"""
    where, params = scope.where("c")
    where = where.replace("c.started_at", "+c.started_at")
    return [row[0] for row in conn.execute(
        f"SELECT c.duration FROM calls c WHERE {where} ORDER BY c.duration LIMIT 2 OFFSET ?", (*params, offset))]


def duration_histogram(conn: sqlite3.Connection, scope: Scope, width_s: int) -> list[tuple[int, int]]:
    """``(bucket, calls)``: calls whose duration is in ``[bucket * width_s, (bucket + 1) * width_s)``."""
    where, params = scope.where("c")
    bucket = _bucket(conn, "c.duration", width_s)
    return [tuple(row) for row in conn.execute(
        f"SELECT {bucket} AS b, COUNT(*) FROM calls c WHERE {where} GROUP BY {bucket} ORDER BY b", params)]


def transfers(conn: sqlite3.Connection, scope: Scope) -> list[sqlite3.Row]:
    where, params = scope.where("t")
    return conn.execute(
        f"SELECT t.destination, t.dialstatus, COUNT(*) AS n FROM call_transfers t WHERE {where}"
        " GROUP BY t.destination, t.dialstatus ORDER BY t.destination, t.dialstatus", params).fetchall()


def state_exits(conn: sqlite3.Connection, scope: Scope) -> list[sqlite3.Row]:
    """Per script, state and exit: visits, and first visits (calls that entered the state)."""
    where, params = scope.where("s")
    return conn.execute(
        "SELECT s.script, s.state, s.exit_to, COUNT(*) AS visits,"
        " SUM(CASE WHEN s.revisit = 0 THEN 1 ELSE 0 END) AS calls"
        f" FROM call_states s WHERE {where} GROUP BY s.script, s.state, s.exit_to", params).fetchall()


def input_outcomes(conn: sqlite3.Connection, scope: Scope) -> list[sqlite3.Row]:
    """Per script, state, op, gather name and outcome: inputs, secret ones, menu give-ups, and how many
    of them say whether they gave up (records from before migration 0004 do not)."""
    where, params = scope.where("i")
    return conn.execute(
        "SELECT i.script, i.state, i.op, i.name, i.outcome, COUNT(*) AS n, SUM(i.secret) AS secret,"
        " SUM(CASE WHEN i.failure = 1 THEN 1 ELSE 0 END) AS failures, COUNT(i.failure) AS failure_known"
        f" FROM call_inputs i WHERE {where} GROUP BY i.script, i.state, i.op, i.name, i.outcome", params).fetchall()


def input_keys(conn: sqlite3.Connection, scope: Scope, top: int = KEYS_PER_OUTCOME) -> list[sqlite3.Row]:
    """The keys chosen (a menu's match, a gather's value), the ``top`` most frequent per menu or gather and
    outcome; secret gathers are left out. The caller merges the outcomes."""
    where, params = scope.where("i")
    return conn.execute(
        "SELECT script, state, op, name, keys, n FROM ("
        " SELECT i.script, i.state, i.op, i.name, i.keys, COUNT(*) AS n, ROW_NUMBER() OVER ("
        "  PARTITION BY i.script, i.state, i.op, i.name, i.outcome ORDER BY COUNT(*) DESC, i.keys) AS rank"
        f" FROM call_inputs i WHERE {where} AND i.secret = 0 AND i.keys <> ''"
        "  AND i.outcome IN ('match', 'complete', 'terminated')"
        " GROUP BY i.script, i.state, i.op, i.name, i.outcome, i.keys) ranked WHERE rank <= ?",
        (*params, top)).fetchall()


def calls_by_quarter_hour(conn: sqlite3.Connection, scope: Scope) -> list[tuple[int, int]]:
    """``(quarter hours since the epoch, calls)``: the caller turns them into local weekdays and hours."""
    where, params = scope.where("c")
    bucket = _bucket(conn, "c.started_at", QUARTER_HOUR_S)
    return [tuple(row) for row in conn.execute(
        f"SELECT {bucket} AS q, COUNT(*) FROM calls c WHERE {where} GROUP BY {bucket}", params)]


def legacy_transfers(conn: sqlite3.Connection, scope: Scope) -> int:
    where, params = scope.where("t")
    return conn.execute(f"SELECT COUNT(*) FROM call_transfers t WHERE {where} AND t.state IS NULL",
                        params).fetchone()[0]


# -- campaigns ---------------------------------------------------------------------------------------------

def campaign_id(conn: sqlite3.Connection, name: str) -> int | None:
    row = conn.execute("SELECT id FROM campaigns WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def campaign_attempts(conn: sqlite3.Connection, scope: Scope) -> list[sqlite3.Row]:
    """Per campaign with attempts in the period: its name, contacts in its list, attempts, contacts tried."""
    where, params = scope.attempts_where("a")
    return conn.execute(
        "SELECT k.id, k.name, k.dialogue, (SELECT COUNT(*) FROM contacts n WHERE n.campaign_id = k.id) AS contacts,"
        " COUNT(*) AS attempts, COUNT(DISTINCT a.contact_id) AS contacts_tried"
        f" FROM attempts a JOIN campaigns k ON k.id = a.campaign_id WHERE {where}"
        " GROUP BY k.id, k.name, k.dialogue ORDER BY k.name", params).fetchall()


def campaign_outcomes(conn: sqlite3.Connection, scope: Scope) -> list[sqlite3.Row]:
    """Per campaign and attempt outcome (NULL while an attempt is in progress): attempts."""
    where, params = scope.attempts_where("a")
    return conn.execute(f"SELECT a.campaign_id, a.outcome, COUNT(*) AS n FROM attempts a WHERE {where}"
                        " GROUP BY a.campaign_id, a.outcome", params).fetchall()


def campaign_calls(conn: sqlite3.Connection, scope: Scope) -> list[sqlite3.Row]:
    """Per campaign and script result: the answered calls of its attempts in the period, and their talk time.
    (CROSS JOIN: attempts first, then their calls by index, never a pass over every call.)"""
    where, params = scope.attempts_where("a")
    return conn.execute(
        "SELECT a.campaign_id, c.result, COUNT(*) AS n, COALESCE(SUM(c.duration), 0) AS seconds"
        f" FROM attempts a CROSS JOIN calls c WHERE c.attempt_id = a.id AND {where}"
        " GROUP BY a.campaign_id, c.result", params).fetchall()


def campaign_outcomes_by_hour(conn: sqlite3.Connection, scope: Scope) -> list[sqlite3.Row]:
    """Per campaign, hour since the epoch and outcome: attempts (the outcomes-over-time chart)."""
    where, params = scope.attempts_where("a")
    bucket = _bucket(conn, "a.started_at", 3600)
    return conn.execute(
        f"SELECT a.campaign_id, {bucket} AS hour, a.outcome, COUNT(*) AS n"
        f" FROM attempts a WHERE {where} GROUP BY a.campaign_id, {bucket}, a.outcome"
        " ORDER BY hour", params).fetchall()


def script_path_of_campaign(conn: sqlite3.Connection, dialogue: str) -> str | None:
    """The script file of the latest campaign that ran ``dialogue``, if any (to draw its flow graph)."""
    row = conn.execute("SELECT script_path FROM campaigns WHERE dialogue = ? ORDER BY created_at DESC LIMIT 1",
                       (dialogue,)).fetchone()
    return row[0] if row else None
