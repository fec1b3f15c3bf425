"""Campaigns, contacts, dial attempts and the dialers (workers) running them: the SQL of migrations 0002,
0003 and 0005, the same on SQLite and PostgreSQL.

The dialer's durability rule lives here: ``claim_contacts`` commits the
attempt rows (and marks their contacts ``dialling``) before the caller dials;
``finish_attempt`` closes an attempt, updates its contact and saves the call
record in one transaction. Whatever a dialer killed at any instant leaves
behind is therefore an attempt row in state ``dialling`` or ``answered``,
tagged with that dialer's worker id, which ``settle_orphans`` settles once
the worker is known dead (docs/campaigns.md, "After a crash").

Several workers share a campaign (docs/operations.md, "Several hosts"):
each registers in ``campaign_workers`` and renews a lease there. A claim
locks the campaign row (so ``--concurrency`` and ``--rate`` hold for the
campaign as a whole) and takes due contacts with ``FOR UPDATE SKIP LOCKED``
on PostgreSQL (SQLite's ``BEGIN IMMEDIATE`` already makes writers take
turns). A worker whose lease ran out, or whose process is gone on this
host, is dead: its open attempts are settled from the call records by
whichever worker sees it first. A run joining live workers must bring the
campaign's options (``claim_campaign``: else it is refused before anything
changes).

Each attempt carries a token (``AUTOCALL_ATTEMPT``, an HMAC of its id and
number under the campaign's key) that the FastAGI server redeems once
(``claim_attempt``). Answered attempts settled without a call record take
the record that comes later (``adopt_late_records``); an ``unknown`` written
for a dead worker is replaced by the real outcome when it arrives
(``finish_attempt``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import socket
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, NamedTuple

from autocall.engine.record import CallRecord
from autocall.store.calls import calls_for_attempt, save_call
from autocall.store.db import Connection, Row, engine_of, transaction

# Contact statuses and attempt states.
PENDING, DIALLING, DONE = "pending", "dialling", "done"
ANSWERED, UNKNOWN = "answered", "unknown"
CAMPAIGN_RUNNING, CAMPAIGN_PAUSED, CAMPAIGN_DONE = "running", "paused", "done"

UNKNOWN_AFTER_CRASH = ("the dialer stopped while this attempt was being dialled; not redialled automatically "
                       "(autocall campaign resume NAME --retry-unknown dials it again)")
LEASE_EXPIRED = ("its dialer stopped (lease expired) while this attempt was being dialled; not redialled "
                 "automatically (autocall campaign resume NAME --retry-unknown dials it again)")
DEFAULT_LEASE_S = 20.0
OPEN_STATES = ("dialling", "answered")
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

def create_campaign(conn: Connection, *, name: str, script: str, script_path: str, dialogue: str,
                    contacts_path: str, contacts_sha256: str, header: list[str], options: dict,
                    now: float, param_headers: dict[str, str] | None = None,
                    variables: list[str] | None = None) -> int:
    cursor = conn.execute(
        "INSERT INTO campaigns (name, script, script_path, dialogue, contacts_path, contacts_sha256, header,"
        " options, created_at, updated_at, attempt_key, param_headers, variables) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " RETURNING id",
        (name, script, script_path, dialogue, contacts_path, contacts_sha256, json.dumps(header),
         json.dumps(options, sort_keys=True), now, now, secrets.token_hex(32),
         json.dumps(param_headers or {}, ensure_ascii=False), json.dumps(variables or [])))
    return int(cursor.fetchone()[0])


def _campaign(conn: Connection, row: Row | None) -> dict | None:
    if row is None:
        return None
    data = dict(row)
    for key in ("header", "options", "param_headers", "variables"):
        data[key] = json.loads(data[key])
    data.pop("attempt_key", None)          # never leaves this module
    data["shown_state"] = shown_state(conn, data)
    return data


def campaign_by_name(conn: Connection, name: str) -> dict | None:
    return _campaign(conn, conn.execute("SELECT * FROM campaigns WHERE name = ?", (name,)).fetchone())


def campaign_names(conn: Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT name FROM campaigns ORDER BY created_at, id")]


def all_campaigns(conn: Connection) -> list[dict]:
    """Every campaign, oldest first, with its contact count (``campaign list``)."""
    rows = conn.execute("SELECT k.*, (SELECT COUNT(*) FROM contacts c WHERE c.campaign_id = k.id) AS contacts,"
                        " (SELECT COUNT(*) FROM contacts c WHERE c.campaign_id = k.id AND c.status = 'done')"
                        " AS done FROM campaigns k ORDER BY k.created_at, k.id").fetchall()
    return [_campaign(conn, row) for row in rows]


def shown_state(conn: Connection, campaign: dict, now: float | None = None) -> str:
    """The state to show: ``running`` only while a dialer (a worker) runs it; a running campaign left by
    dialers that stopped (a signal, a crash) is ``stopped``."""
    import time
    state = campaign["state"]
    if state != CAMPAIGN_RUNNING:
        return state
    now = time.time() if now is None else now
    return CAMPAIGN_RUNNING if live_workers(conn, campaign["id"], now) else CAMPAIGN_STOPPED


def finish_import(conn: Connection, campaign_id: int, contacts_sha256: str, rows_read: int,
                  blank_lines: int) -> None:
    """What reading the whole contact list told: its digest (known only once read) and its counts."""
    conn.execute("UPDATE campaigns SET contacts_sha256 = ?, rows_read = ?, blank_lines = ? WHERE id = ?",
                 (contacts_sha256, rows_read, blank_lines, campaign_id))


def update_campaign_options(conn: Connection, campaign_id: int, options: dict, now: float) -> None:
    conn.execute("UPDATE campaigns SET options = ?, updated_at = ? WHERE id = ?",
                 (json.dumps(options, sort_keys=True), now, campaign_id))


def set_campaign_state(conn: Connection, campaign_id: int, state: str, now: float) -> None:
    finished = now if state == CAMPAIGN_DONE else None
    conn.execute("UPDATE campaigns SET state = ?, updated_at = ?, finished_at = ? WHERE id = ?",
                 (state, now, finished, campaign_id))


def campaign_state(conn: Connection, campaign_id: int) -> str:
    row = conn.execute("SELECT state FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
    return row[0] if row else CAMPAIGN_DONE


def new_worker_id() -> str:
    """``host:pid:random``: unique to this run of a dialer."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def register_worker(conn: Connection, campaign_id: int, worker: str, now: float, lease_s: float,
                    pbx: str = "") -> None:
    """Join the campaign's workers (or renew a registration the others dropped), leased until ``now + lease_s``."""
    conn.execute("INSERT INTO campaign_workers (worker, campaign_id, started_at, seen_at, lease_until, pbx)"
                 " VALUES (?,?,?,?,?,?) ON CONFLICT (worker) DO UPDATE SET seen_at = excluded.seen_at,"
                 " lease_until = excluded.lease_until", (worker, campaign_id, now, now, now + lease_s, pbx))


