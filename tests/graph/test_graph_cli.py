"""``autocall graph``: DOT on stdout, the format from -o's extension, a highlighted call with --keys,
and one-line errors (exit 1) for unknown extensions, a missing Graphviz and scripts that do not compile."""

from __future__ import annotations

import shutil

import pytest

from autocall.cli.main import main

SCRIPT = """dialogue hello
start main
state main:
    menu "Press 1.":
        1 -> thanks
        failure -> thanks
state thanks:
    say "Thanks."
    hangup
"""

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "hello.dlg"
    path.write_text(SCRIPT, encoding="utf-8")
    return path


def test_without_output_dot_goes_to_stdout(script, capsys):
    assert main(["graph", str(script)]) == 0
    out = capsys.readouterr().out
    assert out.startswith('digraph "hello" {') and '"main" -> "thanks" [label="1\\nfailure"];' in out


def test_format_option_prints_mermaid_to_stdout(script, capsys):
    assert main(["graph", str(script), "--format", "mmd"]) == 0
    assert capsys.readouterr().out.startswith("flowchart TD\n")


@pytest.mark.parametrize("name, start", [("g.dot", "digraph"), ("g.gv", "digraph"), ("g.mmd", "flowchart"),
                                         ("G.MERMAID", "flowchart")])
def test_output_extension_picks_the_text_format(script, tmp_path, name, start):
    out = tmp_path / name
    assert main(["graph", str(script), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith(start)


@needs_dot
@pytest.mark.parametrize("name, magic", [("g.svg", b"<svg"), ("g.png", b"\x89PNG")])
def test_images_are_drawn_by_graphviz(script, tmp_path, name, magic):
    out = tmp_path / name
    assert main(["graph", str(script), "-o", str(out), "--keys", "1"]) == 0
    assert magic in out.read_bytes()[:1000]


def test_keys_highlight_the_path_of_that_call(script, capsys):
    assert main(["graph", str(script), "--keys", "1"]) == 0
    out = capsys.readouterr().out
    assert "the call with --keys 1" in out
    assert '"main" -> "thanks" [label="1\\nfailure", color="#d9480f"' in out


def test_unknown_extension_is_a_one_line_user_error(script, tmp_path, capsys):
    assert main(["graph", str(script), "-o", str(tmp_path / "g.jpg")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown extension '.jpg'" in err and ".svg" in err


def test_format_disagreeing_with_the_extension_is_refused(script, tmp_path, capsys):
    assert main(["graph", str(script), "-o", str(tmp_path / "g.dot"), "--format", "mmd"]) == 1
    assert "--format says mmd" in capsys.readouterr().err


def test_missing_graphviz_names_the_package_and_the_text_formats(script, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["graph", str(script), "-o", str(tmp_path / "g.svg")]) == 1
    err = capsys.readouterr().err
    assert "install graphviz (apt-get install graphviz) or write .dot/.mmd" in err
    assert not (tmp_path / "g.svg").exists()


def test_unwritable_output_is_a_user_error(script, tmp_path, capsys):
    assert main(["graph", str(script), "-o", str(tmp_path / "missing" / "g.dot")]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_a_script_that_does_not_compile_prints_diagnostics_and_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.dlg"
    bad.write_text("dialogue bad\nstart main\nstate main:\n    goto nowhere\n", encoding="utf-8")
    assert main(["graph", str(bad)]) == 1
    assert "bad.dlg:4:10: error: unknown state 'nowhere'" in capsys.readouterr().err


def test_bad_set_for_the_highlighted_call_is_a_user_error(script, capsys):
    assert main(["graph", str(script), "--set", "nope=1"]) == 1
    assert "nope" in capsys.readouterr().err


def test_help_exits_0_and_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as done:
        main(["graph", "--help"])
    assert done.value.code == 0
    with pytest.raises(SystemExit) as done:
        main(["graph"])
    assert done.value.code == 2
