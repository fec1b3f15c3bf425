"""Migration 0004 on a database written before it: its calls get report rows from their JSON columns, and
reports over them say which figures they cannot give."""

from __future__ import annotations

import json
import sqlite3

from autocall.store import db
from autocall.store.db import connect
from tests.report.report_helpers import report_json

OLD_CALLS = [
    # call id, path, inputs, transfers, ended_by, result
    ("old1", ["main", "sales", "bye"], [{"state": "main", "op": "menu", "keys": "1", "outcome": "match"}],
     [{"destination": "PJSIP/100", "dialstatus": "NOANSWER"}], "hangup", "sales"),
    ("old2", ["main", "account", "account", "bye"],
     [{"state": "main", "op": "menu", "keys": "2", "outcome": "match"},
      {"state": "account", "op": "gather", "keys": "***", "outcome": "complete"},
      {"state": "account", "op": "gather", "keys": "", "outcome": "empty"}], [], "hangup", "bad"),
    ("old3", ["main"], [{"state": "main", "op": "menu", "keys": "", "outcome": "timeout"}], [], "caller_hangup",
     None),
    ("old4", ["main", "sales"], [{"state": "main", "op": "menu", "keys": "1", "outcome": "match"}],
     [{"destination": "PJSIP/100", "dialstatus": "ANSWER"}], "hangup", "sales"),
]
STARTED = 1_772_445_600.0            # 2026-03-02 10:00 UTC


def old_database(path: str) -> None:
    """A database as AutoCall wrote it before migration 0004."""
    conn = sqlite3.connect(path, isolation_level=None)
    for version, _name, sql in db._migrations():
        if version < 4:
            for statement in db._statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
    for index, (call_id, path_, inputs, transfers, ended_by, result) in enumerate(OLD_CALLS):
        conn.execute("INSERT INTO calls (call_id, script, started_at, ended_at, duration, ended_by, result, keys,"
                     " path, inputs, transfers) VALUES (?, 'lines', ?, ?, 30, ?, ?, '', ?, ?, ?)",
                     (call_id, STARTED + index, STARTED + index + 30, ended_by, result, json.dumps(path_),
                      json.dumps(inputs), json.dumps(transfers)))
    conn.close()


def test_old_calls_are_counted_and_the_report_says_what_it_cannot_give(tmp_path, monkeypatch, capsys):
    path = str(tmp_path / "old.db")
    old_database(path)
    connect(path).close()                      # the upgrade
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] >= 4
    monkeypatch.setenv("AUTOCALL_DATABASE", path)
    report = report_json(capsys, "--since", "2026-03-02T00:00+00:00", "--until", "2026-03-03T00:00+00:00")
    assert report["calls"] == 4
    assert {name: (entry["entered"], entry["visits"], entry["exits"]) for name, entry in report["states"].items()} == {
        "main": (4, 4, {"sales": 2, "account": 1, "(hangup)": 1}),
        "sales": (2, 2, {"bye": 1, "(end)": 1}),
        "account": (1, 2, {"account": 1, "bye": 1}),
        "bye": (2, 2, {"(end)": 2}),
    }
    inputs = {(item["state"], item["op"]): item for item in report["inputs"]}
    assert inputs[("main", "menu")]["keys"] == {"1": 2, "2": 1}
    assert inputs[("main", "menu")]["failure_not_recorded"] == 4
    assert (inputs[("account", "gather")]["secret"], inputs[("account", "gather")]["keys"]) == (True, None)
    assert report["transfers"]["answered"] == 1 and report["containment"]["contained"] == 3
    missing = report["not_recorded"]
    assert missing["calls"] == 4 and missing["transfers_without_state"] == 2
    assert any("menu failure" in figure for figure in missing["figures"])
    capsys.readouterr()
    from autocall.cli.main import main
    assert main(["report", "--since", "2026-03-02T00:00+00:00", "--until", "2026-03-03T00:00+00:00"]) == 0
    assert "4 of these calls were recorded before AutoCall kept" in capsys.readouterr().out.replace("\n", " ")


def test_new_calls_beside_old_ones_are_not_counted_as_old(tmp_path, monkeypatch, capsys, compile_text):
    from tests.report.report_helpers import LINES, simulate_into, utc
    path = str(tmp_path / "old.db")
    old_database(path)
    conn = connect(path)
    simulate_into(conn, compile_text(LINES, "lines.dlg").program, [("9 w", "")], utc(2026, 3, 2, 11, 0))
    conn.close()
    monkeypatch.setenv("AUTOCALL_DATABASE", path)
    report = report_json(capsys, "--since", "2026-03-02T00:00+00:00", "--until", "2026-03-03T00:00+00:00")
    assert report["calls"] == 5 and report["not_recorded"]["calls"] == 4
    menu = next(item for item in report["inputs"] if item["state"] == "main")
    assert (menu["failure"], menu["failure_not_recorded"]) == (1, 4)
