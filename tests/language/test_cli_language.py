"""The language's commands (check, compile, simulate) as users run them: exit codes, output shapes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from autocall.cli.main import main
from tests.language.test_fuzz import SUPPORT

SIMULATE_KEYS = {"script", "path", "prompts", "inputs", "transfers", "result", "ended_by", "variables", "error",
                 "sets", "optout", "requests", "notifications"}


@pytest.fixture
def support(tmp_path):
    path = tmp_path / "support.dlg"
    path.write_text(SUPPORT, encoding="utf-8")
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_clean_script_exits_0(capsys, support):
    code, out, err = run(capsys, "check", str(support))
    assert code == 0 and "ok" in out and err == ""


def test_check_reports_every_error_and_exits_1(capsys, tmp_path):
    bad = tmp_path / "bad.dlg"
    bad.write_text("dialogue bad\nstart main\nstate main:\n    goto nowhere\n    play nothing\n")
    code, out, err = run(capsys, "check", str(bad))
    assert code == 1
    assert f"{bad}:4:10: error: unknown state 'nowhere'" in err
    assert f"{bad}:5:10: error: unknown prompt 'nothing'" in err
    assert "    goto nowhere\n         ^~~~~~~" in err


def test_check_several_files_reports_each(capsys, tmp_path, support):
    bad = tmp_path / "bad.dlg"
    bad.write_text("dialogue bad\n")
    code, out, err = run(capsys, "check", str(support), str(bad))
    assert code == 1 and "support.dlg: ok" in out and "missing 'start STATE'" in err


def test_compile_writes_json_that_loads_back(capsys, support, tmp_path):
    out_file = tmp_path / "support.json"
    code, out, err = run(capsys, "compile", str(support), "-o", str(out_file))
    assert code == 0 and out == ""
    data = json.loads(out_file.read_text())
    assert data["format"] == "autocall.dialogue" and data["start"] == "main"
    code, out, err = run(capsys, "simulate", str(out_file), "--keys", "1", "--json", "--now", "2026-11-26T10:00+01:00")
    assert code == 0 and json.loads(out)["path"] == ["main", "sales"]


def test_compile_to_stdout(capsys, support):
    code, out, err = run(capsys, "compile", str(support))
    assert code == 0 and json.loads(out)["dialogue"] == "support"


def test_simulate_json_has_exactly_the_specified_shape(capsys, support):
    code, out, err = run(capsys, "simulate", str(support), "--keys", "2 1234", "--json",
                         "--now", "2026-11-26T10:00:00+01:00")
    assert code == 0
    data = json.loads(out)
    assert set(data) == SIMULATE_KEYS
    assert data["script"] == "support"
    assert data["path"] == ["main", "login", "account", "voicemail", "goodbye"]
    assert data["prompts"][0] == {"kind": "tts", "text": "Thank you for calling Acme."}
    assert data["inputs"] == [{"state": "main", "op": "menu", "keys": "2", "outcome": "match"},
                              {"state": "login", "op": "gather", "keys": "1234", "outcome": "complete"}]
    assert data["transfers"] == [{"destination": "PJSIP/101", "dialstatus": "NOANSWER"}]
    assert data["result"] == "voicemail" and data["ended_by"] == "hangup" and data["error"] is None
    assert data["variables"]["attempts"] == 0 and data["variables"]["pin"] == "1234"


BROKEN = """\
dialogue broken
var attempts = 0
var copy = ""
start main
state main:
    gather pin digits 4 secret prompt "Your PIN?"
    set attempts = attempts + 1
    set copy = pin
    optout
    say "Balance: {attempts}"
    result 10 / (attempts - 1)
