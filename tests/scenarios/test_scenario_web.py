"""Scenario files with canned web replies: [[scenario.reply]], [[defaults.reply]], expect_requests and
expect_notifications; a scenario never reaches the network."""

from __future__ import annotations

from autocall.scenarios import ERROR, FAILED, PASSED, ScenarioRunner

SCRIPT = """dialogue lookup
service crm = "http://127.0.0.1:9/api"
start main

state main:
    fetch account from crm "/accounts/{caller}" timeout 2s
    if not account.ok:
        say "Sorry, {account.error}."
        hangup
    say "Hello {account.data.name}."
    gather pin digits 4 secret
    send crm "/checks" with pin = pin into check
    notify crm "/events" with kind = "lookup", valid = check.data.valid
    result "done"
"""

SCENARIOS = """
[defaults]
set = { caller = "5550100" }

[[defaults.reply]]
service = "crm"
method = "POST"
path = "/checks"
json = { valid = true }

[[defaults.reply]]
service = "crm"
path_prefix = "/accounts/"
json = { name = "Default" }

[[scenario]]
name = "known caller, its own reply first"
keys = "1234"
expect_heard = ["Hello Ada."]
expect_requests = ["GET crm /accounts/5550100", { method = "POST", path = "/checks", body = { pin = "***" }, ok = 1 }]
expect_notifications = [{ service = "crm", path = "/events", body = { kind = "lookup", valid = 1 } }]

[[scenario.reply]]
service = "crm"
path = "/accounts/5550100"
json = { name = "Ada" }

[[scenario]]
name = "defaults answer"
keys = "1234"
expect_heard = ["Hello Default."]

[[scenario]]
name = "crm slow"
expect_heard = ["Sorry, timeout after 2s."]
expect_requests = [{ status = 0, ok = 0, error = "timeout after 2s" }]
expect_notifications = []

[[scenario.reply]]
service = "crm"
delay = "3s"
json = {}

[[scenario]]
name = "wrong expectation"
keys = "1234"
expect_requests = ["GET crm /accounts/1"]

[[scenario]]
name = "bad reply table"

[[scenario.reply]]
service = "crm"
stauts = 200
"""

NO_REPLY = """
[[scenario]]
name = "nothing canned"
expect_heard = ["Sorry, no reply for GET crm /accounts/5550100."]
set = { caller = "5550100" }
"""


def test_canned_replies_and_web_expectations(compiler, tmp_path):
    (tmp_path / "lookup.dlg").write_text(SCRIPT, encoding="utf-8")
    (tmp_path / "lookup.test.toml").write_text(SCENARIOS, encoding="utf-8")
    outcome = ScenarioRunner(compiler).run_script(str(tmp_path / "lookup.dlg"))
    assert outcome.problems == []
    assert [(o.scenario.name, o.status) for o in outcome.outcomes] == [
        ("known caller, its own reply first", PASSED), ("defaults answer", PASSED), ("crm slow", PASSED),
        ("wrong expectation", FAILED), ("bad reply table", ERROR)]
    failure = outcome.outcomes[3].failures[0]
    assert failure.message.startswith("request 1 differs: expected {method = 'GET', service = 'crm', "
                                      "path = '/accounts/1'}")
    assert "reply 1: unknown key 'stauts' (did you mean 'status'?)" in outcome.outcomes[4].failures[0].message


def test_a_scenario_without_replies_never_reaches_the_network(compiler, tmp_path):
    (tmp_path / "lookup.dlg").write_text(SCRIPT.replace("http://127.0.0.1:9", "https://crm.invalid"),
                                         encoding="utf-8")
    (tmp_path / "lookup.test.toml").write_text(NO_REPLY, encoding="utf-8")
    outcome = ScenarioRunner(compiler).run_script(str(tmp_path / "lookup.dlg"))
    assert [(o.scenario.name, o.status) for o in outcome.outcomes] == [("nothing canned", PASSED)]
    assert outcome.outcomes[0].record.requests[0]["ms"] == 0.0
