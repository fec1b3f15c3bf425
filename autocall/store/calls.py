"""Call records and the do-not-call list: the SQL for the ``calls`` and ``dnc`` tables."""

from __future__ import annotations

import json
import time
from json.encoder import c_make_encoder, encode_basestring

from autocall.engine.record import CallRecord
from autocall.store.db import Connection, Row

JSON_COLUMNS = ("path", "prompts", "inputs", "transfers", "recordings", "variables", "log")
_COLUMNS = ("call_id, script, caller, called, channel, started_at, ended_at, duration, ended_by, result, error, keys,"
            " path, prompts, inputs, transfers, recordings, variables, log, optout, attempt_id, origin, detail")
_VALUES = "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)"
_SAVE = (f"INSERT INTO calls ({_COLUMNS}) {_VALUES} ON CONFLICT (call_id) DO UPDATE SET "
         + ", ".join(f"{column} = excluded.{column}" for column in _COLUMNS.split(", ")[1:]))
_INSERT = f"INSERT INTO calls ({_COLUMNS}) {_VALUES}"
# Most calls: no transfer, recording, log line, error, optout or campaign attempt. Those columns are then
# left to their defaults ('[]', NULL, 0: exactly what call_row would store), a quarter fewer values to bind.
_INSERT_PLAIN = ("INSERT INTO calls (call_id, script, caller, called, channel, started_at, ended_at, duration,"
                 " ended_by, result, keys, path, prompts, inputs, variables, origin, detail)"
                 " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)")
# The rows reports read (migration 0004): a state visit, an input, a transfer.
_INSERT_STATES = ("INSERT INTO call_states (call_id, seq, started_at, script, state, exit_to, revisit)"
                  " VALUES (?,?,?,?,?,?,?)")
