"""Property tests of the compiler: mutated scripts only ever produce diagnostics; compiling is
deterministic; the IR survives a JSON round trip unchanged in data and behaviour."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autocall.dsl.compiler import Compiler
from autocall.engine.ir import Program
from autocall.sim.runner import parse_settings, simulate

SUPPORT = '''\
# Inbound support line
dialogue support
voice "en-us"
timeout 5s
tries 3
param company = "Acme"
var attempts = 0
prompt welcome = "Thank you for calling {company}."
hours office = "mon-fri 09:00-18:00, sat 10:00-13:00" in "Europe/Rome"
start main

state main:
    answer
    play welcome
    if not within(office):
        goto voicemail
    menu "For sales press 1. For support press 2. To hear this again press star." timeout 6s:
        1 -> sales
        2 -> login
        star -> repeat
        "0" -> operator
        invalid say "Sorry, that is not a valid choice."
        timeout say "We did not receive your choice."
        failure -> goodbye

state login:
    gather pin digits 4 prompt "Please enter your four digit PIN." timeout 8s
    if pin == "1234":
        goto account
    set attempts = attempts + 1
    if attempts < 3:
        say "That PIN is not correct."
        goto login
    result "pin_failed"
    goto goodbye

state account:
    say "Your PIN was {pin|digits}. Connecting you now."
    transfer "PJSIP/101" timeout 25s
    say "Nobody answered, the line was {dialstatus}."
    goto voicemail

state sales:
    transfer "PJSIP/200"

state operator:
    transfer "PJSIP/100"

state voicemail:
    say "Please leave a message after the tone."
    record message max 60s silence 5s beep
    result "voicemail"
    goto goodbye

state goodbye:
    say "Goodbye."
    hangup
'''

DIRECTORY = '''\
dialogue directory
start main
var tries_left = 2
state main:
    menu "Dial the extension, or 0 for the operator." interdigit 2s tries 2:
        "101" -> alice
        "102" -> bob
        "0" -> operator
        "1" -> operator
        hash -> repeat
        invalid say "There is no such extension."
        failure -> operator
state alice:
    transfer "PJSIP/101" timeout 20s callerid "Directory"
    if dialstatus == "BUSY" or dialstatus == "NOANSWER":
        set tries_left = tries_left - 1
        gather again digits 1 prompt "Press 1 to try again."
        if again == 1 and tries_left > 0:
            goto alice
    goto operator
state bob:
    transfer "PJSIP/102"
state operator:
    log "operator for {caller}"
    optout
    transfer "PJSIP/100"
'''

VALID = [SUPPORT, DIRECTORY]
_TOKENS = re.compile(r'"(?:\\.|[^"\\\n])*"|\w+|[^\w\s]|\s+')
_INSERTS = ["state", "menu", ":", "->", "goto", "if", "else", '"', "{", "}", "    ", "\t", "\n", "9",
            "5s", "(", ")", "==", "not", "star", "#", "\x00", "é", "digits", "repeat", "timeout", "-"]

COMPILER = Compiler()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def compile_never_crashes(text: str) -> None:
    result = COMPILER.compile_text(text, "fuzz.dlg")
    assert result.ok == (result.program is not None)
    if not result.ok:
        assert result.errors
        assert result.render()


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_token_mutations_give_diagnostics_never_crashes(source, data):
    tokens = _TOKENS.findall(source)
    for _ in range(data.draw(st.integers(1, 6))):
        index = data.draw(st.integers(0, len(tokens) - 1))
        action = data.draw(st.sampled_from(["delete", "duplicate", "swap", "replace", "insert"]))
        if action == "delete":
            del tokens[index]
        elif action == "duplicate":
            tokens.insert(index, tokens[index])
        elif action == "swap" and index + 1 < len(tokens):
            tokens[index], tokens[index + 1] = tokens[index + 1], tokens[index]
        elif action == "replace":
            tokens[index] = data.draw(st.sampled_from(_INSERTS))
        else:
            tokens.insert(index, data.draw(st.sampled_from(_INSERTS)))
    compile_never_crashes("".join(tokens))


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_byte_mutations_of_files_give_diagnostics_never_crashes(tmp_path_factory, source, data):
    raw = bytearray(source.encode("utf-8"))
    for _ in range(data.draw(st.integers(1, 8))):
        index = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        if action == "flip":
            raw[index] = data.draw(st.integers(0, 255))
        elif action == "delete":
            del raw[index]
        else:
            raw.insert(index, data.draw(st.integers(0, 255)))
    path = tmp_path_factory.mktemp("fuzz") / "mutated.dlg"
    path.write_bytes(bytes(raw))
    result = COMPILER.compile_file(str(path))
    assert result.ok == (result.program is not None)
    if not result.ok:
        assert result.errors


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_gives_diagnostics_never_crashes(text):
    compile_never_crashes(text)


@given(st.sampled_from(VALID))
@settings(max_examples=10, deadline=None)
def test_compile_to_json_and_back_is_the_identity(source):
    program = COMPILER.compile_text(source, "x.dlg").program
    loaded = Program.from_json(program.to_json())
    assert loaded.data == program.data
    assert loaded.to_json() == program.to_json()


@FUZZ
@given(st.sampled_from(VALID), st.text(alphabet="0123456789*#wh ", max_size=12))
def test_loaded_program_behaves_exactly_like_the_compiled_one(source, keys):
    program = COMPILER.compile_text(source, "x.dlg").program
    loaded = Program.from_json(program.to_json())
    first = simulate(program, keys=keys, settings=parse_settings(program, {}), call_id="same")
    second = simulate(loaded, keys=keys, settings=parse_settings(loaded, {}), call_id="same")
    assert first.simulate_json() == second.simulate_json()


# -- generated valid scripts --------------------------------------------------------------------------------

NAMES = st.sampled_from(["alpha", "beta", "gamma", "delta", "omega"])


@st.composite
def valid_scripts(draw):
    count = draw(st.integers(1, 5))
    states = [f"s{i}" for i in range(count)]
    lines = ["dialogue generated", "start s0", "var n = 0", 'param who = "you"', ""]
    for index, state in enumerate(states):
        lines.append(f"state {state}:")
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from(["say", "set", "log", "if", "wait", "result"]))
            if kind == "say":
                lines.append(f'    say "Hello {{who}} number {draw(st.integers(0, 99))}"')
            elif kind == "set":
                lines.append(f"    set n = n + {draw(st.integers(0, 9))}")
            elif kind == "log":
                lines.append('    log "n={n}"')
            elif kind == "wait":
                lines.append(f"    wait {draw(st.integers(1, 900))}ms")
            elif kind == "result":
                lines.append(f'    result "{draw(NAMES)}"')
            else:
                lines.append(f"    if n > {draw(st.integers(0, 5))}:")
                lines.append(f'        say "{draw(NAMES)}"')
        targets = draw(st.lists(st.sampled_from(states), min_size=1, max_size=3, unique=True))
        lines.append(f'    menu "Choose" timeout {draw(st.integers(1, 9))}s:')
        for key, target in enumerate(targets, start=1):
            lines.append(f"        {key} -> {target}")
        lines.append(f"        failure -> {states[(index + 1) % count]}")
        lines.append("")
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None)
@given(valid_scripts())
def test_generated_valid_scripts_compile_cleanly_and_deterministically(source):
    first = COMPILER.compile_text(source, "gen.dlg")
    assert first.ok, first.render()
    second = Compiler().compile_text(source, "gen.dlg")
    assert first.program.to_json() == second.program.to_json()
