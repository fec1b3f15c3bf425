"""Campaigns, contacts and dial attempts: the SQL of migration 0002.

The dialer's durability rule lives here: ``begin_attempts`` commits the
attempt rows (and marks their contacts ``dialling``) before the caller dials;
``finish_attempt`` closes an attempt, updates its contact and saves the call
record in one transaction. Whatever a dialer killed at any instant leaves
behind is therefore an attempt row in state ``dialling`` or ``answered``,
which ``recover_open_attempts`` settles on the next start (docs/campaigns.md,
"After a crash").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import socket
import sqlite3
from typing import Iterable, Iterator, NamedTuple

from autocall.engine.record import CallRecord
from autocall.store.calls import calls_for_attempt, save_call
from autocall.store.db import transaction

# Contact statuses and attempt states.
PENDING, DIALLING, DONE = "pending", "dialling", "done"
ANSWERED, UNKNOWN = "answered", "unknown"
CAMPAIGN_RUNNING, CAMPAIGN_PAUSED, CAMPAIGN_DONE = "running", "paused", "done"

UNKNOWN_AFTER_CRASH = ("the dialer stopped while this attempt was being dialled; not redialled automatically "
                       "(autocall campaign resume NAME --retry-unknown dials it again)")
OWNER_STALE_S = 15.0
CAMPAIGN_STOPPED = "stopped"           # shown, never stored: running, and no dialer alive
NO_SCRIPT = "no_script"                # answered, but the script never ran (no call record)


class AttemptRefused(Exception):
    """An ``AUTOCALL_ATTEMPT`` token the FastAGI server must not honour: forged, replayed, or for no attempt.
    The message says which, and never repeats the token."""


class Started(NamedTuple):
    """An attempt committed by ``begin_attempts``: its id, number (1, 2...) and token for the channel."""

    attempt_id: int
    attempt_number: int
    token: str


# -- campaigns -----------------------------------------------------------------------------------------

def create_campaign(conn: sqlite3.Connection, *, name: str, script: str, script_path: str, dialogue: str,
                    contacts_path: str, contacts_sha256: str, header: list[str], options: dict,
                    now: float, param_headers: dict[str, str] | None = None,
                    variables: list[str] | None = None) -> int:
    cursor = conn.execute(
        "INSERT INTO campaigns (name, script, script_path, dialogue, contacts_path, contacts_sha256, header,"
        " options, created_at, updated_at, attempt_key, param_headers, variables) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (name, script, script_path, dialogue, contacts_path, contacts_sha256, json.dumps(header),
         json.dumps(options, sort_keys=True), now, now, secrets.token_hex(32),
         json.dumps(param_headers or {}, ensure_ascii=False), json.dumps(variables or [])))
    return int(cursor.lastrowid)


def _campaign(row: sqlite3.Row | None) -> dict | None:
    if row is None:
        return None
    data = dict(row)
    for key in ("header", "options", "param_headers", "variables"):
        data[key] = json.loads(data[key])
    data.pop("attempt_key", None)          # never leaves this module
    data["shown_state"] = shown_state(data)
    return data


def campaign_by_name(conn: sqlite3.Connection, name: str) -> dict | None:
    return _campaign(conn.execute("SELECT * FROM campaigns WHERE name = ?", (name,)).fetchone())


def campaign_names(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT name FROM campaigns ORDER BY created_at, id")]


def all_campaigns(conn: sqlite3.Connection) -> list[dict]:
    """Every campaign, oldest first, with its contact count (``campaign list``)."""
    rows = conn.execute("SELECT k.*, (SELECT COUNT(*) FROM contacts c WHERE c.campaign_id = k.id) AS contacts,"
                        " (SELECT COUNT(*) FROM contacts c WHERE c.campaign_id = k.id AND c.status = 'done')"
                        " AS done FROM campaigns k ORDER BY k.created_at, k.id").fetchall()
    return [_campaign(row) for row in rows]


def shown_state(campaign: dict, now: float | None = None) -> str:
    """The state to show: ``running`` only while a dialer runs it; a running campaign left by a dialer that
    stopped (a signal, a crash) is ``stopped``."""
    import time
    state = campaign["state"]
    if state != CAMPAIGN_RUNNING:
        return state
    now = time.time() if now is None else now
    alive = campaign["owner"] and now - campaign["owner_seen"] < OWNER_STALE_S and _alive(campaign["owner"])
    return CAMPAIGN_RUNNING if alive else CAMPAIGN_STOPPED


def finish_import(conn: sqlite3.Connection, campaign_id: int, contacts_sha256: str, rows_read: int,
                  blank_lines: int) -> None:
    """What reading the whole contact list told: its digest (known only once read) and its counts."""
    conn.execute("UPDATE campaigns SET contacts_sha256 = ?, rows_read = ?, blank_lines = ? WHERE id = ?",
                 (contacts_sha256, rows_read, blank_lines, campaign_id))


def update_campaign_options(conn: sqlite3.Connection, campaign_id: int, options: dict, now: float) -> None:
    conn.execute("UPDATE campaigns SET options = ?, updated_at = ? WHERE id = ?",
                 (json.dumps(options, sort_keys=True), now, campaign_id))


def set_campaign_state(conn: sqlite3.Connection, campaign_id: int, state: str, now: float) -> None:
    finished = now if state == CAMPAIGN_DONE else None
    conn.execute("UPDATE campaigns SET state = ?, updated_at = ?, finished_at = ? WHERE id = ?",
                 (state, now, finished, campaign_id))


def campaign_state(conn: sqlite3.Connection, campaign_id: int) -> str:
    row = conn.execute("SELECT state FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
    return row[0] if row else CAMPAIGN_DONE


def this_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_campaign(conn: sqlite3.Connection, campaign_id: int, now: float, owner: str | None = None) -> str | None:
    """Make this process the campaign's only dialer; the other live owner's name if one is running it.

    A previous owner on this host whose process is gone, or one silent for
    ``OWNER_STALE_S`` seconds, is taken over (it was killed).
    """
    owner = owner or this_owner()
    with transaction(conn):
        row = conn.execute("SELECT owner, owner_seen FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
        current, seen = row["owner"], row["owner_seen"]
        if current and current != owner and now - seen < OWNER_STALE_S and _alive(current):
            return current
        conn.execute("UPDATE campaigns SET owner = ?, owner_seen = ? WHERE id = ?", (owner, now, campaign_id))
    return None


def _alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True          # another host: trust its heartbeat
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def heartbeat(conn: sqlite3.Connection, campaign_id: int, now: float) -> str:
    """Refresh this dialer's heartbeat; returns the campaign's state (the pause/resume poll)."""
    conn.execute("UPDATE campaigns SET owner_seen = ? WHERE id = ?", (now, campaign_id))
    return campaign_state(conn, campaign_id)


def release_campaign(conn: sqlite3.Connection, campaign_id: int) -> None:
    conn.execute("UPDATE campaigns SET owner = '', owner_seen = 0 WHERE id = ?", (campaign_id,))


# -- contacts ---------------------------------------------------------------------------------------------

def add_contact(conn: sqlite3.Connection, campaign_id: int, *, line: int, number: str, params: dict,
                extra: dict, sim_outcome: str = "", sim_keys: str = "", now: float,
                dnc: bool = False, timezone: str | None = None) -> bool:
    """Insert one contact; False if the campaign already has this number (a duplicate)."""
    status, outcome, detail = (DONE, "dnc", "on the do-not-call list at import") if dnc else (PENDING, None, "")
    cursor = conn.execute(
        "INSERT OR IGNORE INTO contacts (campaign_id, line, number, params, extra, sim_outcome, sim_keys, status,"
        " outcome, detail, next_try_at, updated_at, timezone) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (campaign_id, line, number, json.dumps(params, ensure_ascii=False), json.dumps(extra, ensure_ascii=False),
         sim_outcome, sim_keys, status, outcome, detail, now, now, timezone))
    return cursor.rowcount > 0


def line_of_number(conn: sqlite3.Connection, campaign_id: int, number: str) -> int | None:
    row = conn.execute("SELECT line FROM contacts WHERE campaign_id = ? AND number = ?",
                       (campaign_id, number)).fetchone()
    return row[0] if row else None


def add_reject(conn: sqlite3.Connection, campaign_id: int, line: int, number: str, reason: str) -> None:
    conn.execute("INSERT INTO campaign_rejects (campaign_id, line, number, reason) VALUES (?,?,?,?)",
                 (campaign_id, line, number, reason))


def rejects(conn: sqlite3.Connection, campaign_id: int) -> Iterator[sqlite3.Row]:
    return conn.execute("SELECT line, number, reason FROM campaign_rejects WHERE campaign_id = ? ORDER BY line",
                        (campaign_id,))


def due_contacts(conn: sqlite3.Connection, campaign_id: int, now: float, limit: int) -> list[sqlite3.Row]:
    """Pending contacts whose next try is due, oldest first (served by the ``contacts_due`` index)."""
    return conn.execute(
        "SELECT id, number, params, sim_outcome, sim_keys, attempts, timezone FROM contacts"
        " WHERE campaign_id = ? AND status = 'pending' AND next_try_at <= ? ORDER BY next_try_at, id LIMIT ?",
        (campaign_id, now, limit)).fetchall()


def next_due_time(conn: sqlite3.Connection, campaign_id: int) -> float | None:
    """When the next pending contact becomes due; None when no contact is pending."""
    row = conn.execute("SELECT MIN(next_try_at) FROM contacts WHERE campaign_id = ? AND status = 'pending'",
                       (campaign_id,)).fetchone()
    return row[0]


def has_open_contacts(conn: sqlite3.Connection, campaign_id: int) -> bool:
    """Whether any contact is not done yet (pending, or left dialling)."""
    return conn.execute("SELECT 1 FROM contacts WHERE campaign_id = ? AND status != 'done' LIMIT 1",
                        (campaign_id,)).fetchone() is not None


def wait_for_window(conn: sqlite3.Connection, contact_id: int, opening: float, now: float) -> None:
    """The contact's calling window is closed in its time zone: due again when it opens."""
    conn.execute("UPDATE contacts SET next_try_at = ?, window_wait = 1, updated_at = ? WHERE id = ?",
                 (opening, now, contact_id))


