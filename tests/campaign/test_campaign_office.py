"""``autocall campaign`` as an office uses it: its own lists and numbers, the export it opens in a spreadsheet,
several databases, and a dialer stopped by a signal or refused because another one runs."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from autocall.store import campaigns as store
from autocall.store.db import connect
from campaign_helpers import HERE, ROOT_DIR, SCRIPT, contact_rows, write_csv

LISTS = HERE / "lists"
SURVEY = HERE / "scripts" / "survey.dlg"


def sim(*extra: str) -> tuple[str, ...]:
    return ("--sim-speed", "1000", "--retry-after", "0s", *extra)


def test_the_italian_excel_list_runs_with_country_it_and_exports_its_own_headers(cli, tmp_path):
    code, out, err = cli("campaign", "run", str(LISTS / "excel_italia.csv"), "--script", str(SCRIPT), "--country",
                         "IT", "--column", "number=Numero", "--column", "name=Nome", "--column", "date=Data",
                         *sim())
    assert code == 0, err
    assert "4 contacts imported from 7 rows; 3 rows skipped" in out
    assert "excel_italia.csv:5: skipped: number '339 12': too short for IT" in err
    code, out, _ = cli("campaign", "export", "excel_italia", "-o", "-")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0])[:5] == ["line", "number", "Nome", "Data", "Note"]     # the list's own headers
    assert [(r["number"], r["Nome"], r["Data"]) for r in rows][:2] == [
        ("+393331234567", "Mario Rossi", "lunedì"), ("+39061234567", "Anna Bianchi", "martedì")]


def test_a_name_column_in_capitals_is_exported_with_its_values(cli, tmp_path):
    (tmp_path / "c.csv").write_text("NUMBER,NAME,Date\n+39065550000,Ada,monday\n", encoding="utf-8")
    assert cli("campaign", "run", "c.csv", "--script", str(SCRIPT), *sim())[0] == 0
    rows = list(csv.DictReader(io.StringIO(cli("campaign", "export", "c")[1])))
    assert (rows[0]["NAME"], rows[0]["Date"]) == ("Ada", "monday")


def test_export_has_a_column_per_answer_and_neutralises_formulas(cli, tmp_path):
    (tmp_path / "s.csv").write_text("number,name,sim_keys\n+39065550000,=cmd|' /C calc'!A0,51234\n"
                                    "+39065550001,@SUM(1),\n", encoding="utf-8")
    assert cli("campaign", "run", "s.csv", "--script", str(SURVEY), *sim())[0] == 0
    code, out, _ = cli("campaign", "export", "s", "-o", "-")
    rows = list(csv.DictReader(io.StringIO(out)))
    header = list(rows[0])
    assert header[-2:] == ["comment", "score"] and "pin" not in header          # never a secret
    assert (rows[0]["score"], rows[0]["comment"], rows[0]["name"]) == ("5", "'-from the survey",
                                                                       "'=cmd|' /C calc'!A0")
    assert rows[1]["name"] == "'@SUM(1)" and rows[1]["number"] == "+39065550001"
    assert "1234" not in out


def test_the_do_not_call_file_may_not_be_older_than_dnc_max_age(cli, tmp_path):
    dnc = tmp_path / "registro.txt"
    dnc.write_text("+39 06 5550001\n")
    old = time.time() - 16 * 86400
    os.utime(dnc, (old, old))
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(["answer"]))
    code, out, err = cli("campaign", "run", str(csv_path), "--script", str(SCRIPT), "--dnc", str(dnc),
                         "--dnc-max-age", "15d", *sim())
    assert code == 1 and err.count("\n") == 1
    assert "registro.txt: the do-not-call list is 16.0 days old, older than the --dnc-max-age of 15 days" in err
    (tmp_path / "autocall.toml").write_text('dnc_max_age = "15d"\n')
    assert cli("campaign", "run", str(csv_path), "--script", str(SCRIPT), "--dnc", str(dnc), *sim())[0] == 1
    os.utime(dnc, None)
    assert cli("campaign", "run", str(csv_path), "--script", str(SCRIPT), "--dnc", str(dnc), *sim())[0] == 0


def test_campaign_list_and_database_on_every_command(cli, tmp_path):
    other = tmp_path / "other.db"
    csv_path = write_csv(tmp_path / "june.csv", contact_rows(["answer", "busy"]))
    assert cli("campaign", "run", str(csv_path), "--script", str(SCRIPT), "--database", str(other), *sim())[0] == 0
    code, out, _ = cli("campaign", "list", "--database", str(other))
    assert code == 0 and out.startswith("june") and "done" in out and "2/2" in out
    assert "no campaign in" in cli("campaign", "list")[1]
    code, _, err = cli("campaign", "status", "june")
    assert code == 1 and f"no campaign named 'june' in {tmp_path / 'autocall.db'}" in err
    for command in (("status", "june"), ("export", "june", "-o", "-"), ("pause", "june"), ("resume", "june")):
        assert cli("campaign", *command, "--database", str(other))[0] == 0, command


def test_a_refused_second_run_changes_nothing_stored(cli, tmp_path):
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(["answer"]))
    assert cli("campaign", "run", str(csv_path), "--script", str(SCRIPT), *sim())[0] == 0
    conn = connect(str(tmp_path / "autocall.db"))
    campaign = store.campaign_by_name(conn, "c")
    live_owner = f"{socket.gethostname()}:{os.getppid()}"          # another live process on this host
    assert store.claim_campaign(conn, campaign["id"], time.time(), owner=live_owner) is None
    code, _, err = cli("campaign", "run", str(csv_path), "--script", str(SCRIPT), "--attempts", "7",
                       "--concurrency", "4", *sim())
    assert code == 1 and "is being run by another dialer" in err
    assert store.campaign_by_name(conn, "c")["options"] == campaign["options"]
    store.release_campaign(conn, campaign["id"])
    code, out, _ = cli("campaign", "run", str(csv_path), "--script", str(SCRIPT), *sim())
    assert "option changed" not in out                 # the refused run left no false change behind


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_after_a_stopping_signal_status_says_stopped(tmp_path, signum):
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(["answer"] * 20))
    env = dict(os.environ, AUTOCALL_DATABASE=str(tmp_path / "autocall.db"), PYTHONPATH=str(ROOT_DIR))
    command = [sys.executable, "-m", "autocall", "campaign"]
    dialer = subprocess.Popen(command + ["run", str(csv_path), "--script", str(SCRIPT), "--concurrency", "2",
                                         "--sim-speed", "5"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while "attempt 1" not in (line := dialer.stdout.readline()):
            assert line and time.monotonic() < deadline, dialer.stderr.read()
        dialer.send_signal(signum)
        out, err = dialer.communicate(timeout=60)
    finally:
        if dialer.poll() is None:
            dialer.kill()
    assert dialer.returncode == 130, err
    status = subprocess.run(command + ["status", "c", "--json"], cwd=tmp_path, env=env, capture_output=True,
                            text=True)
    data = json.loads(status.stdout)
    assert data["state"] == "stopped" and data["by_status"]["dialling"] == 0
    with sqlite3.connect(tmp_path / "autocall.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM attempts WHERE state != 'done'").fetchone() == (0,)
