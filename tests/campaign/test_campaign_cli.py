"""``autocall campaign run/status/export/pause/resume`` as a user runs them: exit codes, one-line errors, output."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from autocall.cli.main import main
from campaign_helpers import ROOT_DIR, SCRIPT, contact_rows, write_csv


def run_args(csv_path, *extra):
    return ("campaign", "run", str(csv_path), "--script", str(SCRIPT), "--sim-speed", "1000",
            "--retry-after", "0s", *extra)


def test_run_calls_everyone_then_status_and_export_show_each_contacts_result(cli, tmp_path):
    rows = contact_rows(["answer", "busy", "answer", "machine"], keys=["1", "", "9", ""])
    rows.append(["not-a-number", "X", "monday", "", ""])
    csv_path = write_csv(tmp_path / "june.csv", rows, header=["number", "name", "date", "sim_outcome", "sim_keys"])
    code, out, err = cli(*run_args(csv_path, "--attempts", "2", "--amd"))
    assert code == 0, err
    assert "campaign june: 4 contacts imported from 5 rows; 1 rows skipped" in out
    assert "june.csv:6: skipped: number 'not-a-number'" in err
    assert "campaign june: done" in out

    code, out, _ = cli("campaign", "status", "june", "--json")
    status = json.loads(out)
    assert status["by_outcome"] == {"answered": 2, "busy": 1, "machine": 1} and status["attempts"] == 5

    code, out, _ = cli("campaign", "export", "june", "-o", "results.csv")
    assert code == 0 and "results.csv: 4 contacts of campaign june" in out
    with open(tmp_path / "results.csv", newline="", encoding="utf-8") as handle:
        exported = list(csv.DictReader(handle))
    assert [(r["number"], r["name"], r["outcome"], r["attempts"], r["result"], r["keys"]) for r in exported] == [
        ("+39065550000", "N0", "answered", "1", "confirmed", "1"),
        ("+39065550001", "N1", "busy", "2", "", ""),
        ("+39065550002", "N2", "answered", "1", "optout", "9"),
        ("+39065550003", "N3", "machine", "1", "voicemail", "")]
    assert all(float(r["duration"]) > 0 for r in exported if r["outcome"] in ("answered", "machine"))

    code, out, _ = cli("campaign", "export", "june", "--rejected")
    assert list(csv.reader(out.splitlines()))[1][:2] == ["6", "not-a-number"]

    # The opted-out number is on the do-not-call list for every later campaign.
    with sqlite3.connect(tmp_path / "autocall.db") as conn:
        assert conn.execute("SELECT source FROM dnc WHERE number = '+39065550002'").fetchone() == ("optout:june",)


def test_running_the_same_command_again_resumes_and_raised_attempts_reopen_busy_contacts(cli, tmp_path):
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(["busy", "answer"]))
    assert cli(*run_args(csv_path, "--attempts", "1"))[0] == 0
    code, out, _ = cli(*run_args(csv_path, "--attempts", "2"))
    assert code == 0
    assert "resuming" in out and "option changed since the last run: attempts 1 -> 2" in out
    assert "1 contacts get more attempts" in out
    status = json.loads(cli("campaign", "status", "c", "--json")[1])
    assert status["attempts"] == 3 and status["by_outcome"] == {"answered": 1, "busy": 1}


def test_a_changed_contact_list_under_the_same_name_is_refused(cli, tmp_path):
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(["answer"]))
    assert cli(*run_args(csv_path))[0] == 0
    write_csv(csv_path, contact_rows(["answer", "busy"]))
    code, _, err = cli(*run_args(csv_path))
    assert code == 1 and err.count("\n") == 1
    assert "campaign 'c' was started from a different contact list" in err


def test_numbers_on_the_dnc_file_are_never_called(cli, tmp_path):
    (tmp_path / "dnc.txt").write_text("+39 06 5550001\n")
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(["answer", "answer"]))
    code, out, _ = cli(*run_args(csv_path, "--dnc", "dnc.txt"))
    assert code == 0 and "1 on the do-not-call list (not called)" in out
    with sqlite3.connect(tmp_path / "autocall.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM attempts WHERE number = '+39065550001'").fetchone() == (0,)


@pytest.mark.parametrize("extra, message", [
    (("--rate", "fast"), "--rate 'fast': write dials per time unit"),
    (("--concurrency", "0"), "--concurrency 0: must be at least 1"),
    (("--retry-after", "answered=5m"), "'answered' is not retried"),
    (("--retry-after", "5"), "has no unit"),
    (("--window", "weekdays 9-5"), "--window 'weekdays 9-5'"),
    (("--window", "mon-fri 09:00-17:00", "--timezone", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
    (("--timezone", "Europe/Rome"), "--timezone applies to --window"),
    (("--pbx", "ami://autocall:Hunter2@pbx:5038"), "do not put the AMI secret in the URL"),
    (("--pbx", "ami://autocall@pbx:5038", "--channel", "PJSIP/trunk"), "must contain {number}"),
    (("--pbx", "ami://autocall@pbx:5038"), "no AMI secret"),
    (("--pbx", "carrier-pigeon"), "--pbx: write 'sim' or ami://USER@HOST:5038"),
])
def test_bad_options_are_one_clear_line_and_exit_1(cli, tmp_path, extra, message):
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(["answer"]))
    code, out, err = cli(*run_args(csv_path, *extra))
    assert code == 1
    assert err.startswith("autocall: error: ") and err.count("\n") == 1 and message in err, err
    assert "Hunter2" not in out + err


@pytest.mark.parametrize("text, message", [
    ("phone,name,date\n5551234,A,mon\n", "no 'number' column"),
    ("number,name\n5551234,A\n", "needs the param column(s) 'date'"),
    ("number,name,date\nbad,A,mon\n", "no contact to call (1 rows skipped"),
])
def test_unusable_contact_lists_are_one_clear_line_and_exit_1(cli, tmp_path, text, message):
    (tmp_path / "c.csv").write_text(text)
    code, _, err = cli(*run_args(tmp_path / "c.csv"))
    lines = [line for line in err.splitlines() if line.startswith("autocall: error:")]
    assert code == 1 and len(lines) == 1 and message in lines[0], err


def test_unknown_campaign_names_and_missing_subcommands(cli, tmp_path):
    csv_path = write_csv(tmp_path / "reminders.csv", contact_rows(["answer"]))
    cli(*run_args(csv_path))
    code, _, err = cli("campaign", "status", "reminder")
    database = tmp_path / "autocall.db"
    assert code == 1 and f"no campaign named 'reminder' in {database} (did you mean 'reminders'?)" in err
    with pytest.raises(SystemExit) as caught:
        main(["campaign"])
    assert caught.value.code == 2


def test_pause_from_another_process_stops_new_dials_and_resume_lets_them_go_on(tmp_path):
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(["answer"] * 12))
    env = dict(os.environ, AUTOCALL_DATABASE=str(tmp_path / "autocall.db"), PYTHONPATH=str(ROOT_DIR))
    command = [sys.executable, "-m", "autocall", "campaign"]
    dialer = subprocess.Popen(command + ["run", str(csv_path), "--script", str(SCRIPT), "--concurrency", "2",
                                         "--sim-speed", "15"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)

    def attempts() -> int:
        try:
            with sqlite3.connect(tmp_path / "autocall.db") as conn:
                return conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        except sqlite3.OperationalError:
            return 0

    try:
        deadline = time.monotonic() + 20
        while attempts() < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        paused = subprocess.run(command + ["pause", "c"], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert paused.returncode == 0 and "paused" in paused.stdout
        time.sleep(1.5)                        # the dialer sees it at its next poll (1 s)
        settled = attempts()
        time.sleep(1.5)
        assert attempts() == settled, "a call started while the campaign was paused"
        assert dialer.poll() is None
        resumed = subprocess.run(command + ["resume", "c"], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert "resumed" in resumed.stdout
        out, err = dialer.communicate(timeout=60)
    finally:
        if dialer.poll() is None:
            dialer.kill()
    assert dialer.returncode == 0, err
    assert "paused" in out and attempts() == 12
