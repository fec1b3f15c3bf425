"""Secret values stay secret wherever they flow; values have size bounds; Dial metacharacters never reach Dial.

Run in the simulator (the engine is the same on the FastAGI server; the
server tests cover the AGI side of each).
"""

from __future__ import annotations

import json
import time

import pytest

from autocall.engine.channel import TtsPrompt
from autocall.engine.interpreter import Call
from autocall.engine.values import MAX_NUMBER_DIGITS, MAX_TEXT_CHARS
from autocall.sim.caller import ScriptedCaller
from autocall.sim.channel import SimChannel, SimClock, run_sync
from autocall.sim.runner import parse_settings, simulate


PIN = "4739"


class RecordingChannel(SimChannel):
    """The simulated channel, keeping what the engine handed it (prompts and dials)."""

    def __init__(self, keys: str, transfer_status: str = "NOANSWER") -> None:
        super().__init__(ScriptedCaller(keys), SimClock(0.0), transfer_status=transfer_status)
        self.played: list = []
        self.dialled: list[tuple[str, str | None]] = []

    async def play(self, prompt, interrupt_keys=""):
        self.played.append(prompt)
        return await super().play(prompt, interrupt_keys)

    async def transfer(self, destinations, timeout_ms, callerid, announce=None, recording=None):
        self.dialled.extend((destination, callerid) for destination in destinations)
        return await super().transfer(destinations, timeout_ms, callerid, announce, recording)


def run(program, keys: str = "", transfer_status: str = "NOANSWER", **values):
    channel = RecordingChannel(keys, transfer_status)
    settings = parse_settings(program, values)
    call = Call(program, channel, channel.clock, call_id="t", params=settings.params, builtins=settings.builtins)
    return run_sync(call.run()), channel


def shown(record) -> str:
    """Everything of the record a person or a file could see."""
    return json.dumps(record.to_dict()) + json.dumps(record.simulate_json())


# -- item 1: anything derived from a secret is secret -------------------------------------------------

DERIVED = """\
var copy = ""
var text = ""
var number = 0
var same = 0
state main:
    gather pin digits 4 secret prompt "PIN?"
    set copy = pin
    set text = "code " + copy
    set number = pin + 1
    set same = copy == "4739"
    log copy
    log "the code is {copy}"
    log number
    say "You typed {copy|digits}."
    if same:
        result text
    transfer "PJSIP/{copy}@trunk"
"""


def test_copies_text_sums_and_comparisons_of_a_secret_are_secret_but_work(program):
    record, channel = run(program(DERIVED), keys=PIN)
    assert PIN not in shown(record) and "4 7 3 9" not in shown(record) and "4740" not in shown(record)
    assert record.variables == {"copy": "***", "text": "***", "number": "***", "same": "***", "pin": "***"}
    assert [entry["message"] for entry in record.log] == ["***", "the code is ***", "***"]
    assert record.prompts[-1] == {"kind": "tts", "text": "You typed ***."}
    assert record.result == "***"                # set: the comparison held, the value works
    assert record.transfers == [{"destination": "PJSIP/***@trunk", "dialstatus": "NOANSWER"}]
    assert channel.dialled == [("PJSIP/4739@trunk", None)]   # Asterisk still gets the real destination
    assert channel.played[-1].text == "You typed 4 7 3 9." and channel.played[-1].secret
    assert not channel.played[0].secret


def test_a_variable_given_a_plain_value_again_is_no_longer_secret(program):
    body = 'var copy = ""\nstate main:\n    gather pin digits 4 secret\n    set copy = pin\n    set copy = "open"\n' \
           '    log copy\n'
    record, _ = run(program(body), keys=PIN)
    assert record.log[0]["message"] == "open" and record.variables["copy"] == "open"


def test_a_run_time_error_about_a_secret_does_not_show_it(program):
    body = 'var n = 0\nstate main:\n    gather pin max 4 secret\n    set n = pin * 4\n'
    record, _ = run(program(body), keys="12*4")
    assert record.ended_by == "error"
    assert "12*4" not in shown(record) and "a secret value" in record.error


def test_simulate_json_masks_derived_values(program):
    record = simulate(program(DERIVED), keys=PIN)
    assert PIN not in json.dumps(record.simulate_json())


# -- item 3: interpolated values never add a Dial destination or option ---------------------------------

@pytest.mark.parametrize("value", ["100&PJSIP/999", "100,30,D(123)", "100|x", "100)", "10\n0", "1\x1b0"])
def test_dial_metacharacters_in_a_value_refuse_the_transfer(program, value):
    body = 'param ext\nstate main:\n    transfer "PJSIP/{ext}@trunk"\n    result dialstatus\n'
    record, channel = run(program(body), ext=value)
    assert channel.dialled == []
    assert record.result == "INVALIDARGS" and record.ended_by == "hangup"
    assert record.transfers == [{"destination": f"PJSIP/{value}@trunk", "dialstatus": "INVALIDARGS"}]
    assert "transfer not attempted: the value of 'ext' contains" in record.log[0]["message"]
    assert value not in record.log[0]["message"]


def test_dial_metacharacters_in_a_caller_id_value_refuse_the_transfer(program):
    body = 'param name\nstate main:\n    transfer "PJSIP/100" callerid "{name} <100>"\n    result dialstatus\n'
    record, channel = run(program(body), name="Ann,(x)")
    assert channel.dialled == [] and record.result == "INVALIDARGS"


def test_a_plain_value_and_a_literal_with_dial_syntax_still_transfer(program):
    body = 'param ext\nstate main:\n    transfer "PJSIP/{ext}&PJSIP/200"\n    result dialstatus\n'
    record, channel = run(program(body), ext="100")
    assert channel.dialled == [("PJSIP/100&PJSIP/200", None)] and record.result == "NOANSWER"


# -- item 9: numbers and texts have bounds -----------------------------------------------------------------

def test_a_number_squared_in_a_loop_is_an_error_of_the_call_not_a_stall(program):
    body = 'var n = 3\nstate main:\n    set n = n * n\n    wait 1s\n    goto main\n'
    started = time.process_time()
    record, _ = run(program(body))
    assert time.process_time() - started < 2
    assert record.ended_by == "error" and f"{MAX_NUMBER_DIGITS:,} digits" in record.error


def test_a_text_doubled_in_a_loop_is_an_error_of_the_call(program):
    body = 'var s = "abcd"\nstate main:\n    set s = s + "{s}"\n    wait 1s\n    goto main\n'
    record, _ = run(program(body))
    assert record.ended_by == "error" and f"{MAX_TEXT_CHARS:,} characters" in record.error


def test_a_very_long_digit_string_compares_and_fails_arithmetic_cleanly(program):
    body = ('param digits\nvar n = 0\nstate main:\n    if digits > 5:\n        log "bigger"\n'
            '    set n = digits + 1\n')
    record, _ = run(program(body), digits="9" * 5000)
    assert record.log[0]["message"] == "bigger"
    assert record.ended_by == "error" and "internal error" not in record.error
    assert f"at most {MAX_NUMBER_DIGITS:,} digits" in record.error
