"""A database made by the first release upgrades to the last schema, keeping its rows."""

from __future__ import annotations

import sqlite3

from autocall.store import db


def schema(conn: sqlite3.Connection) -> set[tuple]:
    return {tuple(row) for row in conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}


def test_a_database_of_the_first_migration_upgrades_to_the_last(tmp_path):
    migrations = db._migrations()
    first_version, _name, first_sql = migrations[0]
    old = sqlite3.connect(tmp_path / "old.db")
    for statement in db._statements(first_sql):
        old.execute(statement)
    old.execute(f"PRAGMA user_version = {first_version}")
    old.execute("INSERT INTO calls (call_id, script, started_at, result) VALUES ('c1', 'support', 1.5, 'sales')")
    old.execute("INSERT INTO dnc (number, added_at) VALUES ('+15550100', 2.0)")
    old.commit()
    old.close()

    upgraded = db.connect(str(tmp_path / "old.db"))
    fresh = db.connect(str(tmp_path / "fresh.db"))
    last_version = migrations[-1][0]
    assert upgraded.execute("PRAGMA user_version").fetchone()[0] == last_version > first_version
    assert schema(upgraded) == schema(fresh)
    row = upgraded.execute("SELECT script, started_at, result FROM calls WHERE call_id = 'c1'").fetchone()
    assert tuple(row) == ("support", 1.5, "sales")
    assert upgraded.execute("SELECT number FROM dnc").fetchall()[0][0] == "+15550100"
    db.connect(str(tmp_path / "old.db")).close()       # connecting again changes nothing
