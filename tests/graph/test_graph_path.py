"""A call's path on the graph: the edge each step took (from the menu inputs when given), and the
one-line text the demo prints (``main --2--> login --if pin == "1234"--> account ...``)."""

from __future__ import annotations

import pytest

from autocall.graph import build_graph, render_path_text, trace_path
from autocall.sim.runner import parse_now, parse_settings, simulate

SCRIPT = """dialogue support
var attempts = 0
start main
state main:
    menu "1 or 2." tries 2:
        1 -> login
        2 -> login
        star -> repeat
        invalid -> goodbye
        failure -> goodbye
state login:
    gather pin digits 4
    if pin == "1234":
        goto account
    set attempts = attempts + 1
    if attempts < 3:
        goto login
    goto goodbye
state account:
    transfer "PJSIP/101"
    goto goodbye
state goodbye:
    say "Goodbye."
    hangup
"""


@pytest.fixture
def program(compile_text):
    result = compile_text(SCRIPT)
    assert result.ok, result.render()
    return result.program


def call(program, keys, **settings):
    return simulate(program, keys=keys, settings=parse_settings(program, settings),
                    now=parse_now("2026-03-02T10:00+00:00"))


def test_path_text_names_every_edge_taken(program):
    record = call(program, "2 1234")
    assert render_path_text(program, record, width=None) == (
        'main --2--> login --if pin == "1234"--> account --goto--> goodbye --hangup--> (end)')


def test_repeats_and_retries_are_followed_through(program):
    record = call(program, "* 1 0000 1234")
    assert render_path_text(program, record, width=None) == (
        'main --1--> login --if attempts < 3--> login --if pin == "1234"--> account --goto--> goodbye '
        '--hangup--> (end)')


def test_menu_outcomes_pick_their_handler_edges(program):
    assert render_path_text(program, call(program, "9"), width=None).startswith("main --invalid--> goodbye")
    assert render_path_text(program, call(program, "w w"), width=None).startswith("main --failure--> goodbye")


def test_without_inputs_every_edge_between_two_states_is_listed(program):
    assert render_path_text(program, ["main", "login"], width=None) == "main --1/2--> login"
    assert render_path_text(program, ["main", "goodbye"], width=None) == (
        "main --invalid/failure--> goodbye --hangup--> (end)")


def test_an_answered_transfer_is_the_way_the_call_ended(program):
    record = call(program, "1 1234", dialstatus="ANSWER")
    assert render_path_text(program, record, width=None).endswith("account --answered--> (end)")


def test_a_caller_hangup_is_said_and_takes_no_ending_edge(program):
    record = call(program, "1 12h")
    assert render_path_text(program, record, width=None) == "main --1--> login (caller hung up)"
    trace = trace_path(build_graph(program), program, record.path, record.inputs, record.ended_by)
    assert trace.steps[-1].edges == []


def test_long_paths_wrap_before_an_arrow(program):
    text = render_path_text(program, call(program, "1 0000 1111 1234"), width=40)
    lines = text.splitlines()
    assert len(lines) > 2 and all(len(line) <= 40 for line in lines)
    assert all(line.startswith("    --") for line in lines[1:])


def test_an_empty_path_says_so(program):
    assert render_path_text(program, []) == "(no state entered)"


def test_trace_marks_visited_states_and_taken_edges(program):
    graph = build_graph(program)
    record = call(program, "2 1234")
    trace = trace_path(graph, program, record.path, record.inputs, record.ended_by, record.transfers)
    assert trace.visited == {"main", "login", "account", "goodbye"}
    assert sorted(e.label for e in trace.taken) == ["2", "goto", "hangup", 'if pin == "1234"']
