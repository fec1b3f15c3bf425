"""What a call record keeps for reports, on the engine: each input's gather name, secrecy and menu give-up,
each transfer's state, the exit of every state visited; ``simulate --json`` keeps its shape."""

from __future__ import annotations

from autocall.sim.runner import parse_settings, simulate
from tests.report.report_helpers import LINES


def run(compile_text, keys: str, dialstatus: str = ""):
    program = compile_text(LINES, "lines.dlg").program
    return simulate(program, keys=keys, settings=parse_settings(program, {"dialstatus": dialstatus}
                                                                 if dialstatus else {}))


def test_a_menu_that_runs_out_of_tries_marks_its_last_try(compile_text):
    record = run(compile_text, "9 w")
    assert [entry["outcome"] for entry in record.inputs] == ["invalid", "timeout"]
    assert record.input_notes == [{"failure": False}, {"failure": True}]
    assert record.exits() == ["bye", "(end)"]


def test_gathers_note_their_variable_and_secrecy(compile_text):
    record = run(compile_text, "2 1234")
    assert record.input_notes == [{"failure": False}, {"name": "pin", "secret": True}]
    assert record.inputs[1]["keys"] == "***"
    assert run(compile_text, "3 55#").input_notes[1] == {"name": "number", "secret": False}


def test_transfers_note_their_state_and_exits_say_how_the_call_ended(compile_text):
    answered = run(compile_text, "1", "ANSWER")
    assert (answered.transfer_states, answered.path, answered.exits()) == (["sales"], ["main", "sales"],
                                                                           ["sales", "(end)"])
    hung_up = run(compile_text, "h")
    assert (hung_up.path, hung_up.exits()) == (["main"], ["(hangup)"])


def test_simulate_json_keeps_the_shape_the_spec_gives(compile_text):
    data = run(compile_text, "2 1234").simulate_json()
    assert data["inputs"][1] == {"state": "account", "op": "gather", "keys": "***", "outcome": "complete"}
    assert "input_notes" not in data and "transfer_states" not in data
