"""The language's internals stay whole: every statement and op kind is handled everywhere, and each fact
(keys, defaults, keywords, flow) has one definition that every reader uses."""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path

import pytest

from autocall.dsl import ast as A
from autocall.dsl import lower
from autocall.dsl.checker import KEY_CHARS, STATEMENT_CHECKS, Checker, CheckOptions
from autocall.dsl.diagnostics import DiagnosticSink
from autocall.dsl.parser import DialogueParser
from autocall.engine import interpreter, ir
from autocall.engine.channel import ALL_KEYS
from autocall.errors import UserError
from autocall.graph.model import build_graph

STATEMENT_CLASSES = A.Statement.__subclasses__()


@pytest.fixture(scope="module")
def parser() -> DialogueParser:
    return DialogueParser()


# -- item 1: one dispatch table, nothing silently ignored -----------------------------------------------

def test_every_ir_op_kind_has_a_prepared_class_and_a_handler():
    assert set(interpreter.OPERATIONS) == set(ir.OPS)
    for kind, (op_class, handler) in interpreter.OPERATIONS.items():
        assert op_class.kind == kind
        assert callable(handler) and hasattr(op_class, "prepare")
        assert inspect.iscoroutinefunction(handler) == op_class.awaits, kind


def test_prepared_operations_have_named_fields_only():
    for op_class, _handler in interpreter.OPERATIONS.values():
        slots = [slot for cls in op_class.__mro__ for slot in getattr(cls, "__slots__", ())]
        assert not set(slots) & set("abcdefghi"), op_class.__name__


def test_an_unknown_op_kind_is_refused_when_loading_and_when_preparing():
    data = {"op": "teleport", "line": 1}
    with pytest.raises(ValueError, match="unknown operation 'teleport'"):
        interpreter.Runtime.__new__(interpreter.Runtime)._prepare(data)


def test_every_ast_statement_has_a_check_and_an_ir_op_kind():
    assert set(STATEMENT_CLASSES) == set(STATEMENT_CHECKS)
    for cls in STATEMENT_CLASSES:
        assert cls.op in ir.OPS, cls.__name__


def test_the_checker_fails_loudly_on_a_statement_it_has_no_rule_for():
    @A.node
    class Teleport(A.Statement):
        op = "goto"
        span: A.Span

    try:
        span = A.Span(3, 5, 3, 13)
        state = A.StateDecl(A.Name("main", span), (Teleport(span),), span)
        script = A.Script("t.dlg", [A.DialogueDecl(A.Name("t", span), span),
                                    A.StartDecl(A.Name("main", span), span), state])
        with pytest.raises(TypeError, match="no rule for the statement Teleport"):
            Checker(script, DiagnosticSink("t.dlg"), CheckOptions()).run()
    finally:
        A.STATEMENT_RULES.pop("teleport_stmt", None)


def test_every_statement_rule_of_the_grammar_builds_its_ast_class(parser, compile_text):
    # A statement's keyword, its grammar rule and its AST class share one name.
    assert set(parser.statement_keywords) == {cls.__name__.lower() for cls in STATEMENT_CLASSES}
    assert set(A.STATEMENT_RULES) == {cls.__name__.lower() + "_stmt" for cls in STATEMENT_CLASSES}
    assert {"say", "menu", "if"} <= set(parser.statement_keywords)


# -- item 2: one definition of each fact --------------------------------------------------------------

def test_one_dtmf_key_set():
    from autocall.agi.protocol import DTMF_KEYS
    from autocall.sim.caller import KEY_CHARS as SIM_KEYS
    assert KEY_CHARS == DTMF_KEYS == frozenset(SIM_KEYS) == frozenset(ALL_KEYS)


def test_default_timings_come_from_the_lowering_defaults(compile_text):
    result = compile_text('dialogue t\nstart main\nstate main:\n    menu "x":\n        "12" -> main\n'
                          '        failure -> main\n    \n')
    assert result.ok, result.render()
    op = result.program.states["main"]["code"][0]
    assert (op["timeout_ms"], op["tries"], op["interdigit_ms"]) == (
        lower.DEFAULT_TIMEOUT_MS, lower.DEFAULT_TRIES, lower.DEFAULT_INTERDIGIT_MS)


def test_reserved_words_are_the_grammar_keywords_that_are_not_soft(parser):
    assert {"dialogue", "state", "menu", "elif", "else", "repeat", "star", "hash", "and", "or", "not"} \
        <= parser.reserved_words
    assert not {"file", "digits", "beep", "invalid", "failure"} & parser.reserved_words


def test_flow_facts_are_read_from_the_ir_table():
    leaving = {kind for kind, facts in ir.OPS.items() if facts.leaves}
    assert leaving == {"goto", "hangup", "menu"}
    code = [{"op": "if", "else": 2, "end": 3, "elif": False}, {"op": "goto", "state": "x"},
            {"op": "jump", "to": 3}, {"op": "hangup"}]
    assert ir.next_ops(code, 0) == (1, 2)
    assert ir.next_ops(code, 1) == ()
    assert ir.next_ops(code, 2) == (3,)


