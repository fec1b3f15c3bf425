"""``include "file.dlg"``: what an included file brings, where its diagnostics point, what sees its states.

The error cases are golden files (golden/include_errors.dlg, golden/include_syntax.dlg); hot reload of an
included file is in tests/server/test_server_reload.py.
"""

from __future__ import annotations

import wave

import pytest

from autocall.graph import build_graph
from autocall.sim.runner import parse_settings, simulate
from tests.fakes.agi_fixtures import run_on_agi

SHARED = '''\
# shared states
prompt bye = "Goodbye from {company}."
var farewells = 0
hours late = "daily 20:00-23:00" in "UTC"

state goodbye:
    set farewells = farewells + 1
    play bye
    hangup

state broken:
    log "about to fail"
    set farewells = farewells - "x"
'''
MAIN = '''\
dialogue main
include "shared/closing.dlg"
param company = "Acme"
start main

state main:
    menu "Press 1 to leave, 2 to break.":
        1 -> goodbye
        2 -> broken
        failure -> goodbye
'''


@pytest.fixture
def layout(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "closing.dlg").write_text(SHARED, encoding="utf-8")
    (tmp_path / "main.dlg").write_text(MAIN, encoding="utf-8")
    return tmp_path


@pytest.fixture(params=["simulator", "agi"])
def runtime(request):
    return simulate if request.param == "simulator" else run_on_agi


def test_included_states_prompts_vars_and_hours_run_on_both_runtimes(layout, compiler, runtime):
    result = compiler.compile_file(str(layout / "main.dlg"))
    assert result.ok and not result.warnings, result.render()
    program = result.program
    assert set(program.states) == {"main", "goodbye", "broken"}
    assert set(program.data["hours"]) == {"late"}
    record = runtime(program, keys="1", settings=parse_settings(program, {}))
    assert record.path == ["main", "goodbye"]
    assert [p["text"] for p in record.prompts][-1] == "Goodbye from Acme."
    assert record.variables["farewells"] == 1


def test_a_run_time_error_in_an_included_state_names_the_included_file(layout, compiler, runtime):
    program = compiler.compile_file(str(layout / "main.dlg")).program
    record = runtime(program, keys="2", settings=parse_settings(program, {}))
    assert record.ended_by == "error"
    assert record.error.startswith("shared/closing.dlg:13:")
    assert program.states["broken"]["file"] == "shared/closing.dlg" and "file" not in program.states["main"]


def test_the_compile_result_lists_included_files_for_reloading(layout, compiler):
    result = compiler.compile_file(str(layout / "main.dlg"))
    assert result.includes == [str((layout / "shared" / "closing.dlg").resolve())]


def test_graphs_and_simulated_paths_see_included_states(layout, compiler):
    program = compiler.compile_file(str(layout / "main.dlg")).program
    graph = build_graph(program)
    assert {"goodbye", "broken"} <= set(graph.nodes)
    assert graph.edges_between("main", "goodbye")


def test_a_file_included_along_two_paths_is_read_once(tmp_path, compiler):
    (tmp_path / "a.dlg").write_text('include "common.dlg"\nstate a:\n    goto done\n', encoding="utf-8")
    (tmp_path / "b.dlg").write_text('include "common.dlg"\nstate b:\n    goto done\n', encoding="utf-8")
    (tmp_path / "common.dlg").write_text("state done:\n    hangup\n", encoding="utf-8")
    (tmp_path / "main.dlg").write_text('dialogue m\ninclude "a.dlg"\ninclude "b.dlg"\nstart main\n'
                                       'state main:\n    menu "x":\n        1 -> a\n        2 -> b\n'
                                       '        failure -> done\n', encoding="utf-8")
    result = compiler.compile_file(str(tmp_path / "main.dlg"))
    assert result.ok, result.render()
    assert set(result.program.states) == {"main", "a", "b", "done"}


def test_file_prompts_of_an_included_file_are_found_beside_it(tmp_path, compiler):
    (tmp_path / "shared" / "audio").mkdir(parents=True)
    with wave.open(str(tmp_path / "shared" / "audio" / "bye.wav"), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\0\0" * 800)
    (tmp_path / "shared" / "closing.dlg").write_text('prompt bye = file "audio/bye.wav"\n'
                                                     'state goodbye:\n    play bye\n', encoding="utf-8")
    (tmp_path / "main.dlg").write_text('dialogue m\ninclude "shared/closing.dlg"\nstart main\n'
                                       'state main:\n    goto goodbye\n', encoding="utf-8")
    result = compiler.compile_file(str(tmp_path / "main.dlg"))
    assert result.ok, result.render()
    assert result.program.data["prompts"]["bye"]["resolved"] == str(tmp_path / "shared" / "audio" / "bye.wav")


def test_an_include_cycle_through_the_main_script_is_an_error(tmp_path, compiler):
    (tmp_path / "loop.dlg").write_text('include "main.dlg"\n', encoding="utf-8")
    (tmp_path / "main.dlg").write_text('dialogue m\ninclude "loop.dlg"\nstart main\nstate main:\n    hangup\n',
                                       encoding="utf-8")
    result = compiler.compile_file(str(tmp_path / "main.dlg"))
    assert [d.headline() for d in result.errors] == [
        f"{tmp_path / 'loop.dlg'}:1:9: error: include cycle: main.dlg -> loop.dlg -> main.dlg "
        f"(the cycle starts at {tmp_path / 'main.dlg'}:2)"]


def test_a_symlink_out_of_the_scripts_folder_is_outside_it(tmp_path, compiler):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "common.dlg").write_text("state done:\n    hangup\n", encoding="utf-8")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "common.dlg").symlink_to(outside / "common.dlg")
    (scripts / "main.dlg").write_text('dialogue m\ninclude "common.dlg"\nstart main\nstate main:\n    goto done\n',
                                      encoding="utf-8")
    result = compiler.compile_file(str(scripts / "main.dlg"))
    assert any("outside the script's folder" in d.message for d in result.errors)