_INSERT_INPUTS = ("INSERT INTO call_inputs (call_id, seq, started_at, script, state, op, name, keys, outcome, secret,"
                  " failure) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
_INSERT_TRANSFERS = ("INSERT INTO call_transfers (call_id, seq, started_at, script, state, destination, dialstatus)"
                     " VALUES (?,?,?,?,?,?,?)")
_DETAIL_TABLES = ("call_states", "call_inputs", "call_transfers")


def _not_json(value: object):
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


# json.dumps(value, ensure_ascii=False), with its C encoder made once rather than for every value.
_ENCODE = (c_make_encoder(None, _not_json, encode_basestring, None, ": ", ", ", False, False, True)
           if c_make_encoder is not None else None)
_join = "".join


def _json(value: object) -> str:
    """``json.dumps(value, ensure_ascii=False)``; an empty list or dict (most columns of most calls) for free."""
    if not value:
        kind = type(value)
        if kind is list:
            return "[]"
        if kind is dict:
            return "{}"
    if _ENCODE is None:
        return json.dumps(value, ensure_ascii=False)
    return _join(_ENCODE(value, 0))


def call_row(record: CallRecord, channel: str = "", attempt_id: int | None = None, origin: str = "") -> tuple:
    """The ``calls`` row of ``record``, in the column order of ``insert_calls``."""
    return (record.call_id, record.script, record.caller, record.called, channel, record.started_at,
            record.ended_at, round(record.duration, 3), record.ended_by, record.result, record.error, record.keys,
            _json(record.path), _json(record.prompts), _json(record.inputs), _json(record.transfers),
            _json(record.recordings), _json(record.variables), _json(record.log),
            1 if record.optout else 0, attempt_id, origin)


class _Details:
    """The report rows (states, inputs, transfers) of a run of records, inserted after their calls."""

    __slots__ = ("states", "inputs", "transfers")

    def __init__(self) -> None:
        self.states: list[tuple] = []
        self.inputs: list[tuple] = []
        self.transfers: list[tuple] = []

    def add(self, record: CallRecord) -> None:
        call_id, started, script = record.call_id, record.started_at, record.script
        seen: set[str] = set()
        for seq, (state, exit_to) in enumerate(zip(record.path, record.exits())):
            self.states.append((call_id, seq, started, script, state, exit_to, 1 if state in seen else 0))
            seen.add(state)
        notes = record.input_notes
        for seq, entry in enumerate(record.inputs):
            note = notes[seq] if seq < len(notes) else {}
            menu = entry["op"] == "menu"
            self.inputs.append((call_id, seq, started, script, entry["state"], entry["op"],
                                "" if menu else note.get("name"), entry["keys"], entry["outcome"],
                                1 if note.get("secret") else 0,
                                (1 if note.get("failure") else 0) if menu and note else None))
        states = record.transfer_states
        for seq, entry in enumerate(record.transfers):
            self.transfers.append((call_id, seq, started, script, states[seq] if seq < len(states) else None,
                                   entry["destination"], entry["dialstatus"]))

    def insert(self, conn: Connection) -> None:
        if self.states:
            conn.executemany(_INSERT_STATES, self.states)
        if self.inputs:
            conn.executemany(_INSERT_INPUTS, self.inputs)
        if self.transfers:
            conn.executemany(_INSERT_TRANSFERS, self.transfers)


def save_call(conn: Connection, record: CallRecord, *, channel: str = "",
              attempt_id: int | None = None, origin: str = "") -> None:
    """Write (or overwrite) the record of a finished call. Secret keys are already masked in ``record``."""
    for table in _DETAIL_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE call_id = ?", (record.call_id,))
    conn.execute(_SAVE, call_row(record, channel, attempt_id, origin))
    details = _Details()
    details.add(record)
    details.insert(conn)


def insert_calls(conn: Connection, calls: list[tuple[CallRecord, str, int | None, str]]) -> None:
    """Insert records, each given as ``(record, channel, attempt_id, origin)``, in order, a statement per run of
    records of the same shape; a ``call_id`` already stored raises an integrity error (nothing is
    overwritten: the caller decides what to do, inside its transaction). Stores what ``save_call`` would."""
    rows: list[tuple] = []
    statement = None
    details = _Details()
    for record, channel, attempt_id, origin in calls:
        details.add(record)
        if (record.error is None and attempt_id is None and not record.optout and record.transfers == []
                and record.recordings == [] and record.log == []):
            this = _INSERT_PLAIN
            row = (record.call_id, record.script, record.caller, record.called, channel, record.started_at,
                   record.ended_at, round(record.duration, 3), record.ended_by, record.result, record.keys,
                   _json(record.path), _json(record.prompts), _json(record.inputs), _json(record.variables), origin)
        else:
            this = _INSERT
            row = call_row(record, channel, attempt_id, origin)
        if this is not statement:
            if rows:
                conn.executemany(statement, rows)
                rows = []
            statement = this
        rows.append(row)
    if rows:
        conn.executemany(statement, rows)
    details.insert(conn)


def _row(row: Row) -> dict:
    data = dict(row)
    for column in JSON_COLUMNS:
        data[column] = json.loads(data[column])
    data["optout"] = bool(data["optout"])
    data.pop("detail", None)            # which report rows the record has: the store's business
    return data


def recent_calls(conn: Connection, limit: int = 20) -> list[dict]:
    """The last ``limit`` calls, newest first."""
    rows = conn.execute("SELECT * FROM calls ORDER BY started_at DESC, ended_at DESC, call_id DESC LIMIT ?",
                        (limit,))
    return [_row(row) for row in rows]


def call_exists(conn: Connection, call_id: str) -> bool:
    return conn.execute("SELECT 1 FROM calls WHERE call_id = ?", (call_id,)).fetchone() is not None


def call_by_id(conn: Connection, call_id: str) -> dict | None:
    row = conn.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    return _row(row) if row else None


def calls_for_attempt(conn: Connection, attempt_id: int) -> list[dict]:
    rows = conn.execute("SELECT * FROM calls WHERE attempt_id = ? ORDER BY started_at", (attempt_id,))
    return [_row(row) for row in rows]


def add_dnc(conn: Connection, number: str, source: str = "", when: float | None = None) -> bool:
    """Put a (normalised) number on the do-not-call list; True if it was not there yet."""
    cursor = conn.execute("INSERT INTO dnc (number, added_at, source) VALUES (?, ?, ?) ON CONFLICT (number) DO NOTHING",
                          (number, time.time() if when is None else when, source))
    return cursor.rowcount > 0


def is_dnc(conn: Connection, number: str) -> bool:
    return conn.execute("SELECT 1 FROM dnc WHERE number = ?", (number,)).fetchone() is not None


def dnc_among(conn: Connection, numbers: list[str]) -> set[str]:
    """Which of ``numbers`` are on the do-not-call list (one query)."""
    if not numbers:
        return set()
    marks = ",".join("?" * len(numbers))
    return {row[0] for row in conn.execute(f"SELECT number FROM dnc WHERE number IN ({marks})", numbers)}
