"""WebClient against a real HTTP service on 127.0.0.1: each fault gives ok 0, the right error, and no delay to others."""

from __future__ import annotations

import logging
import time

import pytest
from twisted.internet import defer

from autocall.services_config import SecretSetting, ServiceConfig
from autocall.web.client import WebClient
from tests.fakes.http_service import HttpService, free_port
from tests.fakes.reactor import iterate_until


@pytest.fixture
def service():
    running = HttpService().start()
    yield running
    running.stop()


@pytest.fixture
def client(service):
    configured = {"crm": ServiceConfig("crm", service.url + "/api",
                                       {"Authorization": SecretSetting("Bearer s3cr3t-token")}, None, 4)}
    made = WebClient(configured)
    yield made
    iterate_until(made.close())


def fetch(client, path, timeout_s=3.0, **options):
    return iterate_until(client.request("crm", "GET", path, timeout_s=timeout_s, **options), timeout=30)


def test_a_json_reply_is_ok_with_its_data_status_and_time(client, service):
    service.routes["/api/accounts/5550100"] = ("json", 200, {"id": 7, "balance": "42.50", "items": [{"n": 1}]})
    reply = fetch(client, "/accounts/5550100", query={"full": 1})
    assert (reply.ok, reply.status, reply.error) == (1, 200, "")
    assert reply.read("data.id") == 7 and reply.read("data.items.0.n") == 1 and reply.read("data.nope") == ""
    assert reply.entry()["path"] == "/accounts/5550100" and reply.elapsed_ms > 0
    sent = service.requests[0]
    assert sent["path"] == "/api/accounts/5550100?full=1"
    assert sent["headers"]["Authorization"] == "Bearer s3cr3t-token"


def test_send_posts_json(client, service):
    service.routes["/api/pin-checks"] = ("json", 201, {"valid": True})
    reply = iterate_until(client.request("crm", "POST", "/pin-checks", json_body={"account": 7, "pin": "1234"}))
    assert (reply.ok, reply.read("data.valid")) == (1, 1)
    assert service.requests[0]["method"] == "POST"
    assert service.requests[0]["headers"]["Content-Type"].startswith("application/json")
    import json
    assert json.loads(service.requests[0]["body"]) == {"account": 7, "pin": "1234"}


def test_an_empty_2xx_body_is_ok(client, service):
    service.routes["/api/empty"] = ("body", 204, b"", "text/plain")
    reply = fetch(client, "/empty")
    assert (reply.ok, reply.status, reply.error, reply.data) == (1, 204, "", "")


def test_service_down_is_connection_refused():
    client = WebClient({"crm": ServiceConfig("crm", f"http://127.0.0.1:{free_port()}")})
    reply = fetch(client, "/x")
    assert (reply.ok, reply.status, reply.error) == (0, 0, "connection refused")


@pytest.mark.parametrize("status", [500, 503, 429, 404])
def test_an_error_status_is_http_n(client, service, status):
    service.routes["/api/e"] = ("json", status, {"message": "busy"})
    reply = fetch(client, "/e")
    assert (reply.ok, reply.status, reply.error) == (0, status, f"HTTP {status}")
    assert reply.read("data.message") == "busy"        # an error's JSON body is still readable


def test_html_is_not_json(client, service):
    service.routes["/api/page"] = ("body", 200, b"<html><body>Login</body></html>", "text/html")
    reply = fetch(client, "/page")
    assert (reply.ok, reply.status, reply.error, reply.data) == (0, 200, "reply is not JSON", "")


@pytest.mark.parametrize("kind", ["huge", "chunked_huge"])
def test_a_20_mb_reply_is_refused_early(client, service, kind):
    service.routes["/api/big"] = (kind, 20 * 1024 * 1024)
    started = time.monotonic()
    reply = fetch(client, "/big")
    assert (reply.ok, reply.status, reply.error) == (0, 0, "reply over 1 MB")
    assert time.monotonic() - started < 5


def test_a_redirect_is_not_followed(client, service):
    service.routes["/api/moved"] = ("redirect", "http://127.0.0.2:1/steal")
    reply = fetch(client, "/moved")
    assert (reply.ok, reply.status, reply.error) == (0, 302, "HTTP 302")
    assert len(service.requests) == 1


def test_closed_mid_body_and_closed_without_reply(client, service):
    service.routes["/api/cut"] = ("cut",)
    service.routes["/api/close"] = ("close",)
    cut = fetch(client, "/cut")
    assert (cut.ok, cut.status, cut.error) == (0, 0, "connection closed before the reply was complete")
    closed = fetch(client, "/close")
    assert (closed.ok, closed.status, closed.error) == (0, 0, "connection closed without a reply")


