"""Retention, ``purge`` and ``forget``: deleting what is kept about calls and people, recordings included."""

from __future__ import annotations

import logging
import os
import re
import sqlite3

from autocall.phone import try_e164
from autocall.store import retention as store

log = logging.getLogger("autocall.privacy")


def purge_before(conn: sqlite3.Connection, cutoff: float, recordings_dir: str) -> dict:
    """Delete the call records, their recordings and the campaign attempts that started before ``cutoff``.

    Returns ``{"calls", "attempts", "recordings"}`` counts (``recordings``: files deleted).
    """
    totals = {"calls": 0, "attempts": 0, "recordings": 0}
    while True:
        done = store.delete_before(conn, cutoff)
        totals["calls"] += done["calls"]
        totals["attempts"] += done["attempts"]
        totals["recordings"] += delete_recordings(done["recordings"], recordings_dir)
        if not done["calls"] and not done["attempts"]:
            return totals


def number_forms(number: str) -> list[str]:
    """The spellings one number is stored under: as given, its digits, E.164 with and without ``+``."""
    given = number.strip()
    digits = re.sub(r"[^\d+]", "", given)
    forms = [given, digits]
    e164 = try_e164(given)
    if e164:
        forms += [e164, e164.lstrip("+")]
    return [form for index, form in enumerate(forms) if form and form not in forms[:index]]


def forget(conn: sqlite3.Connection, number: str, recordings_dir: str) -> dict:
    """Delete everything kept about the person at ``number`` except their do-not-call entry."""
    done = store.forget_numbers(conn, number_forms(number))
    done["recordings"] = delete_recordings(done["recordings"], recordings_dir)
    return done


def delete_recordings(files: list[str], recordings_dir: str) -> int:
    """Delete the recordings of deleted calls that are inside ``recordings_dir`` (never a file elsewhere:
    a record's path is data); how many were deleted. A file already gone is not an error."""
    root = os.path.realpath(recordings_dir)
    deleted = 0
    for name in files:
        path = os.path.realpath(name if os.path.isabs(name) else os.path.join(root, name))
        if os.path.commonpath([root, path]) != root:
            log.warning("recording outside recordings_dir left in place", extra={"fields": {"file": name}})
            continue
        try:
            os.remove(path)
            deleted += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not delete a recording: %s", exc.strerror, extra={"fields": {"file": name}})
    return deleted
