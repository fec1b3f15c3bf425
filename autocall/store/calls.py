"""Call records and the do-not-call list: the SQL for the ``calls`` and ``dnc`` tables."""

from __future__ import annotations

import json
import sqlite3
import time

from autocall.engine.record import CallRecord

_JSON_COLUMNS = ("path", "prompts", "inputs", "transfers", "recordings", "variables", "log")


def save_call(conn: sqlite3.Connection, record: CallRecord, *, channel: str = "",
              attempt_id: int | None = None, origin: str = "") -> None:
    """Write (or overwrite) the record of a finished call. Secret keys are already masked in ``record``."""
    conn.execute(
        "INSERT OR REPLACE INTO calls (call_id, script, caller, called, channel, started_at, ended_at, duration,"
        " ended_by, result, error, keys, path, prompts, inputs, transfers, recordings, variables, log, optout,"
        " attempt_id, origin) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (record.call_id, record.script, record.caller, record.called, channel, record.started_at,
         record.ended_at, round(record.duration, 3), record.ended_by, record.result, record.error, record.keys,
         *(json.dumps(getattr(record, column), ensure_ascii=False) for column in _JSON_COLUMNS),
         1 if record.optout else 0, attempt_id, origin))


def _row(row: sqlite3.Row) -> dict:
    data = dict(row)
    for column in _JSON_COLUMNS:
        data[column] = json.loads(data[column])
    data["optout"] = bool(data["optout"])
    return data


def recent_calls(conn: sqlite3.Connection, limit: int = 20) -> list[dict]:
    """The last ``limit`` calls, newest first."""
    rows = conn.execute("SELECT * FROM calls ORDER BY started_at DESC, rowid DESC LIMIT ?", (limit,))
    return [_row(row) for row in rows]


def call_by_id(conn: sqlite3.Connection, call_id: str) -> dict | None:
    row = conn.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    return _row(row) if row else None


def calls_for_attempt(conn: sqlite3.Connection, attempt_id: int) -> list[dict]:
    rows = conn.execute("SELECT * FROM calls WHERE attempt_id = ? ORDER BY started_at", (attempt_id,))
    return [_row(row) for row in rows]


def add_dnc(conn: sqlite3.Connection, number: str, source: str = "", when: float | None = None) -> bool:
    """Put a (normalised) number on the do-not-call list; True if it was not there yet."""
    cursor = conn.execute("INSERT OR IGNORE INTO dnc (number, added_at, source) VALUES (?, ?, ?)",
                          (number, time.time() if when is None else when, source))
    return cursor.rowcount > 0


def is_dnc(conn: sqlite3.Connection, number: str) -> bool:
    return conn.execute("SELECT 1 FROM dnc WHERE number = ?", (number,)).fetchone() is not None


def dnc_numbers(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT number FROM dnc ORDER BY number")]