def test_a_slow_service_costs_only_the_calls_that_wait(client, service):
    """Four requests to a service that does not answer time out after 0.5 s each, together; a request to a
    healthy path meanwhile (another slot) answers at once."""
    service.routes["/api/slow"] = ("slow", 30)
    service.routes["/api/fast"] = ("json", 200, {"fine": 1})
    other = WebClient({"crm": ServiceConfig("crm", service.url + "/api")})
    started = time.monotonic()
    slow = [client.request("crm", "GET", "/slow", timeout_s=0.5) for _ in range(3)]
    fast = iterate_until(other.request("crm", "GET", "/fast", timeout_s=3))
    fast_time = time.monotonic() - started
    replies = iterate_until(defer.gatherResults(slow), timeout=10)
    assert fast.ok == 1 and fast_time < 0.45
    assert [(r.ok, r.status, r.error) for r in replies] == [(0, 0, "timeout after 0.5s")] * 3
    assert time.monotonic() - started < 2
    iterate_until(other.close())


def test_max_concurrent_holds_and_waiting_counts_in_the_timeout(service):
    """max_concurrent 2: a third request waits for a slot, within its own timeout."""
    service.routes["/api/slow"] = ("slow", 30)
    client = WebClient({"crm": ServiceConfig("crm", service.url + "/api", max_concurrent=2)})
    replies = [client.request("crm", "GET", "/slow", timeout_s=t) for t in (0.6, 0.6, 0.3)]
    iterate_until(defer.gatherResults(replies), timeout=10)
    assert [r.result.error for r in replies] == ["timeout after 0.6s", "timeout after 0.6s", "timeout after 0.3s"]
    assert len(service.requests) == 2          # the third never got a slot
    assert client.in_flight == 0


def test_only_the_services_host_path_values_stay_one_segment(client, service):
    from autocall.engine.web import build_path
    service.routes["/api/accounts/..%2Fadmin"] = ("json", 200, {"ok": 1})
    path, _ = build_path(["/accounts/", ""], ["../admin"])
    reply = fetch(client, path)
    assert reply.ok == 1 and service.requests[0]["path"] == "/api/accounts/..%2Fadmin"


def test_the_log_has_method_service_path_status_time_never_secrets(client, service, caplog):
    from autocall.engine.web import build_path
    service.routes["/api/pins/1234"] = ("json", 200, {})
    path, shown = build_path(["/pins/", ""], ["1234"], is_secret=lambda value: True)
    with caplog.at_level(logging.INFO, logger="autocall.web"):
        reply = fetch(client, path, shown_path=shown, query={"pin": "1234"}, call_id="c-1")
    assert reply.path == "/pins/***"
    lines = [(record.getMessage(), record.fields) for record in caplog.records if record.name == "autocall.web"]
    assert lines == [("web request", {"call_id": "c-1", "method": "GET", "service": "crm", "path": "/pins/***",
                                      "status": 200, "ms": pytest.approx(reply.elapsed_ms, abs=0.1), "error": None})]
    assert "s3cr3t" not in caplog.text and "1234" not in caplog.text


def test_cookies_are_never_kept(client, service):
    service.routes["/api/login"] = ("body", 200, b"{}", "application/json")
    fetch(client, "/login")
    fetch(client, "/login")
    assert all("Cookie" not in request["headers"] for request in service.requests)


def test_a_connection_the_server_closed_is_not_a_failure_for_get_or_keyed_posts():
    """An HTTP/1.0 server closes after each reply without saying so: the pooled connection is dead."""
    old = HttpService(http10=True).start()
    try:
        old.routes["/api/x"] = ("body", 204, b"", "text/plain")
        client = WebClient({"crm": ServiceConfig("crm", old.url + "/api")})
        for _ in range(3):
            assert fetch(client, "/x").ok == 1
            keyed = iterate_until(client.request("crm", "POST", "/x", body=b"{}", headers={"Idempotency-Key": "k"}))
            assert keyed.ok == 1
        iterate_until(client.close())
    finally:
        old.stop()


def test_a_path_that_would_change_the_host_is_refused_before_any_connection(client, service):
    for path in ("@127.0.0.2:1/x", "x"):
        reply = fetch(client, path)
        assert (reply.ok, reply.status, reply.error) == (0, 0, "path leaves the service's host")
    unknown = iterate_until(client.request("nowhere", "GET", "/x"))
    assert unknown.error == "the service has no usable URL"
    assert service.requests == []
