"""What the product's events carry, read from the database inside the transaction that queues them."""

from __future__ import annotations

import json

from autocall.store.calls import call_by_id
from autocall.store.campaigns import status_counts


def attempt_payload(conn, attempt_id: int) -> dict | None:
    """``attempt_ended``: campaign, contact number and columns, attempt, outcome, result, keys (secret ones
    already masked in the call record), duration; None when the attempt is not there."""
    row = conn.execute(
        "SELECT a.id, a.attempt_number, a.number, a.outcome, a.reason, a.started_at, a.ended_at, a.call_id,"
        " c.params, c.extra, k.name AS campaign FROM attempts AS a JOIN contacts AS c ON c.id = a.contact_id"
        " JOIN campaigns AS k ON k.id = a.campaign_id WHERE a.id = ?", (attempt_id,)).fetchone()
    if row is None:
        return None
    call = call_by_id(conn, row["call_id"]) if row["call_id"] else None
    columns = {**json.loads(row["extra"] or "{}"), **json.loads(row["params"] or "{}")}
    return {"event": "attempt_ended", "campaign": row["campaign"], "number": row["number"], "columns": columns,
            "attempt": row["attempt_number"], "outcome": row["outcome"], "detail": row["reason"],
            "result": call["result"] if call else None, "keys": call["keys"] if call else "",
            "duration": call["duration"] if call else 0, "call_id": row["call_id"],
            "started_at": row["started_at"], "ended_at": row["ended_at"]}


def campaign_payload(conn, campaign_id: int, now: float) -> dict:
    """``campaign_finished``: the campaign's counts by outcome and by result."""
    name = conn.execute("SELECT name FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()[0]
    counts = status_counts(conn, campaign_id)
    return {"event": "campaign_finished", "campaign": name, "finished_at": now, "contacts": counts["contacts"],
            "attempts": counts["attempts"], "rejected": counts["rejected"], "by_outcome": counts["by_outcome"],
            "by_result": counts["by_result"]}


def call_payload(conn, call_id: str) -> dict | None:
    """``call_ended``: the call record as ``autocall calls --json`` prints it."""
    return call_by_id(conn, call_id)