"""


@pytest.fixture
def broken(tmp_path):
    path = tmp_path / "broken.dlg"
    path.write_text(BROKEN, encoding="utf-8")
    return path


def test_simulate_exits_1_when_the_call_ends_with_an_error_and_still_prints_it(capsys, broken):
    code, out, err = run(capsys, "simulate", str(broken), "--keys", "1234")
    assert code == 1
    assert 'says      "Balance: 1"' in out
    assert "call ended: error: broken.dlg:11: division by zero" in out


def test_simulate_json_exits_1_on_an_error_with_the_whole_object(capsys, broken):
    code, out, err = run(capsys, "simulate", str(broken), "--keys", "1234", "--json")
    assert code == 1
    data = json.loads(out)
    assert data["ended_by"] == "error" and "division by zero" in data["error"]
    assert data["prompts"][-1] == {"kind": "tts", "text": "Balance: 1"}


def test_simulate_shows_set_and_optout_in_the_transcript(capsys, broken):
    code, out, err = run(capsys, "simulate", str(broken), "--keys", "1234")
    lines = out.splitlines()
    assert lines.index("   set       attempts = 1") < lines.index("   set       copy = ***") \
        < lines.index("   optout    the caller's number goes on the do-not-call list")
    assert "1234" not in out


def test_simulate_json_lists_sets_and_optout(capsys, broken, support):
    code, out, err = run(capsys, "simulate", str(broken), "--keys", "1234", "--json")
    data = json.loads(out)
    assert data["sets"] == [{"state": "main", "name": "attempts", "value": 1},
                            {"state": "main", "name": "copy", "value": "***"}]
    assert data["optout"] is True and "1234" not in json.dumps(data["sets"])
    code, out, err = run(capsys, "simulate", str(support), "--keys", "1", "--json", "--now", "2026-11-26T10:00+01:00")
    assert json.loads(out)["optout"] is False


def test_simulate_set_dialstatus_answer_ends_the_call_there(capsys, support):
    code, out, err = run(capsys, "simulate", str(support), "--keys", "2 1234", "--json", "--set", "dialstatus=ANSWER",
                         "--now", "2026-11-26T10:00:00+01:00")
    data = json.loads(out)
    assert data["path"][-1] == "account" and data["ended_by"] == "hangup"
    assert data["transfers"] == [{"destination": "PJSIP/101", "dialstatus": "ANSWER"}]


def test_simulate_outside_hours_goes_to_voicemail(capsys, support):
    code, out, err = run(capsys, "simulate", str(support), "--json", "--now", "2026-11-29T12:00:00+01:00")
    assert json.loads(out)["path"] == ["main", "voicemail", "goodbye"]


def test_simulate_human_transcript(capsys, support):
    code, out, err = run(capsys, "simulate", str(support), "--keys", "1", "--now", "2026-11-26T10:00:00+01:00")
    assert code == 0
    assert "[main]" in out and 'says      "Thank you for calling Acme."' in out
    assert "menu      caller: 1 -> match" in out and "transfer  PJSIP/200 -> NOANSWER" in out
    assert "call ended: hangup" in out


@pytest.mark.parametrize("argv, message", [
    (["--set", "compny=x"], "did you mean 'company'"),
    (["--set", "nonsense"], "write NAME=VALUE"),
    (["--now", "yesterday"], "not an ISO-8601 time"),
    (["--keys", "12x"], "is not a key"),
    (["--set", "dialstatus=MAYBE"], "not a dial status"),
])
def test_simulate_bad_arguments_are_one_line_errors(capsys, support, argv, message):
    code, out, err = run(capsys, "simulate", str(support), *argv)
    assert code == 1 and message in err and err.count("\n") == 1 and err.startswith("autocall: error:")


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check"])
    assert exit_info.value.code == 2


# -- bad input files: diagnostics or one clear line, exit 1, never a traceback ---------------------------------

def _bad_files(tmp_path):
    nested = "dialogue deep\nstart main\nstate main:\n" + "".join(
        "    " * depth + "if 1:\n" for depth in range(1, 60)) + "    " * 60 + "hangup\n"
    deep_expression = "dialogue deep\nstart main\nstate main:\n    result " + "(1 + " * 5000 + "1" + ")" * 5000 + "\n"
    long_sum = "dialogue sums\nstart main\nstate main:\n    result " + " + ".join(["1"] * 20000) + "\n"
    return {
        "empty.dlg": b"",
        "binary.dlg": bytes(range(256)) * 40,
        "latin1.dlg": "dialogue caf\xe9\nstart main\nstate main:\n    say \"caf\xe9\"\n".encode("latin-1"),
        "tabs.dlg": b"dialogue t\nstart main\nstate main:\n\tsay \"x\"\n\thangup\n",
        "nested.dlg": nested.encode(),
        "deep_expression.dlg": deep_expression.encode(),
        "long_sum.dlg": long_sum.encode(),
        "huge.dlg": b"# padding\n" * 1_100_000,
        "nul.dlg": b"dialogue t\x00\nstart main\n",
        "crlf.dlg": b"dialogue t\r\nstart main\r\nstate main:\r\n    hangup\r\n",
    }


@pytest.mark.parametrize("name", ["empty.dlg", "binary.dlg", "latin1.dlg", "tabs.dlg", "nested.dlg",
                                  "deep_expression.dlg", "long_sum.dlg", "huge.dlg", "nul.dlg"])
def test_bad_files_give_diagnostics_and_exit_1(capsys, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(_bad_files(tmp_path)[name])
    code, out, err = run(capsys, "check", str(path))
    assert code == 1
    assert "Traceback" not in err
    assert f"{path}" in err and "error:" in err


def test_redundant_parentheses_do_not_nest(capsys, tmp_path):
    path = tmp_path / "parens.dlg"
    path.write_text("dialogue p\nstart main\nstate main:\n    result " + "(" * 3000 + "1" + ")" * 3000 + "\n")
    assert run(capsys, "check", str(path))[0] == 0


def test_windows_line_endings_are_fine(capsys, tmp_path):
    path = tmp_path / "crlf.dlg"
    path.write_bytes(_bad_files(tmp_path)["crlf.dlg"])
    assert run(capsys, "check", str(path))[0] == 0


def test_missing_file_and_folder_are_one_line(capsys, tmp_path):
    code, out, err = run(capsys, "check", str(tmp_path / "nope.dlg"))
    assert code == 1 and "no such file" in err
    code, out, err = run(capsys, "check", str(tmp_path))
    assert code == 1 and "is a folder" in err


def test_specific_messages_for_bad_files(capsys, tmp_path):
    files = _bad_files(tmp_path)
    for name, needle in [("latin1.dlg", "not UTF-8 text (byte 0xe9); save the file as UTF-8"),
                         ("huge.dlg", "may be at most 2 MB"), ("nested.dlg", "nested more than"),
                         ("deep_expression.dlg", "nested more than 64 deep"),
                         ("tabs.dlg", "tab in indentation")]:
        path = tmp_path / name
        path.write_bytes(files[name])
        assert needle in run(capsys, "check", str(path))[2], name


def test_real_cli_process_never_prints_a_traceback(tmp_path):
    path = tmp_path / "binary.dlg"
    path.write_bytes(bytes(range(256)) * 10)
    done = subprocess.run([sys.executable, "-m", "autocall", "check", str(path)], capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "not UTF-8" in done.stderr
