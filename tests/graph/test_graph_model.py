"""The flow graph built from the IR: one edge per key, handler, goto (labelled with its condition) and way
of ending; statements that cannot run add nothing; notable statements show inside their state's node."""

from __future__ import annotations

import pytest

from autocall.graph import build_graph
from autocall.graph.model import ANSWERED, END, FAILURE, GOTO, HANGUP, INVALID, KEY, REPEAT, TIMEOUT


@pytest.fixture
def graph_of(compile_text):
    def build(body: str, header: str = ""):
        result = compile_text(f"dialogue g\n{header}start main\n{body}")
        assert result.ok, result.render()
        return build_graph(result.program)
    return build


def edges(graph, source=None):
    return [(e.source, e.target, e.kind, e.label) for e in graph.edges if source in (None, e.source)]


MENU = """
state main:
    menu "Choose." interdigit 2s:
        1 -> a
        "101" -> b
        star -> repeat
        hash -> a
        invalid -> b
        timeout say "Please choose."
        failure -> a
state a:
    hangup
state b:
    hangup
"""


def test_menu_choices_become_key_edges_labelled_as_written(graph_of):
    assert edges(graph_of(MENU), "main") == [
        ("main", "a", KEY, "1"), ("main", "b", KEY, '"101"'), ("main", "main", REPEAT, "star: repeat"),
        ("main", "a", KEY, "hash"), ("main", "b", INVALID, "invalid"), ("main", "a", FAILURE, "failure")]


def test_a_timeout_handler_that_only_speaks_adds_no_edge(graph_of):
    assert TIMEOUT not in {e.kind for e in graph_of(MENU).edges}


def test_timeout_handler_with_a_target_is_an_edge(graph_of):
    graph = graph_of("state main:\n    menu:\n        1 -> a\n        timeout -> a\n        failure -> a\n"
                     "state a:\n    hangup\n")
    assert ("main", "a", TIMEOUT, "timeout") in edges(graph)


def test_menu_without_failure_target_ends_the_call_on_failure(graph_of):
    graph = graph_of("state main:\n    menu:\n        1 -> a\nstate a:\n    hangup\n")
    assert ("main", None, FAILURE, "failure") in edges(graph)


def test_gotos_are_labelled_with_if_elif_else(graph_of):
    graph = graph_of("""
state main:
    if caller == "1":
        goto a
    elif caller == "2":
        goto b
    else:
        goto c
state a:
    hangup
state b:
    hangup
state c:
    hangup
""")
    assert edges(graph, "main") == [("main", "a", GOTO, 'if caller == "1"'),
                                    ("main", "b", GOTO, 'elif caller == "2"'), ("main", "c", GOTO, "else")]


def test_a_goto_after_ifs_that_always_leave_is_their_else(graph_of):
    graph = graph_of("""
state main:
    gather pin digits 4
    if pin == "1234":
        goto a
    say "Wrong."
    goto b
state a:
    hangup
state b:
    hangup
""")
    assert edges(graph, "main") == [("main", "a", GOTO, 'if pin == "1234"'), ("main", "b", GOTO, "else")]


def test_a_goto_after_an_if_that_can_fall_through_is_plain(graph_of):
    graph = graph_of("""
state main:
    gather pin digits 4
    if pin == "1234":
        say "Right."
    goto a
state a:
    hangup
""")
    assert edges(graph, "main") == [("main", "a", GOTO, "goto")]


def test_nested_conditions_are_listed_outermost_first(graph_of):
    graph = graph_of("""
state main:
    gather pin digits 4
    if pin != "":
        if pin == "1234":
            goto a
        goto b
    hangup
state a:
    hangup
state b:
    hangup
""")
    assert edges(graph, "main") == [("main", "a", GOTO, 'if pin != "", if pin == "1234"'),
                                    ("main", "b", GOTO, 'if pin != "", else'),
                                    ("main", None, HANGUP, "else: hangup")]


def test_ways_to_end_the_call_have_edges_to_nowhere(graph_of):
    graph = graph_of("""
state main:
    transfer "PJSIP/100"
    gather x digits 1
    if x == "1":
        hangup
    say "Bye."
""")
    assert edges(graph) == [("main", None, ANSWERED, "answered"), ("main", None, HANGUP, 'if x == "1": hangup'),
                            ("main", None, END, "else")]
    assert graph.ending_states() == ["main"]


def test_statements_that_cannot_run_add_no_edges(graph_of):
    # The checker warns about the statement after the goto; the graph simply leaves it out.
    graph = graph_of("state main:\n    goto a\n    goto b\nstate a:\n    hangup\nstate b:\n    hangup\n")
    assert edges(graph, "main") == [("main", "a", GOTO, "goto")]


def test_nodes_show_gathers_transfers_records_results_and_optout_once_each(graph_of):
    graph = graph_of("""
state main:
    gather pin digits 4 secret
    record msg max 10s
    result "left " + msg
    result "left " + msg
    optout
    transfer "PJSIP/" + pin timeout 5s
""")
    assert graph.nodes["main"].details == ('gather pin (secret)', "record msg", 'result "left " + msg', "optout",
                                           'transfer "PJSIP/" + pin')


def test_nodes_come_in_script_order_with_the_start_state_named(graph_of):
    graph = graph_of("state main:\n    goto a\nstate a:\n    hangup\n")
    assert list(graph.nodes) == ["main", "a"] and graph.start == "main"