def close_contact(conn: sqlite3.Connection, contact_id: int, outcome: str, detail: str, now: float) -> None:
    """End a contact without dialling it (on the do-not-call list at dial time)."""
    conn.execute("UPDATE contacts SET status = 'done', outcome = ?, detail = ?, updated_at = ? WHERE id = ?",
                 (outcome, detail, now, contact_id))


def last_attempt_time(conn: sqlite3.Connection, campaign_id: int) -> float | None:
    return conn.execute("SELECT MAX(started_at) FROM attempts WHERE campaign_id = ?", (campaign_id,)).fetchone()[0]


# -- attempts -----------------------------------------------------------------------------------------------

def begin_attempts(conn: sqlite3.Connection, campaign_id: int, contacts: Iterable[sqlite3.Row],
                   now: float) -> list[Started]:
    """Write and commit one attempt per contact (and mark it dialling) before any is dialled.

    Returns a ``Started`` for each contact, in order: its token goes on the channel as ``AUTOCALL_ATTEMPT``.
    """
    started = []
    with transaction(conn):
        key = _attempt_key(conn, campaign_id)
        for contact in contacts:
            number_of_attempt = contact["attempts"] + 1
            cursor = conn.execute(
                "INSERT INTO attempts (campaign_id, contact_id, number, attempt_number, started_at)"
                " VALUES (?,?,?,?,?)", (campaign_id, contact["id"], contact["number"], number_of_attempt, now))
            conn.execute("UPDATE contacts SET status = 'dialling', attempts = ?, window_wait = 0, updated_at = ?"
                         " WHERE id = ?", (number_of_attempt, now, contact["id"]))
            attempt_id = int(cursor.lastrowid)
            started.append(Started(attempt_id, number_of_attempt, _token(key, attempt_id, contact["number"])))
    return started