def renew_worker(conn: Connection, campaign_id: int, worker: str, now: float, lease_s: float) -> tuple[str, bool]:
    """This worker's heartbeat. Returns the campaign's state (the pause/resume poll) and whether the
    registration was still there (False: others took it for dead and settled its attempts)."""
    row = conn.execute("UPDATE campaign_workers SET seen_at = ?, lease_until = ? WHERE worker = ?"
                       " RETURNING (SELECT state FROM campaigns WHERE id = campaign_id)",
                       (now, now + lease_s, worker)).fetchone()
    if row is not None:
        return row[0] or CAMPAIGN_DONE, True
    register_worker(conn, campaign_id, worker, now, lease_s)
    return campaign_state(conn, campaign_id), False


def release_worker(conn: Connection, worker: str) -> None:
    conn.execute("DELETE FROM campaign_workers WHERE worker = ?", (worker,))


def live_workers(conn: Connection, campaign_id: int, now: float) -> list[dict]:
    """The workers of the campaign whose lease runs and whose process (on this host) is alive."""
    rows = conn.execute("SELECT worker, started_at, seen_at, lease_until, pbx FROM campaign_workers"
                        " WHERE campaign_id = ? AND lease_until >= ? ORDER BY started_at", (campaign_id, now))
    return [dict(row) for row in rows if _alive(row["worker"])]


