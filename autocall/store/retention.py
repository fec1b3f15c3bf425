"""Deleting what is kept about calls: everything older than a date (retention, ``purge``) or about one
person (``forget``). The do-not-call list is never touched here: it is what keeps a person from being called."""

from __future__ import annotations

import json
import sqlite3

from autocall.store.db import transaction

# Attempts a dialer may still be working on are never deleted (their contact would be dialled again).
_OPEN_ATTEMPTS = "('dialling', 'answered')"


def _recordings(conn: sqlite3.Connection, where: str, params: tuple) -> list[str]:
    files: list[str] = []
    for (column,) in conn.execute(f"SELECT recordings FROM calls WHERE recordings <> '[]' AND ({where})", params):
        files.extend(json.loads(column))
    return files


def delete_before(conn: sqlite3.Connection, cutoff: float, chunk: int = 5000) -> dict:
    """Delete up to ``chunk`` call records (with their report rows) and ``chunk`` campaign attempts that
    started before ``cutoff``, in one short transaction (the server's writes wait no longer than that).

    Returns ``{"calls": N, "attempts": N, "recordings": [files the deleted calls had recorded]}``; the
    caller deletes the files (after the commit: a file is never gone while its record is still there) and
    calls again until both counts are 0.
    """
    oldest = "SELECT call_id FROM calls WHERE started_at < ? ORDER BY started_at LIMIT ?"
    with transaction(conn):
        files = _recordings(conn, f"call_id IN ({oldest})", (cutoff, chunk))
        calls = conn.execute(f"DELETE FROM calls WHERE call_id IN ({oldest})", (cutoff, chunk)).rowcount
        attempts = conn.execute(
            f"DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE started_at < ?"
            f" AND state NOT IN {_OPEN_ATTEMPTS} ORDER BY started_at LIMIT ?)", (cutoff, chunk)).rowcount
    return {"calls": calls, "attempts": attempts, "recordings": files}


def forget_numbers(conn: sqlite3.Connection, numbers: list[str]) -> dict:
    """Delete everything kept about the person with these numbers (the spellings of one number): the calls
    they made or received, campaign contacts with their columns, answers and attempts, rejected CSV rows.

    Returns the counts, the recordings to delete, and whether the number stays on the do-not-call list.
    """
    marks = ",".join("?" * len(numbers))
    values = tuple(numbers)
    with transaction(conn):
        contact_ids = f"SELECT id FROM contacts WHERE number IN ({marks})"
        of_attempts = f"attempt_id IN (SELECT id FROM attempts WHERE contact_id IN ({contact_ids}))"
        where = f"caller IN ({marks}) OR called IN ({marks}) OR {of_attempts}"
        params = values * 3
        files = _recordings(conn, where, params)
        calls = conn.execute(f"DELETE FROM calls WHERE {where}", params).rowcount
        attempts = conn.execute(f"DELETE FROM attempts WHERE contact_id IN ({contact_ids})", values).rowcount
        contacts = conn.execute(f"DELETE FROM contacts WHERE number IN ({marks})", values).rowcount
        rejects = conn.execute(f"DELETE FROM campaign_rejects WHERE number IN ({marks})", values).rowcount
        on_dnc = conn.execute(f"SELECT 1 FROM dnc WHERE number IN ({marks}) LIMIT 1", values).fetchone() is not None
    return {"calls": calls, "attempts": attempts, "contacts": contacts, "rejected_rows": rejects,
            "recordings": files, "on_dnc": on_dnc}