def test_checker_flow_targets_match_the_ir_targets(compile_text):
    source = ('dialogue t\nstart main\nstate main:\n    menu "x":\n        1 -> a\n        2 -> repeat\n'
              '        invalid -> b\n        timeout say "again"\n        failure -> c\n'
              'state a:\n    goto b\nstate b:\n    hangup\nstate c:\n    hangup\n')
    result = compile_text(source)
    assert result.ok and not result.warnings, result.render()
    menu = result.program.states["main"]["code"][0]
    assert ir.op_targets(menu) == ["a", "b", "c"]


def test_the_graph_reads_if_chains_from_the_ir_not_from_the_jump_layout(compile_text):
    # An `if` that is the whole `else` block ends where the outer chain ends: the jump layout made it
    # look like an `elif` of the outer `if`.
    source = ('dialogue t\nstart main\nvar a = 1\nvar b = 2\nstate main:\n    if a == 1:\n        goto one\n'
              '    else:\n        if b == 1:\n            goto two\nstate one:\n    hangup\nstate two:\n    hangup\n')
    result = compile_text(source)
    assert result.ok, result.render()
    edges = {e.target: e.label for e in build_graph(result.program).edges if e.source == "main"}
    assert edges["one"] == "if a == 1"
    assert edges["two"] == "else, if b == 1"


def test_a_compiled_if_without_its_chain_end_is_refused():
    source = {"format": ir.FORMAT, "version": ir.VERSION, "dialogue": "t", "start": "main", "settings": {},
              "params": [], "vars": [], "gathered": [], "secret": [], "prompts": {}, "hours": {},
              "states": {"main": {"code": [{"op": "if", "cond": ["int", 1], "else": 1}]}}}
    with pytest.raises(UserError, match="without its chain's end"):
        ir.validate(source, "x.json")


# -- item 5 (dead code) and item 8 (no paths outside the repository) ----------------------------------

def test_dead_helpers_are_gone():
    from autocall import durations
    from autocall.store import calls
    assert not hasattr(durations, "format_duration_ms")
    assert not hasattr(A.Template, "literal_text")
    assert not hasattr(ir.Program, "value_names") and not hasattr(ir, "state_targets")
    assert not hasattr(calls, "dnc_numbers")


ROOT = Path(__file__).resolve().parents[2]
# A path outside the repository: the machine's work folder, or the team's shared folder of specs.
OUTSIDE = re.compile("/" + "work/|" + r"\bshared" + r"/(spec|asterisk|style)")
SKIPPED = {".git", ".venv", ".hypothesis", ".pytest_cache", "__pycache__", "build", "dist"}


def test_no_file_cites_a_path_outside_the_repository():
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if d not in SKIPPED and not d.endswith(".egg-info")]
        for name in files:
            if name in SKIPPED:
                continue
            path = Path(folder, name)
            if path.suffix not in {".py", ".md", ".lark", ".toml", ".dlg", ".txt", ".cfg", ".ini", ".yaml", ""}:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            found += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(text.splitlines(), 1)
                      if OUTSIDE.search(line)]
    assert not found, found


# -- item 4: the compiler is pure by default ----------------------------------------------------------

BAD_AUDIO = 'dialogue t\nstart main\nstate main:\n    play file "hello.wav"\n'


def test_the_compiler_leaves_the_garbage_collector_alone(tmp_path):
    from autocall.dsl.compiler import Compiler
    (tmp_path / "hello.wav").write_bytes(b"RIFF")
    seen = []

    def validate(path: str) -> list[str]:
        seen.append(__import__("gc").isenabled())
        return []
    result = Compiler(validate_audio=validate).compile_text(BAD_AUDIO, str(tmp_path / "t.dlg"), str(tmp_path))
    assert result.ok and seen == [True]


def test_audio_checks_are_injected_not_reached_for(tmp_path):
    from autocall.audio.prompt_checks import audio_checks
    from autocall.dsl.compiler import Compiler
    (tmp_path / "hello.wav").write_bytes(b"not audio at all")
    pure = Compiler().compile_text(BAD_AUDIO, "t.dlg", str(tmp_path))
    assert pure.ok, pure.render()
    checked = Compiler(**audio_checks()).compile_text(BAD_AUDIO, "t.dlg", str(tmp_path))
    assert not checked.ok and "hello.wav" in checked.render()


def test_voice_lookups_belong_to_their_voices_object():
    from autocall.audio.errors import AudioError
    from autocall.audio.voices import Voice, Voices
    english = Voices(lambda: (Voice("gmw/en-us", "English", (("en-us", 2),)),), lambda: ())
    german = Voices(lambda: (Voice("gmw/de", "German", (("de", 5),)),), lambda: ())
    assert english.resolve("en-us") == "gmw/en-us"
    with pytest.raises(AudioError):
        german.resolve("en-us")
    assert german.resolve("de") == "gmw/de"
