"""``simulate --http FILE.toml`` and ``--http live``, and web statements in a campaign on the simulated PBX."""

from __future__ import annotations

import json

import pytest

from autocall.cli.main import main
from tests.fakes.http_service import HttpService, free_port

SCRIPT = """dialogue lookup
service crm = "{url}"
start main

state main:
    fetch account from crm "/accounts/{{caller}}" with full = 1
    say "Hello {{account.data.name}} ({{account.status}} {{account.error}})."
    gather pin digits 4 secret
    send crm "/checks" with pin = pin into check
    notify crm "/events" with valid = check.data.valid
    result "{{check.data.valid}}"
"""
REPLIES = """
[[reply]]
service = "crm"
method = "GET"
path = "/accounts/5550100"
json = { name = "Ada" }

[[reply]]
service = "crm"
path_prefix = "/che"
json = { valid = true }
"""


@pytest.fixture
def crm():
    service = HttpService().start()
    service.routes["/api/accounts/5550100"] = ("json", 200, {"name": "Live Ada"})
    service.routes["/api/checks"] = ("json", 200, {"valid": True})
    yield service
    service.stop()


def simulate_json(capsys, tmp_path, url: str, *options: str) -> tuple[int, dict]:
    script = tmp_path / "lookup.dlg"
    script.write_text(SCRIPT.format(url=url), encoding="utf-8")
    config = tmp_path / "autocall.toml"
    if not config.exists():
        config.write_text(f'database = "{tmp_path / "a.db"}"\n', encoding="utf-8")
    code = main(["simulate", str(script), "--keys", "4321", "--set", "caller=5550100", "--json",
                 "--config", str(config), *options])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else {"stderr": err})


def test_canned_replies_answer_and_the_json_lists_requests_and_notifications(capsys, tmp_path):
    (tmp_path / "replies.toml").write_text(REPLIES, encoding="utf-8")
    code, data = simulate_json(capsys, tmp_path, "https://crm.example.com/api", "--http", str(tmp_path / "replies.toml"))
    assert code == 0 and data["prompts"][0]["text"] == "Hello Ada (200 )."
    assert data["requests"] == [
        {"service": "crm", "method": "GET", "path": "/accounts/5550100", "query": {"full": "1"}, "body": None,
         "status": 200, "ok": 1, "error": "", "ms": 0.0},
        {"service": "crm", "method": "POST", "path": "/checks", "query": {}, "body": {"pin": "***"},
         "status": 200, "ok": 1, "error": "", "ms": 0.0}]
    assert data["notifications"] == [{"service": "crm", "path": "/events", "body": {"valid": 1}}]
    assert data["result"] == "1" and "4321" not in json.dumps(data)


def test_without_http_nothing_is_sent_and_every_request_says_so(capsys, tmp_path, crm):
    code, data = simulate_json(capsys, tmp_path, crm.url + "/api")
    assert data["prompts"][0]["text"] == "Hello  (0 no reply for GET crm /accounts/5550100)."
    assert crm.requests == []


def test_http_live_sends_real_requests_to_the_service(capsys, tmp_path, crm):
    code, data = simulate_json(capsys, tmp_path, f"http://127.0.0.1:{free_port()}/api", "--http", "live")
    assert (data["requests"][0]["status"], data["requests"][0]["error"]) == (0, "connection refused")
    (tmp_path / "autocall.toml").write_text(
        f'database = "{tmp_path / "a.db"}"\n[services.crm]\nurl = "{crm.url}/api"\n'
        'headers = { Authorization = "Bearer T0KEN" }\n', encoding="utf-8")
    code, data = simulate_json(capsys, tmp_path, "https://crm.example.com/api", "--http", "live")
    assert code == 0 and data["prompts"][0]["text"] == "Hello Live Ada (200 )."
    assert [(r["method"], r["path"]) for r in crm.requests] == [("GET", "/api/accounts/5550100?full=1"),
                                                                ("POST", "/api/checks")]
    assert crm.requests[0]["headers"]["Authorization"] == "Bearer T0KEN"
    assert json.loads(crm.requests[1]["body"]) == {"pin": "4321"}
    assert data["notifications"] == [{"service": "crm", "path": "/events", "body": {"valid": 1}}]


def test_a_bad_http_file_is_one_line_and_exit_1(capsys, tmp_path):
    (tmp_path / "replies.toml").write_text('[[reply]]\nservice = "crm"\nmethod = "PUT"\n', encoding="utf-8")
    code, data = simulate_json(capsys, tmp_path, "https://crm.example.com/api", "--http", str(tmp_path / "replies.toml"))
    assert code == 1 and "replies.toml: reply 1: method = 'PUT'" in data["stderr"]
    assert "Traceback" not in data["stderr"]
