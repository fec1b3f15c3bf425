"""The outbox table: queued deliveries of ``notify`` and events, their claims, tries and outcomes.

Delivery is at least once and in order per ``ordering_key``: only the
oldest pending row of a key can be claimed, so a row waiting for its retry
holds back the rows after it. A claim is a lease (``claimed_until``): a
process that dies mid-delivery leaves a row another process takes once the
lease is over.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATUSES = (PENDING, DELIVERED, FAILED)
KEEP_TRYING_S = 24 * 3600
FIRST_RETRY_S = 2.0
MAX_RETRY_S = 300.0


def encode_body(value: Any) -> str:
    """The JSON text sent (and signed) for a body: compact, UTF-8, keys in the order given."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def enqueue(conn, *, kind: str, service: str, path: str, body: Any, ordering_key: str, call_id: str = "",
            base_url: str = "", now: float | None = None) -> int:
    """Queue one delivery inside the caller's transaction (the caller commits); returns its id."""
    now = time.time() if now is None else now
    row = conn.execute(
        "INSERT INTO outbox (kind, service, base_url, path, body, ordering_key, idempotency_key, call_id,"
        " created_at, expires_at, next_try_at) VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
        (kind, service, base_url, path, body if isinstance(body, str) else encode_body(body), ordering_key,
         secrets.token_hex(16), call_id, now, now + KEEP_TRYING_S, now)).fetchone()
    return row[0]


def claim_due(conn, worker: str, now: float, limit: int, lease_s: float) -> list[dict]:
    """Claim up to ``limit`` rows due now, each the oldest pending one of its ordering key (call inside a
    transaction: the claim and the choice are one step)."""
    rows = conn.execute(
        "SELECT * FROM outbox AS o WHERE status = ? AND next_try_at <= ? AND claimed_until <= ?"
        " AND NOT EXISTS (SELECT 1 FROM outbox AS p WHERE p.ordering_key = o.ordering_key"
        "   AND p.status = ? AND p.id < o.id)"
        " ORDER BY next_try_at, id LIMIT ?", (PENDING, now, now, PENDING, limit)).fetchall()
    claimed = []
    for row in rows:
        done = conn.execute("UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ? AND status = ?"
                            " AND claimed_until <= ?", (worker, now + lease_s, row["id"], PENDING, now))
        if done.rowcount == 1:
            claimed.append(dict(row))
    return claimed


def next_due(conn) -> float | None:
    """When the next pending row is due (or its claim lapses), None when nothing is pending."""
    row = conn.execute("SELECT MIN(CASE WHEN claimed_until > next_try_at THEN claimed_until ELSE next_try_at END)"
                       " FROM outbox WHERE status = ?", (PENDING,)).fetchone()
    return row[0]


def retry_delay(tries: int) -> float:
    """The wait after the ``tries``-th failed try: 2 s, 4 s, 8 s... up to 5 minutes."""
    return min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** max(0, tries - 1))


def mark_delivered(conn, row_id: int, worker: str, status: int, now: float) -> None:
    conn.execute("UPDATE outbox SET status = ?, tries = tries + 1, last_status = ?, last_error = '',"
                 " finished_at = ?, claimed_by = '', claimed_until = 0 WHERE id = ? AND claimed_by = ?",
                 (DELIVERED, status, now, row_id, worker))


def mark_failed(conn, row_id: int, worker: str, status: int, error: str, now: float) -> None:
    conn.execute("UPDATE outbox SET status = ?, tries = tries + 1, last_status = ?, last_error = ?,"
                 " finished_at = ?, claimed_by = '', claimed_until = 0 WHERE id = ? AND claimed_by = ?",
                 (FAILED, status, error, now, row_id, worker))


def mark_retry(conn, row_id: int, worker: str, status: int, error: str, now: float,
               not_before: float | None = None) -> str:
    """A try that may succeed later: due again after a growing delay (or ``not_before``, a Retry-After);
    failed once it has been tried for 24 hours. Returns the row's new status."""
    row = conn.execute("SELECT tries, expires_at FROM outbox WHERE id = ? AND claimed_by = ?",
                       (row_id, worker)).fetchone()
    if row is None:
        return PENDING                       # our claim lapsed and another process has it now
    tries = row["tries"] + 1
    when = now + retry_delay(tries)
    if not_before is not None:
        when = max(when, min(not_before, now + MAX_RETRY_S))
    if when > row["expires_at"]:
        mark_failed(conn, row_id, worker, status, f"gave up after 24 hours: {error}", now)
        return FAILED
    conn.execute("UPDATE outbox SET tries = ?, last_status = ?, last_error = ?, next_try_at = ?,"
                 " claimed_by = '', claimed_until = 0 WHERE id = ? AND claimed_by = ?",
                 (tries, status, error, when, row_id, worker))
    return PENDING


def release(conn, worker: str) -> None:
    """Give back this process's claims (at a clean stop)."""
    conn.execute("UPDATE outbox SET claimed_by = '', claimed_until = 0 WHERE claimed_by = ? AND status = ?",
                 (worker, PENDING))


def retry(conn, row_id: int, now: float) -> dict | None:
    """``autocall outbox --retry ID``: a failed (or waiting) row due now, with 24 hours again; None if no such
    row; a delivered row is left as it is."""
    row = conn.execute("SELECT * FROM outbox WHERE id = ?", (row_id,)).fetchone()
    if row is None or row["status"] == DELIVERED:
        return dict(row) if row else None
    conn.execute("UPDATE outbox SET status = ?, next_try_at = ?, expires_at = ?, finished_at = NULL"
                 " WHERE id = ?", (PENDING, now, now + KEEP_TRYING_S, row_id))
    return dict(conn.execute("SELECT * FROM outbox WHERE id = ?", (row_id,)).fetchone())


def listing(conn, *, status: str | None = None, limit: int = 50) -> list[dict]:
    """Rows newest first (only ``status`` when given)."""
    if status is None:
        rows = conn.execute("SELECT * FROM outbox ORDER BY id DESC LIMIT ?", (limit,))
    else:
        rows = conn.execute("SELECT * FROM outbox WHERE status = ? ORDER BY id DESC LIMIT ?", (status, limit))
    return [dict(row) for row in rows]


def counts(conn) -> dict[str, int]:
    found = {status: 0 for status in STATUSES}
    for row in conn.execute("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status"):
        found[row["status"]] = row["n"]
    return found


def row_by_id(conn, row_id: int) -> dict | None:
    row = conn.execute("SELECT * FROM outbox WHERE id = ?", (row_id,)).fetchone()
    return dict(row) if row else None
