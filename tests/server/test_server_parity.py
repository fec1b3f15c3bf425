"""One engine: every example scenario gives the same call in the simulator and through the server.

Each scenario of ``scripts_examples/*.test.toml`` (the format of
``autocall test``) runs twice: in ``autocall.sim.runner.simulate``, and over
TCP through the FastAGI server with the fake Asterisk playing the same
``--keys`` caller. The same params (sent in the AGI URL's query string), the
same dial status, the same wall time (the server's engine clock is set to the
scenario's ``now``); the path, result, prompts (the engine's trace), inputs,
transfers and ``ended_by`` must be equal. A scenario that sets ``amd`` runs as
a campaign call (an attempt in the server's database, ``AUTOCALL_ATTEMPT`` and
``AMDSTATUS`` on the channel), since that is the only way it reaches a script.
"""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import pytest

from autocall.agi.server import ShiftedClock
from autocall.dsl.compiler import Compiler
from autocall.scenarios import load_scenario_file
from autocall.sim.runner import parse_settings, simulate
from autocall.sim.web import CannedWeb
from tests.fakes.fake_asterisk import FakeAsterisk, transcript_environment
from tests.server.helpers import campaign_attempt, open_database

EXAMPLES = Path(__file__).resolve().parents[2] / "scripts_examples"
CONTACT_NUMBER = "+15550100"


@functools.lru_cache(maxsize=None)
def example(script: str):
    """(program, scenario file) of one example script, compiled once per process."""
    program = Compiler().compile_file(str(EXAMPLES / script)).program
    return program, load_scenario_file(str(EXAMPLES / script.replace(".dlg", ".test.toml")), program)


def all_scenarios() -> list:
    cases = []
    for path in sorted(EXAMPLES.glob("*.test.toml")):
        script = path.name.replace(".test.toml", ".dlg")
        program, scenarios = example(script)
        assert program is not None and not scenarios.problems, f"{script} or its scenarios do not load"
        for scenario in scenarios.scenarios:
            cases.append(pytest.param(script, scenario.number, id=f"{script[:-4]}::{scenario.name}"))
    return cases


class _Timeless:
    """The canned replies' clock on the server: a reply's delay is not waited for (the outcome is the same)."""

    @staticmethod
    def advance(ms: int) -> None:
        pass


def comparable(record) -> dict:
    return {"path": record.path, "result": record.result, "prompts": record.prompts, "inputs": record.inputs,
            "transfers": record.transfers, "ended_by": record.ended_by, "error": bool(record.error)}


def stored(row: dict) -> dict:
    return {key: row[key] for key in ("path", "result", "prompts", "inputs", "transfers", "ended_by")} | {
        "error": bool(row["error"])}


@pytest.mark.parametrize("script, number", all_scenarios())
def test_simulator_and_server_give_the_same_call(script, number, serve, tmp_path):
    program, scenarios = example(script)
    scenario = scenarios.scenarios[number - 1]
    if scenario.skip is not None:
        pytest.skip(f"the scenario is skipped in its file: {scenario.skip}")
    settings = parse_settings(program, scenario.settings)
    if settings.initial:
        pytest.skip("starting values of vars cannot come from Asterisk")
    now = scenario.now or datetime.now(timezone.utc)
    simulated = simulate(program, keys=scenario.keys, settings=settings, now=now, replies=scenario.replies)

    running = serve(EXAMPLES, engine_clock=None)
    running.server.web_port = CannedWeb(scenario.replies, _Timeless())     # the same web replies, no network
    running.server.engine_clock = ShiftedClock(running.live.reactor, now.timestamp())
    builtins = settings.builtins
    variables = {}
    if "amd" in builtins or "attempt" in builtins:
        if builtins.get("attempt", 1) != 1:
            pytest.skip("only a first attempt can be staged in the database")
        conn = open_database(running.database)
        attempt = campaign_attempt(conn, script=script[:-4], number=builtins.get("caller") or CONTACT_NUMBER,
                                   params={}, amd="amd" in builtins)
        conn.close()
        variables = {"AUTOCALL_ATTEMPT": attempt.token, "AMDSTATUS": str(builtins.get("amd", ""))}
    query = "&".join(f"{quote(name)}={quote(str(value))}" for name, value in settings.params.items())
    environment = transcript_environment(
        script[:-4] + (f"?{query}" if query else ""), uniqueid=f"parity.{number}",
        callerid=str(builtins.get("caller") or "unknown"), calleridname=str(builtins.get("caller_name") or "unknown"),
        extra={key: str(builtins[name]) for name, key in (("called", "agi_dnid"), ("channel", "agi_channel"))
               if name in builtins})
    transcript = running.call(FakeAsterisk(environment=environment, keys=scenario.keys,
                                           dial_status=settings.transfer_status, queue_status=settings.queue_status,
                                           variables=variables))
    served = running.last()
    assert served["call_id"] == f"parity.{number}"
    assert stored(served) == comparable(simulated), (served["log"], transcript.render())


TYPEAHEAD = """\
dialogue typeahead
start main

state main:
    answer
    say "Welcome to Acme. This message is long."
    play sound "beep"
    menu "Press 1 for sales, 2 for support." timeout 2s:
        1 -> sales
        2 -> support
        failure -> bye

state sales:
    say "Sales. Your order number, please."
    gather order digits 3 timeout 2s
    result "sales {order}"
    goto bye

state support:
    result "support"
    goto bye

state bye:
    say "Goodbye."
"""


@pytest.mark.parametrize("keys", ["1 123", "1123", "2", "12 3", "1 1 2 3 9", "9 1 1 2 3", ""])
def test_keys_pressed_while_a_prompt_speaks_are_kept_for_the_next_input_on_both(keys, serve, tmp_path):
    """Type-ahead: on Asterisk a key that is not an escape digit is thrown away during playback, so the
    server stops the prompt on every key, keeps the key and plays the prompt on from where it stopped.
    The fake Asterisk's caller presses the next key while any prompt plays (typeahead=True)."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "typeahead.dlg").write_text(TYPEAHEAD, encoding="utf-8")
    program = Compiler().compile_file(str(scripts / "typeahead.dlg")).program
    simulated = simulate(program, keys=keys)
    running = serve(scripts)
    transcript = running.call(FakeAsterisk("typeahead", keys=keys, typeahead=True, uniqueid="ta"))
    assert stored(running.last()) == comparable(simulated), transcript.render()
    assert simulated.ended_by == "hangup"
    if keys.startswith("1"):
        assert simulated.path[:2] == ["main", "sales"]
        # the welcome prompt was stopped by the key and resumed where it stopped: heard to the end
        welcome = [line for line in transcript.commands() if line.startswith("STREAM FILE") and "0123" in line]
        assert any(line.endswith(" 4000") for line in welcome), transcript.render()
