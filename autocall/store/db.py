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
        raise UserError(database_problem(path, exc)) from None
    return conn


def check_writable(conn: sqlite3.Connection, path: str) -> None:
    """A ``UserError`` now, rather than lost records later, if ``conn`` cannot write (read-only file or
    folder, a damaged file): one write of the schema version as it is, rolled back."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute(f"PRAGMA user_version = {int(version)}")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        raise UserError(database_problem(path, exc) + " (the server writes a record of every call)") from None


# SQLite's primary result codes that are about the database file, not about the data being written: a
# write that failed with one of these may succeed later as it is (once the lock is gone, space freed...).
_FILE_PROBLEMS = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY",
                  "SQLITE_CANTOPEN", "SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_PROTOCOL")


def error_name(exc: BaseException) -> str:
    """SQLite's primary result code of ``exc`` (``SQLITE_FULL``), '' when it is not an SQLite error."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if not name and isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()      # older SQLite bindings: the code only shows in the message
        name = "SQLITE_BUSY" if ("locked" in message or "busy" in message) else ""
    return "_".join(name.split("_")[:2])       # SQLITE_IOERR_WRITE -> SQLITE_IOERR


def is_file_problem(exc: BaseException) -> bool:
    """True when ``exc`` is about the database (locked, full disk, read-only, damaged), not the data."""
    return error_name(exc) in _FILE_PROBLEMS


def is_locked(exc: BaseException) -> bool:
    return error_name(exc) in ("SQLITE_BUSY", "SQLITE_LOCKED")


def database_problem(path: str, exc: BaseException) -> str:
    """One line for a user: which database, what is wrong, what to do."""
    name = error_name(exc)
    if name == "SQLITE_FULL":
        return f"{path}: the disk holding the database is full; free space there (nothing is lost meanwhile)"
    if name == "SQLITE_READONLY":
        return (f"{path}: the database is read-only; let the server's user write the file and its folder "
                "(SQLite writes -wal and -shm files beside it)")
    if name == "SQLITE_CANTOPEN":
        return (f"{path}: cannot open the database file; check that the file and its folder exist and the "
                "server's user may write both")
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        return (f"{path}: the database is damaged or not an AutoCall database ({exc}); restore it from a "
                "backup, or move it aside (or set 'database') to start a new one")
    if name == "SQLITE_IOERR":
        return f"{path}: the disk reported an I/O error ({exc}); check the disk and its free space"
    if name in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return f"{path}: the database is locked by another process; it is tried again"
    return f"{path}: not a usable AutoCall database ({exc}); point 'database' at another file"


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
