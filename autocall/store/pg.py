"""PostgreSQL behind a psycopg 3 connection pool, offering the part of ``sqlite3.Connection`` the store uses.

The store writes its SQL once, in the dialect both engines share
(``?`` placeholders, ``ON CONFLICT``, ``RETURNING``); ``PgDatabase`` turns
``?`` into psycopg's ``%s`` and hands back rows that read like
``sqlite3.Row`` (by position, by name, ``dict(row)``).

Each statement outside a transaction borrows a pooled connection in
autocommit mode and gives it back at once, so a connection broken by a
PostgreSQL restart is dropped by the pool and the next statement gets a
fresh one. ``transaction()`` pins one connection to the calling thread
until the COMMIT. Results are read in full before the connection goes back
(the store's queries are bounded; exports page by themselves).
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.types.numeric import FloatLoader
from psycopg_pool import ConnectionPool, PoolTimeout

# The pool's own notes on broken connections would repeat ours ("database unavailable", "database back").
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
DEFAULT_POOL_SIZE = 4


def shown(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://..."
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{netloc}", parts.path, parts.query, parts.fragment))


class Row:
    """One result row: ``row[0]``, ``row["name"]``, ``dict(row)``, like ``sqlite3.Row``."""

    __slots__ = ("_values", "_index")

    def __init__(self, values: Sequence, index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key):
        if type(key) is str:
            return self._values[self._index[key]]
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values))!r})"


class Result:
    """What a statement gave back, read in full: the rows (if any) and ``rowcount``."""

    __slots__ = ("_rows", "_position", "rowcount")

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self._rows = rows
        self._position = 0
        self.rowcount = rowcount

    def fetchone(self) -> Row | None:
        if self._position >= len(self._rows):
            return None
        self._position += 1
        return self._rows[self._position - 1]

    def fetchall(self) -> list[Row]:
        rows = self._rows[self._position:]
        self._position = len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


_QUERIES: dict[str, str] = {}


def to_format(sql: str) -> str:
    """``?`` placeholders (outside quotes) to ``%s``; a literal ``%`` doubled. Memoised."""
    done = _QUERIES.get(sql)
    if done is not None:
        return done
    out = []
    quote = None
    for char in sql:
        if quote:
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        if char == "%":
            out.append("%%")
            continue
        out.append(char)
    done = _QUERIES[sql] = "".join(out)
    return done


def _read(cursor: psycopg.Cursor) -> Result:
    if cursor.description is None:
        return Result([], cursor.rowcount)
    index = {column.name: position for position, column in enumerate(cursor.description)}
    return Result([Row(values, index) for values in cursor.fetchall()], cursor.rowcount)


def _configure(conn: psycopg.Connection) -> None:
    # SUM() and AVG() are numeric in PostgreSQL: floats here, as SQLite gives them.
    conn.adapters.register_loader("numeric", FloatLoader)


class PgDatabase:
    """A pool of connections to one PostgreSQL database; see the module docstring."""

    engine = "postgresql"

    def __init__(self, url: str, *, max_size: int = DEFAULT_POOL_SIZE, timeout: float = 10.0,
                 application_name: str = "autocall") -> None:
        self.url = url
        self.timeout = timeout
        self._local = threading.local()
        self.pool = ConnectionPool(
            url, min_size=1, max_size=max_size, open=False, timeout=timeout, configure=_configure,
            check=ConnectionPool.check_connection, name="autocall",
            kwargs={"autocommit": True, "application_name": application_name, "connect_timeout": 5})

    def open(self, wait_s: float | None = None) -> None:
        self.pool.open(wait=True, timeout=wait_s if wait_s is not None else self.timeout)

    def set_wait(self, seconds: float) -> None:
        """How long a statement may wait for a pooled connection before failing (``PoolTimeout``)."""
        self.timeout = seconds
        self.pool.timeout = seconds

    def close(self) -> None:
        self.pool.close()

    # -- statements ---------------------------------------------------------------------------------------
    @property
    def in_transaction(self) -> bool:
        return getattr(self._local, "conn", None) is not None

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            yield pinned
        else:
            with self.pool.connection() as conn:
                yield conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        with self._connection() as conn:
            return _read(conn.execute(to_format(sql), tuple(params)))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Result:
        with self._connection() as conn:
            cursor = conn.cursor()
            cursor.executemany(to_format(sql), list(rows))
            return Result([], cursor.rowcount)

    @contextmanager
    def transaction(self) -> Iterator["PgDatabase"]:
        """One transaction on a connection pinned to this thread; a nested one joins it."""
        if self.in_transaction:
            yield self
            return
        with self.pool.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    yield self
            finally:
                self._local.conn = None


def unavailable_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "PostgreSQL cannot be reached now" (down, restarting, failing over)."""
    return (psycopg.OperationalError, PoolTimeout, psycopg.errors.AdminShutdown,
            psycopg.errors.CannotConnectNow)