def _alive(worker: str) -> bool:
    """False for a worker of this host whose process is gone; another host's is trusted until its lease ends."""
    host, _, rest = worker.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Options each dialer may set for itself when it joins a campaign others run (where it dials, how fast the
# simulated PBX plays); every other option is the campaign's and must be the same for all of them.
HOST_OPTIONS = frozenset({"pbx", "sim_speed"})


def claim_campaign(conn: Connection, campaign_id: int, now: float, owner: str | None = None,
                   options: dict | None = None, lease_s: float = DEFAULT_LEASE_S) -> str | None:
    """Called before a run changes anything stored. With ``options`` (the run's): the name of a live dialer
    running the campaign whose shared options differ (the run must be refused: changing them under the
    running dialers is not its call); None when the run may go on, alone or joining them. With ``owner``:
    also join the campaign's workers under that name, leased for ``lease_s``."""
    with transaction(conn):
        campaign = conn.execute("SELECT options FROM campaigns WHERE id = ?" +
                                (" FOR UPDATE" if engine_of(conn) == "postgresql" else ""), (campaign_id,)).fetchone()
        others = [worker for worker in live_workers(conn, campaign_id, now) if worker["worker"] != owner]
        if options is not None and others:
            stored = json.loads(campaign["options"])
            if any(stored.get(key) != options.get(key) for key in set(stored) | set(options)
                   if key not in HOST_OPTIONS):
                return others[0]["worker"]
        if owner is not None:
            register_worker(conn, campaign_id, owner, now, lease_s)
    return None


def release_campaign(conn: Connection, campaign_id: int, worker: str | None = None) -> None:
    """Forget the campaign's dialers (every one, as an operator who knows they are gone; or only ``worker``)."""
    if worker is None:
        conn.execute("DELETE FROM campaign_workers WHERE campaign_id = ?", (campaign_id,))
    else:
        release_worker(conn, worker)


def has_dead_workers(conn: Connection, campaign_id: int, now: float) -> bool:
    """Whether a worker of the campaign is dead (a cheap read, before ``settle_orphans``)."""
    rows = conn.execute("SELECT worker, lease_until FROM campaign_workers WHERE campaign_id = ?", (campaign_id,))
    return any(row["lease_until"] < now or not _alive(row["worker"]) for row in rows)


def _lock_campaign(conn: Connection, campaign_id: int) -> Row | None:
    """The campaign row, locked until the end of the transaction (claims take turns on it)."""
    suffix = " FOR UPDATE" if engine_of(conn) == "postgresql" else ""
    return conn.execute(f"SELECT state, next_dial_at FROM campaigns WHERE id = ?{suffix}",
                        (campaign_id,)).fetchone()


def settle_orphans(conn: Connection, campaign_id: int, now: float, *, late_records: bool = True) -> dict[str, int]:
    """Settle the open attempts of workers that are dead (lease run out, or process gone on this host), and
    forget those workers; returns how many attempts ended each way (see ``_settle``). Attempts of live
    workers are left alone, so any worker may call this at any time. ``late_records``: also look for call
    records that came for attempts settled ``unknown`` (at start; the periodic check skips them)."""
    settled = {"answered": 0, "unknown": 0}
    with transaction(conn):
        _lock_campaign(conn, campaign_id)
        workers = {row["worker"]: row["lease_until"] for row in conn.execute(
            "SELECT worker, lease_until FROM campaign_workers WHERE campaign_id = ?", (campaign_id,))}
        dead = [worker for worker, lease in workers.items() if lease < now or not _alive(worker)]
        for worker in dead:
            conn.execute("DELETE FROM campaign_workers WHERE worker = ?", (worker,))
        live = set(workers) - set(dead)
        states = "'dialling', 'answered', 'unknown'" if late_records else "'dialling', 'answered'"
        rows = conn.execute("SELECT id, contact_id, state, amd, worker FROM attempts WHERE campaign_id = ?"
                            f" AND state IN ({states})", (campaign_id,)).fetchall()
        for row in rows:
            if row["worker"] in live:
                continue
            how = _settle(conn, row, now, expired=row["worker"] in workers)
            if how:
                settled[how] += 1
        # A contact left dialling with no open attempt cannot come from a committed transaction; heal it anyway.
        conn.execute("UPDATE contacts SET status = 'pending' WHERE campaign_id = ? AND status = 'dialling' AND"
                     " id NOT IN (SELECT contact_id FROM attempts WHERE campaign_id = ? AND state IN"
                     " ('dialling', 'answered'))", (campaign_id, campaign_id))
    return settled


# -- contacts ---------------------------------------------------------------------------------------------

def add_contact(conn: Connection, campaign_id: int, *, line: int, number: str, params: dict,
                extra: dict, sim_outcome: str = "", sim_keys: str = "", now: float,
                dnc: bool = False, timezone: str | None = None) -> bool:
    """Insert one contact; False if the campaign already has this number (a duplicate)."""
    status, outcome, detail = (DONE, "dnc", "on the do-not-call list at import") if dnc else (PENDING, None, "")
    cursor = conn.execute(
        "INSERT INTO contacts (campaign_id, line, number, params, extra, sim_outcome, sim_keys, status,"
        " outcome, detail, next_try_at, updated_at, timezone) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (campaign_id, number) DO NOTHING",
        (campaign_id, line, number, json.dumps(params, ensure_ascii=False), json.dumps(extra, ensure_ascii=False),
         sim_outcome, sim_keys, status, outcome, detail, now, now, timezone))
    return cursor.rowcount > 0


def add_contacts(conn: Connection, campaign_id: int, contacts: list, *, now: float, dnc: set[str]) -> set[str]:
    """Insert contacts (``campaign.contacts.Contact``) in one statement; returns the numbers inserted (a number
    the campaign already has, or that comes twice, is inserted once: the first time)."""
    if not contacts:
        return set()
    rows = []
    for contact in contacts:
        on_dnc = contact.number in dnc
        status, outcome, detail = (DONE, "dnc", "on the do-not-call list at import") if on_dnc else (PENDING, None, "")
        rows.append((campaign_id, contact.line, contact.number, json.dumps(contact.params, ensure_ascii=False),
                     json.dumps(contact.extra, ensure_ascii=False), contact.sim_outcome, contact.sim_keys, status,
                     outcome, detail, now, now, contact.timezone))
    marks = ",".join(["(?,?,?,?,?,?,?,?,?,?,?,?,?)"] * len(rows))
    cursor = conn.execute(
        "INSERT INTO contacts (campaign_id, line, number, params, extra, sim_outcome, sim_keys, status, outcome,"
        f" detail, next_try_at, updated_at, timezone) VALUES {marks} ON CONFLICT (campaign_id, number) DO NOTHING"
        " RETURNING number", [value for row in rows for value in row])
    return {row[0] for row in cursor.fetchall()}


def line_of_number(conn: Connection, campaign_id: int, number: str) -> int | None:
    row = conn.execute("SELECT line FROM contacts WHERE campaign_id = ? AND number = ?",
                       (campaign_id, number)).fetchone()
    return row[0] if row else None


def add_reject(conn: Connection, campaign_id: int, line: int, number: str, reason: str) -> None:
    conn.execute("INSERT INTO campaign_rejects (campaign_id, line, number, reason) VALUES (?,?,?,?)",
                 (campaign_id, line, number, reason))


def rejects(conn: Connection, campaign_id: int) -> Iterator[Row]:
    return conn.execute("SELECT line, number, reason FROM campaign_rejects WHERE campaign_id = ? ORDER BY line",
                        (campaign_id,))


def due_contacts(conn: Connection, campaign_id: int, now: float, limit: int) -> list[Row]:
    """Pending contacts whose next try is due, oldest first (served by the ``contacts_due`` index)."""
    return conn.execute(
        "SELECT id, number, params, sim_outcome, sim_keys, attempts, timezone FROM contacts"
        " WHERE campaign_id = ? AND status = 'pending' AND next_try_at <= ? ORDER BY next_try_at, id LIMIT ?",
        (campaign_id, now, limit)).fetchall()


def next_due_time(conn: Connection, campaign_id: int) -> float | None:
    """When the next pending contact becomes due; None when no contact is pending."""
    row = conn.execute("SELECT MIN(next_try_at) FROM contacts WHERE campaign_id = ? AND status = 'pending'",
                       (campaign_id,)).fetchone()
    return row[0]


def has_open_contacts(conn: Connection, campaign_id: int) -> bool:
    """Whether any contact is not done yet (pending, or left dialling)."""
    return conn.execute("SELECT 1 FROM contacts WHERE campaign_id = ? AND status != 'done' LIMIT 1",
                        (campaign_id,)).fetchone() is not None


def wait_for_window(conn: Connection, contact_id: int, opening: float, now: float) -> None:
    """The contact's calling window is closed in its time zone: due again when it opens."""
    conn.execute("UPDATE contacts SET next_try_at = ?, window_wait = 1, updated_at = ? WHERE id = ?",
                 (opening, now, contact_id))


def close_contact(conn: Connection, contact_id: int, outcome: str, detail: str, now: float) -> None:
    """End a contact without dialling it (on the do-not-call list at dial time)."""
    conn.execute("UPDATE contacts SET status = 'done', outcome = ?, detail = ?, updated_at = ? WHERE id = ?",
                 (outcome, detail, now, contact_id))


def space_from_last_dial(conn: Connection, campaign_id: int, interval: float, now: float) -> None:
    """At a worker's start: the campaign's next dial is no sooner than ``interval`` after its last one
    (however that attempt was started), and no later than ``interval`` from now."""
    last = last_attempt_time(conn, campaign_id)
    if last is None:
        return
    with transaction(conn):
        row = _lock_campaign(conn, campaign_id)
        wanted = min(last + interval, now + interval)
        if row is not None and row["next_dial_at"] < wanted:
            conn.execute("UPDATE campaigns SET next_dial_at = ? WHERE id = ?", (wanted, campaign_id))


def last_attempt_time(conn: Connection, campaign_id: int) -> float | None:
    return conn.execute("SELECT MAX(started_at) FROM attempts WHERE campaign_id = ?", (campaign_id,)).fetchone()[0]


# -- attempts -----------------------------------------------------------------------------------------------

@dataclass
class Claim:
    """What one ``claim_contacts`` took: the contacts to dial now with their attempts (committed, each with its
    token), the contacts closed on the way (on the do-not-call list), whether some were put off to their
    calling window, and, when nothing could be taken because of the campaign-wide rate, the time the next
    dial is allowed."""

    contacts: list[Row] = field(default_factory=list)
    started: list[Started] = field(default_factory=list)
    dnc: list[str] = field(default_factory=list)
    windowed: bool = False
    rate_wait_until: float | None = None
    full: bool = False                 # --concurrency calls are in flight campaign-wide
    state: str = CAMPAIGN_RUNNING

    @property
    def attempts(self) -> list[tuple[int, int]]:
        """``(attempt_id, attempt_number)`` of each contact taken."""
        return [(started.attempt_id, started.attempt_number) for started in self.started]


def claim_contacts(conn: Connection, campaign_id: int, worker: str, now: float, wanted: int, *,
                   concurrency: int, interval: float = 0.0,
                   window_opening: Callable[[str | None, float], float | None] | None = None,
                   scan: int = 0) -> Claim:
    """Take up to ``wanted`` due contacts for ``worker`` and commit an attempt for each, before any is dialled.

    In one transaction, holding the campaign row: nothing while the campaign
    is paused; no more than ``concurrency`` attempts open in the whole
    campaign (every worker's); with ``interval`` (1 / ``--rate``), one
    contact at most, and only once the campaign's previous dial is
    ``interval`` old. Contacts on the do-not-call list are closed, not
    dialled. ``window_opening(timezone, now)``: None when the contact's
    calling window is open in its time zone, else when it opens; such a
    contact waits for it (``wait_for_window``). Contacts another
    transaction is updating are skipped (``SKIP LOCKED``). Up to ``scan``
    due rows are looked at per round (two rounds at most).
    """
    claim = Claim()
    with transaction(conn):
        campaign = _lock_campaign(conn, campaign_id)
        if campaign is None:
            claim.state = CAMPAIGN_DONE
            return claim
        claim.state = campaign["state"]
        if claim.state == CAMPAIGN_PAUSED:
            return claim
        if interval:
            if now < campaign["next_dial_at"]:
                claim.rate_wait_until = campaign["next_dial_at"]
                return claim
            wanted = min(wanted, 1)
        open_now = conn.execute("SELECT COUNT(*) FROM attempts WHERE campaign_id = ? AND state IN"
                                " ('dialling', 'answered')", (campaign_id,)).fetchone()[0]
        if open_now >= concurrency:
            claim.full = True
            return claim
        wanted = min(wanted, concurrency - open_now)
        lock = " FOR UPDATE OF c SKIP LOCKED" if engine_of(conn) == "postgresql" else ""
        taken: set[int] = set()
        for _ in range(2):          # a second round when the first was spent on closed or put-off contacts
            rows = conn.execute(
                "SELECT c.id, c.number, c.params, c.sim_outcome, c.sim_keys, c.attempts, c.timezone,"
                " (SELECT COUNT(*) FROM dnc d WHERE d.number = c.number) AS on_dnc FROM contacts c"
                " WHERE c.campaign_id = ? AND c.status = 'pending' AND c.next_try_at <= ?"
                f" ORDER BY c.next_try_at, c.id LIMIT ?{lock}",
                (campaign_id, now, max(wanted, scan) + len(taken))).fetchall()
            rows = [row for row in rows if row["id"] not in taken]
            for row in rows:
                if len(claim.contacts) >= wanted:
                    break
                if row["on_dnc"]:
                    close_contact(conn, row["id"], "dnc", "on the do-not-call list at dial time", now)
                    claim.dnc.append(row["number"])
                    continue
                opening = window_opening(row["timezone"], now) if window_opening is not None else None
                if opening is not None:
                    wait_for_window(conn, row["id"], opening, now)
                    claim.windowed = True
                    continue
                claim.contacts.append(row)
                taken.add(row["id"])
            if len(claim.contacts) >= wanted or not rows:
                break
        claim.started = _begin_attempts(conn, campaign_id, claim.contacts, now, worker)
        if interval and claim.contacts:
            conn.execute("UPDATE campaigns SET next_dial_at = ? WHERE id = ?", (now + interval, campaign_id))
    return claim


def _begin_attempts(conn: Connection, campaign_id: int, contacts: list[Row], now: float,
                    worker: str) -> list[Started]:
    """One attempt per contact, and the contacts marked dialling: two statements whatever their number."""
    if not contacts:
        return []
    key = _attempt_key(conn, campaign_id)
    numbers = [contact["attempts"] + 1 for contact in contacts]
    values = [value for contact, number in zip(contacts, numbers)
              for value in (campaign_id, contact["id"], contact["number"], number, now, worker)]
    marks = ",".join(["(?,?,?,?,?,?)"] * len(contacts))
    ids = dict(conn.execute(
        "INSERT INTO attempts (campaign_id, contact_id, number, attempt_number, started_at, worker)"
        f" VALUES {marks} RETURNING contact_id, id", values).fetchall())
    marks = ",".join("?" * len(contacts))
    conn.execute(f"UPDATE contacts SET status = 'dialling', attempts = attempts + 1, window_wait = 0, updated_at = ?"
                 f" WHERE id IN ({marks})", [now, *(contact["id"] for contact in contacts)])
    return [Started(int(ids[contact["id"]]), number, _token(key, int(ids[contact["id"]]), contact["number"]))
            for contact, number in zip(contacts, numbers)]


def begin_attempts(conn: Connection, campaign_id: int, contacts: Iterable[Row], now: float,
                   worker: str = "") -> list[Started]:
    """Write and commit one attempt per contact (and mark it dialling) before any is dialled, without the
    campaign-wide rules of ``claim_contacts``. Returns a ``Started`` for each contact, in order: its token
    goes on the channel as ``AUTOCALL_ATTEMPT``."""
    with transaction(conn):
        return _begin_attempts(conn, campaign_id, list(contacts), now, worker)


def _attempt_key(conn: Connection, campaign_id: int) -> str:
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


def claim_attempt(conn: Connection, token: str, now: float) -> dict:
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


def mark_answered(conn: Connection, attempt_id: int, now: float, uniqueid: str | None = None,
                  amd: str = "") -> None:
    """The callee answered: from now on the attempt is known answered, even if the dialer dies."""
    conn.execute("UPDATE attempts SET state = 'answered', answered_at = ?, uniqueid = COALESCE(?, uniqueid),"
                 " amd = CASE WHEN ? = '' THEN amd ELSE ? END WHERE id = ?",
                 (now, uniqueid, amd, amd, attempt_id))


def note_amd(conn: Connection, attempt_id: int, status: str) -> None:
    """Record ``AMDSTATUS`` (HUMAN, MACHINE, NOTSURE) for an attempt; the FastAGI server calls it with ``--amd``."""
    conn.execute("UPDATE attempts SET amd = ? WHERE id = ?", (str(status).upper(), attempt_id))


def attempt_amd(conn: Connection, attempt_id: int) -> str:
    row = conn.execute("SELECT amd FROM attempts WHERE id = ?", (attempt_id,)).fetchone()
    return row[0] if row else ""


def finish_attempt(conn: Connection, attempt_id: int, contact_id: int, *, outcome: str, detail: str,
                   now: float, final: bool, next_try_at: float | None = None, state: str = DONE,
                   uniqueid: str | None = None, call: dict | None = None, record: CallRecord | None = None,
                   refund: bool = False) -> bool:
    """Close an attempt and update its contact in one transaction, saving ``record`` (the sim's call) with it.

    ``final``: the contact is done with this outcome; else it goes back to
    pending, due at ``next_try_at``. ``refund``: nothing was dialled, the
    attempt does not count. ``call``: ``call_id``, ``result``, ``keys``,
    ``duration`` of the answered call.

    An attempt already closed is left as it is (False), unless it was
    settled ``unknown`` because its dialer was taken for dead: the real
    outcome, arriving late, replaces that guess. The contact is updated only
    if no later attempt of it has started since.
    """
    call = call or ({"call_id": record.call_id, "result": record.result, "keys": record.keys,
                     "duration": round(record.duration, 3)} if record is not None else None)
    with transaction(conn):
        if record is not None:
            save_call(conn, record, attempt_id=attempt_id, origin="campaign", channel="sim")
        cursor = conn.execute(
            "UPDATE attempts SET state = ?, outcome = ?, reason = ?, ended_at = ?, uniqueid = COALESCE(?, uniqueid),"
            " call_id = ? WHERE id = ? AND (state IN ('dialling', 'answered') OR (state = 'unknown' AND reason IN"
            " (?, ?)))", (state, outcome, detail, now, uniqueid, call["call_id"] if call else None, attempt_id,
                          UNKNOWN_AFTER_CRASH, LEASE_EXPIRED))
        if cursor.rowcount == 0:
            return False
        conn.execute(
            "UPDATE contacts SET status = ?, outcome = ?, detail = ?, next_try_at = ?, updated_at = ?,"
            " attempts = attempts - ?, result = COALESCE(?, result), keys = COALESCE(?, keys),"
            " duration = COALESCE(?, duration), last_call_id = COALESCE(?, last_call_id) WHERE id = ?"
            " AND NOT EXISTS (SELECT 1 FROM attempts WHERE contact_id = ? AND id > ?)",
            (DONE if final else PENDING, outcome, detail, next_try_at if next_try_at is not None else now, now,
             1 if refund else 0, call.get("result") if call else None, call.get("keys") if call else None,
             call.get("duration") if call else None, call.get("call_id") if call else None, contact_id,
             contact_id, attempt_id))
    return True


def call_summary(call: dict) -> dict:
    """The parts of a call record (``store.calls`` row) a contact keeps."""
    return {"call_id": call["call_id"], "result": call["result"], "keys": call["keys"],
            "duration": call["duration"], "optout": call.get("optout", False)}


def answered_outcome(amd: str) -> str:
    return "machine" if (amd or "").upper() == "MACHINE" else ANSWERED


def recover_open_attempts(conn: Connection, campaign_id: int, now: float) -> dict[str, int]:
    """Settle what dialers that died left open (``settle_orphans``) and give answered attempts settled
    without a call record the record that came since (``adopt_late_records``); how many each way."""
    settled = settle_orphans(conn, campaign_id, now)
    settled["late_records"] = adopt_late_records(conn, campaign_id, now)
    return settled


def _settle(conn: Connection, row: Row, now: float, expired: bool) -> str | None:
    """Settle one attempt of a dead dialer:

    - a call record written for the attempt (the FastAGI server's, or a late
      one for an earlier ``unknown``): ``answered``/``machine``, with its result;
    - ``answered`` without a record: ``answered`` (the callee did answer);
    - ``dialling``: ``unknown``, final, never redialled automatically.
    """
    records = calls_for_attempt(conn, row["id"])
    if records:
        finish_attempt(conn, row["id"], row["contact_id"], outcome=answered_outcome(row["amd"]),
                       detail="answered (settled from the call record)", now=now, final=True,
                       call=call_summary(records[-1]))
        return "answered"
    if row["state"] == ANSWERED:
        finish_attempt(conn, row["id"], row["contact_id"], outcome=answered_outcome(row["amd"]),
                       detail="answered; the dialer stopped before the call ended and no call record came",
                       now=now, final=True)
        return "answered"
    if row["state"] == DIALLING:
        finish_attempt(conn, row["id"], row["contact_id"], outcome=UNKNOWN,
                       detail=LEASE_EXPIRED if expired else UNKNOWN_AFTER_CRASH, now=now, final=True, state=UNKNOWN)
        return "unknown"
    return None



def adopt_late_records(conn: Connection, campaign_id: int, now: float) -> int:
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


def retry_unknown(conn: Connection, campaign_id: int, max_attempts: int, now: float) -> int:
    """Put contacts whose outcome is ``unknown`` back in the queue (the operator's decision); how many."""
    return reopen_retryable(conn, campaign_id, max_attempts, [UNKNOWN], now)


def reopen_retryable(conn: Connection, campaign_id: int, max_attempts: int, retryable: Iterable[str],
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


def attempt_context(conn: Connection, attempt_id: int | str) -> dict | None:
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


def attempts_of_contact(conn: Connection, contact_id: int) -> list[dict]:
    return [dict(row) for row in conn.execute("SELECT * FROM attempts WHERE contact_id = ? ORDER BY id",
                                              (contact_id,))]


# -- reports --------------------------------------------------------------------------------------------------

def status_counts(conn: Connection, campaign_id: int) -> dict:
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


def export_rows(conn: Connection, campaign_id: int) -> Iterator[Row]:
    """Every contact with its results, in CSV order (a cursor: rows are streamed, not loaded)."""
    return conn.execute(
        "SELECT c.line, c.number, c.params, c.extra, c.status, c.outcome, c.detail, c.attempts, c.result, c.keys,"
        " c.duration, c.last_call_id, (SELECT MAX(started_at) FROM attempts a WHERE a.contact_id = c.id)"
        " AS last_attempt_at, k.variables FROM contacts c LEFT JOIN calls k ON k.call_id = c.last_call_id"
        " WHERE c.campaign_id = ? ORDER BY c.line", (campaign_id,))
