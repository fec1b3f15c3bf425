"""Opening the SQLite database and applying the schema migrations in ``migrations/`` in order."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from importlib import resources
from typing import Iterator
from pathlib import Path

from autocall.errors import UserError


def _migrations() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` for each ``NNNN_name.sql``, in version order."""
    found = []
    for entry in resources.files("autocall.store").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql") and entry.name[:4].isdigit():
            found.append((int(entry.name[:4]), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def connect(path: str) -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path`` and bring its schema up to date."""
    if path != ":memory:":
        parent = Path(path).resolve().parent
        if not parent.is_dir():
            raise UserError(f"{path}: the database's folder {parent} does not exist; create it or set 'database'")
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        if path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path}: not a usable AutoCall database ({exc}); point 'database' at another file") from None
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (the connection is in autocommit mode): committed on exit, rolled back on
    an error, a failed COMMIT included. A transaction opened inside another one joins it."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def migrate(conn: sqlite3.Connection) -> None:
    """Apply every migration newer than the database's ``user_version``, each in its own transaction."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    for version, name, sql in _migrations():
        if version <= current:
            continue
        with transaction(conn):
            if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
                continue                # another process applied it meanwhile
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (migrations hold no semicolons inside literals or triggers)."""
    return [part.strip() for part in sql.split(";") if part.strip()]