def _attempt_key(conn: sqlite3.Connection, campaign_id: int) -> str:
    """The campaign's token key (made now for a campaign created before tokens existed)."""
    key = conn.execute("SELECT attempt_key FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()[0]
    if not key:
        key = secrets.token_hex(32)
        conn.execute("UPDATE campaigns SET attempt_key = ? WHERE id = ?", (key, campaign_id))
    return key


def _token(key: str, attempt_id: int, number: str) -> str:
    """``<attempt id>.<HMAC-SHA256 of id and number, 128 bits>``: unguessable, and bound to that number."""
    mac = hmac.new(bytes.fromhex(key), f"{attempt_id}:{number}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{attempt_id}.{mac}"


def claim_attempt(conn: sqlite3.Connection, token: str, now: float) -> dict:
    """The FastAGI server presents ``AUTOCALL_ATTEMPT``: the attempt's context (``attempt_context``) if the
    token is this attempt's, for its number, and used for the first time; ``AttemptRefused`` otherwise."""
    attempt_id, dot, mac = str(token).strip().partition(".")
    if not dot or not attempt_id.isdigit() or not mac:
        raise AttemptRefused("not an attempt token (forged, or from an older dialer)")
    with transaction(conn):
        row = conn.execute("SELECT a.number, a.state, a.token_used_at, k.attempt_key FROM attempts a"
                           " JOIN campaigns k ON k.id = a.campaign_id WHERE a.id = ?", (int(attempt_id),)).fetchone()
        if row is None or not row["attempt_key"] or not hmac.compare_digest(
                _token(row["attempt_key"], int(attempt_id), row["number"]), f"{int(attempt_id)}.{mac}"):
            raise AttemptRefused(f"the token does not match attempt {attempt_id} (forged)")
        if row["token_used_at"] is not None or row["state"] not in (DIALLING, ANSWERED):
            raise AttemptRefused(f"attempt {attempt_id} has already been served (a replayed token)")
        conn.execute("UPDATE attempts SET token_used_at = ? WHERE id = ?", (now, int(attempt_id)))
    return attempt_context(conn, int(attempt_id))


def mark_answered(conn: sqlite3.Connection, attempt_id: int, now: float, uniqueid: str | None = None,
                  amd: str = "") -> None:
    """The callee answered: from now on the attempt is known answered, even if the dialer dies."""
    conn.execute("UPDATE attempts SET state = 'answered', answered_at = ?, uniqueid = COALESCE(?, uniqueid),"
                 " amd = CASE WHEN ? = '' THEN amd ELSE ? END WHERE id = ?",
                 (now, uniqueid, amd, amd, attempt_id))


def note_amd(conn: sqlite3.Connection, attempt_id: int, status: str) -> None:
    """Record ``AMDSTATUS`` (HUMAN, MACHINE, NOTSURE) for an attempt; the FastAGI server calls it with ``--amd``."""
    conn.execute("UPDATE attempts SET amd = ? WHERE id = ?", (str(status).upper(), attempt_id))


def attempt_amd(conn: sqlite3.Connection, attempt_id: int) -> str:
    row = conn.execute("SELECT amd FROM attempts WHERE id = ?", (attempt_id,)).fetchone()
    return row[0] if row else ""


def finish_attempt(conn: sqlite3.Connection, attempt_id: int, contact_id: int, *, outcome: str, detail: str,
                   now: float, final: bool, next_try_at: float | None = None, state: str = DONE,
                   uniqueid: str | None = None, call: dict | None = None, record: CallRecord | None = None,
                   refund: bool = False) -> None:
    """Close an attempt and update its contact in one transaction, saving ``record`` (the sim's call) with it.

    ``final``: the contact is done with this outcome; else it goes back to
    pending, due at ``next_try_at``. ``refund``: nothing was dialled, the
    attempt does not count. ``call``: ``call_id``, ``result``, ``keys``,
    ``duration`` of the answered call.
    """
    call = call or ({"call_id": record.call_id, "result": record.result, "keys": record.keys,
                     "duration": round(record.duration, 3)} if record is not None else None)
    with transaction(conn):
        if record is not None:
            save_call(conn, record, attempt_id=attempt_id, origin="campaign", channel="sim")
        conn.execute("UPDATE attempts SET state = ?, outcome = ?, reason = ?, ended_at = ?,"
                     " uniqueid = COALESCE(?, uniqueid), call_id = ? WHERE id = ?",
                     (state, outcome, detail, now, uniqueid, call["call_id"] if call else None, attempt_id))
        conn.execute(
            "UPDATE contacts SET status = ?, outcome = ?, detail = ?, next_try_at = ?, updated_at = ?,"
            " attempts = attempts - ?, result = COALESCE(?, result), keys = COALESCE(?, keys),"
            " duration = COALESCE(?, duration), last_call_id = COALESCE(?, last_call_id) WHERE id = ?",
            (DONE if final else PENDING, outcome, detail, next_try_at if next_try_at is not None else now, now,
             1 if refund else 0, call.get("result") if call else None, call.get("keys") if call else None,
             call.get("duration") if call else None, call.get("call_id") if call else None, contact_id))


def call_summary(call: dict) -> dict:
    """The parts of a call record (``store.calls`` row) a contact keeps."""
    return {"call_id": call["call_id"], "result": call["result"], "keys": call["keys"],
            "duration": call["duration"], "optout": call.get("optout", False)}


def answered_outcome(amd: str) -> str:
    return "machine" if (amd or "").upper() == "MACHINE" else ANSWERED


def recover_open_attempts(conn: sqlite3.Connection, campaign_id: int, now: float) -> dict[str, int]:
    """Settle what a dialer that died left open; returns how many attempts ended each way.

    - a call record written for the attempt (the FastAGI server's, or a late
      one for an earlier ``unknown``): ``answered``/``machine``, with its result;
    - ``answered`` without a record: ``answered`` (the callee did answer);
    - ``dialling``: ``unknown``, final, never redialled automatically.
    Must only run while no other dialer runs the campaign (``claim_campaign``).
    """
    settled = {"answered": 0, "unknown": 0, "late_records": adopt_late_records(conn, campaign_id, now)}
    rows = conn.execute("SELECT id, contact_id, state, amd FROM attempts WHERE campaign_id = ?"
                        " AND state IN ('dialling', 'answered', 'unknown')", (campaign_id,)).fetchall()
    for row in rows:
        records = calls_for_attempt(conn, row["id"])
        if records:
            finish_attempt(conn, row["id"], row["contact_id"], outcome=answered_outcome(row["amd"]),
                           detail="answered (settled from the call record)", now=now, final=True,
                           call=call_summary(records[-1]))
            settled["answered"] += 1
        elif row["state"] == ANSWERED:
            finish_attempt(conn, row["id"], row["contact_id"], outcome=answered_outcome(row["amd"]),
                           detail="answered; the dialer stopped before the call ended and no call record came",
                           now=now, final=True)
            settled["answered"] += 1
        elif row["state"] == DIALLING:
            finish_attempt(conn, row["id"], row["contact_id"], outcome=UNKNOWN, detail=UNKNOWN_AFTER_CRASH,
                           now=now, final=True, state=UNKNOWN)
            settled["unknown"] += 1
    # A contact left dialling with no open attempt cannot come from a committed transaction; heal it anyway.
    conn.execute("UPDATE contacts SET status = 'pending' WHERE campaign_id = ? AND status = 'dialling' AND id NOT IN"
                 " (SELECT contact_id FROM attempts WHERE campaign_id = ? AND state IN ('dialling', 'answered'))",
                 (campaign_id, campaign_id))
    return settled


def adopt_late_records(conn: sqlite3.Connection, campaign_id: int, now: float) -> int:
    """Answered attempts settled without a call record take the record that came later (the FastAGI server
    wrote it after the dialer stopped waiting, or after a crash); how many."""
    rows = conn.execute(
        "SELECT a.id, a.contact_id, a.outcome, a.amd, c.call_id, c.result, c.keys, c.duration FROM attempts a"
        " JOIN calls c ON c.attempt_id = a.id WHERE a.campaign_id = ? AND a.call_id IS NULL AND a.state = 'done'"
        " AND a.outcome IN ('answered', 'machine', 'no_script') ORDER BY c.started_at", (campaign_id,)).fetchall()
    if not rows:
        return 0
    with transaction(conn):
        for row in rows:
            outcome = answered_outcome(row["amd"]) if row["outcome"] == NO_SCRIPT else row["outcome"]
            conn.execute("UPDATE attempts SET call_id = ?, outcome = ? WHERE id = ?",
                         (row["call_id"], outcome, row["id"]))
            # The contact takes it unless a later attempt already answered (a no_script retry may have).
            conn.execute("UPDATE contacts SET status = CASE WHEN status = 'pending' THEN 'done' ELSE status END,"
                         " outcome = CASE WHEN status = 'dialling' THEN outcome ELSE ? END, result = ?, keys = ?,"
                         " duration = ?, last_call_id = ?, detail = ?, updated_at = ?"
                         " WHERE id = ? AND last_call_id IS NULL",
                         (outcome, row["result"], row["keys"], row["duration"], row["call_id"],
                          "answered (its call record came later)", now, row["contact_id"]))
    return len(rows)


def retry_unknown(conn: sqlite3.Connection, campaign_id: int, max_attempts: int, now: float) -> int:
    """Put contacts whose outcome is ``unknown`` back in the queue (the operator's decision); how many."""
    return reopen_retryable(conn, campaign_id, max_attempts, [UNKNOWN], now)


def reopen_retryable(conn: sqlite3.Connection, campaign_id: int, max_attempts: int, retryable: Iterable[str],
                     now: float) -> int:
    """After ``--attempts`` was raised: contacts that ended on a retried outcome with attempts to spare go back
    in the queue, due now. Returns how many."""
    outcomes = list(retryable)
    marks = ",".join("?" * len(outcomes))
    with transaction(conn):
        cursor = conn.execute(
            f"UPDATE contacts SET status = 'pending', next_try_at = ?, updated_at = ? WHERE campaign_id = ?"
            f" AND status = 'done' AND outcome IN ({marks}) AND attempts < ?",
            (now, now, campaign_id, *outcomes, max_attempts))
        if cursor.rowcount:
            conn.execute("UPDATE campaigns SET state = 'running', finished_at = NULL WHERE id = ? AND state = 'done'",
                         (campaign_id,))
    return cursor.rowcount


def attempt_context(conn: sqlite3.Connection, attempt_id: int | str) -> dict | None:
    """What the FastAGI server needs to run an outbound call tagged ``AUTOCALL_ATTEMPT=<attempt_id>``.

    ``{"campaign", "script", "params", "number", "attempt_number", "attempt_id", "caller_id", "amd"}``,
    or None for an id that is not an attempt. ``number`` is the callee (the
    script's ``caller`` built-in and what ``optout`` adds to the do-not-call
    list); ``attempt_number`` is the ``attempt`` built-in.
    """
    try:
        key = int(str(attempt_id).strip())
    except ValueError:
        return None
    row = conn.execute(
        "SELECT a.id, a.number, a.attempt_number, c.params, k.name, k.script, k.options FROM attempts a"
        " JOIN contacts c ON c.id = a.contact_id JOIN campaigns k ON k.id = a.campaign_id WHERE a.id = ?",
        (key,)).fetchone()
    if row is None:
        return None
    options = json.loads(row["options"])
    return {"campaign": row["name"], "script": row["script"], "params": json.loads(row["params"]),
            "number": row["number"], "attempt_number": row["attempt_number"], "attempt_id": row["id"],
            "caller_id": options.get("caller_id", ""), "amd": bool(options.get("amd", False))}


def attempts_of_contact(conn: sqlite3.Connection, contact_id: int) -> list[dict]:
    return [dict(row) for row in conn.execute("SELECT * FROM attempts WHERE contact_id = ? ORDER BY id",
                                              (contact_id,))]


# -- reports --------------------------------------------------------------------------------------------------

def status_counts(conn: sqlite3.Connection, campaign_id: int) -> dict:
    """Counts for ``campaign status``: contacts by status and by outcome, attempts, rejected rows."""
    by_status = {PENDING: 0, DIALLING: 0, DONE: 0}
    by_outcome: dict[str, int] = {}
    waiting_retry = waiting_window = 0
    for row in conn.execute("SELECT status, outcome, window_wait, COUNT(*) AS n FROM contacts WHERE campaign_id = ?"
                            " GROUP BY status, outcome, window_wait", (campaign_id,)):
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        if row["status"] == DONE:
            by_outcome[row["outcome"]] = by_outcome.get(row["outcome"], 0) + row["n"]
        elif row["status"] == PENDING and row["window_wait"]:
            waiting_window += row["n"]
        elif row["status"] == PENDING and row["outcome"] is not None:
            waiting_retry += row["n"]
    by_result = {row["result"]: row["n"] for row in conn.execute(
        "SELECT result, COUNT(*) AS n FROM contacts WHERE campaign_id = ? AND status = ? AND result IS NOT NULL"
        " GROUP BY result ORDER BY n DESC, result", (campaign_id, DONE))}
    attempts = conn.execute("SELECT COUNT(*) FROM attempts WHERE campaign_id = ?", (campaign_id,)).fetchone()[0]
    rejected = conn.execute("SELECT COUNT(*) FROM campaign_rejects WHERE campaign_id = ?",
                            (campaign_id,)).fetchone()[0]
    return {"contacts": sum(by_status.values()), "by_status": by_status, "by_outcome": by_outcome,
            "by_result": by_result, "waiting_retry": waiting_retry, "waiting_window": waiting_window, "attempts": attempts, "rejected": rejected}


def export_rows(conn: sqlite3.Connection, campaign_id: int) -> Iterator[sqlite3.Row]:
    """Every contact with its results, in CSV order (a cursor: rows are streamed, not loaded)."""
    return conn.execute(
        "SELECT c.line, c.number, c.params, c.extra, c.status, c.outcome, c.detail, c.attempts, c.result, c.keys,"
        " c.duration, c.last_call_id, (SELECT MAX(started_at) FROM attempts a WHERE a.contact_id = c.id)"
        " AS last_attempt_at, k.variables FROM contacts c LEFT JOIN calls k ON k.call_id = c.last_call_id"
        " WHERE c.campaign_id = ? ORDER BY c.line", (campaign_id,))
