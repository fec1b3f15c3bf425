"""The ``ami://`` backend against the fake AMI server on 127.0.0.1 (real TCP, the global reactor iterated)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from autocall.ami.client import AmiClient, Backoff
from autocall.campaign.pbx_ami import AmiPbx
from autocall.campaign.scheduler import Scheduler
from autocall.campaign.setup import settings_from
from autocall.engine.record import CallRecord
from autocall.errors import UserError
from autocall.store import campaigns as store
from autocall.store.calls import save_call
from campaign_helpers import ROOT_DIR, SCRIPT, contact_rows, contacts, new_campaign, write_csv
from tests.fakes.fake_ami import FakeAmiServer

SECRET = "campaign-s3cret"


@pytest.fixture
def reactor():
    from twisted.internet import reactor as global_reactor
    return global_reactor


@pytest.fixture
def fake_ami(reactor, run_reactor):
    servers = []

    def make(**options) -> FakeAmiServer:
        server = FakeAmiServer(reactor, secret=SECRET, **options)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        run_reactor(server.stop())


def agi_side(db, result="confirmed"):
    """What the FastAGI server does for an answered campaign call: save its record under the attempt id."""
    def on_answer(action):
        attempt_id = int(action.variables["AUTOCALL_ATTEMPT"])
        context = store.attempt_context(db, attempt_id)
        now = time.time()
        save_call(db, CallRecord(call_id=f"agi-{attempt_id}", script=context["script"], started_at=now,
                                 ended_at=now + 7, caller=context["number"], result=result),
                  attempt_id=attempt_id, origin="agi")
    return on_answer


def run_campaign(db, program, tmp_path, reactor, run_reactor, server, outcomes, timeout=20, **options):
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(outcomes))
    campaign_id, _, merged = new_campaign(db, program, csv_path, time.time(), **options)
    client = AmiClient(server.endpoint, username="autocall", secret=SECRET, reactor=reactor, ping_interval_ms=None,
                       backoff=Backoff(initial_ms=20, factor=2, max_ms=200), originate_margin_ms=1_000)
    run_reactor(client.start())
    pbx = AmiPbx(client, db, reactor, channel_template="PJSIP/{number}@trunk", context="autocall-outbound",
                 script="reminder", agi_url="agi://127.0.0.1:4573", caller_id=merged["caller_id"],
                 amd=merged["amd"], ring_timeout_ms=1_000, poll_s=0.02, hangup_grace_s=2,
                 unknown_wait_s=0.5)
    try:
        summary = run_reactor(Scheduler(db, campaign_id, pbx, reactor, settings_from(merged)).run(), timeout)
    finally:
        pbx.close()
        run_reactor(client.stop())
    return campaign_id, summary


def test_originate_carries_the_fields_asterisk_expects(db, program, tmp_path, reactor, run_reactor, fake_ami):
    server = fake_ami()
    server.on_answer = agi_side(db)
    campaign_id, summary = run_campaign(db, program, tmp_path, reactor, run_reactor, server, ["answer"] * 2,
                                        caller_id="Acme <5551234>", amd=True)
    assert summary["by_outcome"] == {"answered": 2}
    attempts = {row["number"]: row["id"] for row in db.execute("SELECT id, number FROM attempts")}
    for action in server.originates:
        number = action.number
        assert action.get("Channel") == f"PJSIP/{number}@trunk"
        assert (action.get("Context"), action.get("Exten"), action.get("Priority")) == ("autocall-outbound", "s", "1")
        assert action.get("Async") == "true" and action.get("Timeout") == "1000"
        assert action.get("CallerID") == "Acme <5551234>"
        assert action.variables == {"AUTOCALL_ATTEMPT": str(attempts[number]), "AUTOCALL_SCRIPT": "reminder",
                                    "AUTOCALL_NUMBER": number, "AUTOCALL_AGI_URL": "agi://127.0.0.1:4573",
                                    "AUTOCALL_AMD": "1"}
    rows = contacts(db, campaign_id)
    assert [(row["outcome"], row["result"], row["duration"]) for row in rows] == [("answered", "confirmed", 7)] * 2


def test_each_reason_code_maps_to_its_outcome(db, program, tmp_path, reactor, run_reactor, fake_ami):
    reasons = {"answered": 4, "busy": 5, "congestion": 8, "noanswer": 3, "failed": 0, "hangup": 1}
    numbers = [f"+3906555{index:04d}" for index in range(len(reasons))]
    server = fake_ami(outcomes=dict(zip(numbers, reasons.values())))
    server.on_answer = agi_side(db)
    campaign_id, _ = run_campaign(db, program, tmp_path, reactor, run_reactor, server, [""] * len(reasons),
                                  attempts=1)
    got = {row["number"]: row["outcome"] for row in contacts(db, campaign_id)}
    expected = {"answered": "answered", "busy": "busy", "congestion": "congestion", "noanswer": "noanswer",
                "failed": "failed", "hangup": "failed"}
    assert [got[number] for number in numbers] == list(expected.values())


def test_a_dropped_ami_link_mid_campaign_is_reestablished_and_nothing_is_lost(db, program, tmp_path, reactor,
                                                                             run_reactor, fake_ami):
    """Originates in flight when the link drops get their OriginateResponse after the re-login; one that
    Asterisk never received (lost with the socket) ends ``unknown``, final: it may have been placed."""
    server = fake_ami(drop_after_originates=3, call_delay=0.3)
    server.on_answer = agi_side(db)
    campaign_id, summary = run_campaign(db, program, tmp_path, reactor, run_reactor, server, ["answer"] * 8,
                                        concurrency=4)
    assert server.logins >= 2, "the link was not re-established"
    rows = contacts(db, campaign_id)
    received = [action.number for action in server.originates]
    assert len(received) == len(set(received)), "a contact was dialled twice"
    assert summary["by_status"]["done"] == 8
    for row in rows:
        assert row["attempts"] == 1
        if row["number"] in received:
            assert (row["outcome"], row["result"]) == ("answered", "confirmed")
        else:
            assert row["outcome"] == "unknown"
    assert len(received) >= 7


def test_an_answered_call_whose_record_never_comes_stays_answered(db, program, tmp_path, reactor, run_reactor,
                                                                 fake_ami):
    server = fake_ami()             # no FastAGI side: the Hangup event shortens the wait
    campaign_id, summary = run_campaign(db, program, tmp_path, reactor, run_reactor, server, ["answer"])
    row = contacts(db, campaign_id)[0]
    assert (row["outcome"], row["result"]) == ("answered", None)
    assert "no call record" in row["detail"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cli(tmp_path, port: int, secret: str, outcomes=("answer",), *options: str):
    """``autocall campaign run`` in its own process, on ``tmp_path/autocall.db``, through the AMI at ``port``."""
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(outcomes))
    env = dict(os.environ, AUTOCALL_DATABASE=str(tmp_path / "autocall.db"), AUTOCALL_AMI_SECRET=secret,
               PYTHONPATH=str(ROOT_DIR))
    return subprocess.Popen([sys.executable, "-m", "autocall", "campaign", "run", str(csv_path), "--script",
                             str(SCRIPT), "--pbx", f"ami://autocall@127.0.0.1:{port}", *options], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(process, reactor, timeout=30):
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        assert time.monotonic() < deadline, "the dialer did not exit"
        reactor.iterate(0.01)
    return process.returncode, process.stdout.read(), process.stderr.read()


def test_a_refused_ami_login_is_one_line_and_exit_1_without_the_secret(tmp_path, reactor, fake_ami):
    server = fake_ami()
    wrong = "wrong-Secret-42"
    code, out, err = _wait(_cli(tmp_path, server.port, wrong), reactor)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("autocall: error: ") and \
        "refused the login of user 'autocall'" in err, err
    assert "Traceback" not in err
    assert wrong not in out + err


def test_an_unreachable_ami_host_is_one_line_and_exit_1(tmp_path, reactor):
    secret = "never-Shown-7"
    code, out, err = _wait(_cli(tmp_path, _free_port(), secret), reactor)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("autocall: error: cannot reach the Asterisk Manager at 127.0.0.1:")
    assert "Traceback" not in err and secret not in out + err


def test_campaign_run_over_ami_end_to_end_exits_0_with_every_contact_done(tmp_path, reactor, fake_ami):
    """The CLI process dials through the fake Asterisk; this process plays the FastAGI side on the same database."""
    from autocall.store.db import connect
    server = fake_ami(outcomes={"+39065550001": "busy"})
    conn = connect(str(tmp_path / "autocall.db"))
    server.on_answer = agi_side(conn)
    process = _cli(tmp_path, server.port, SECRET, ["answer", "busy", "answer"],
                   "--attempts", "2", "--retry-after", "100ms")
    code, out, err = _wait(process, reactor)
    assert code == 0, err
    assert "campaign c: done" in out and SECRET not in out + err
    outcomes = {row["number"]: (row["outcome"], row["attempts"], row["result"]) for row in contacts(conn, 1)}
    assert outcomes == {"+39065550000": ("answered", 1, "confirmed"), "+39065550001": ("busy", 2, None),
                        "+39065550002": ("answered", 1, "confirmed")}
    conn.close()


# -- several Asterisk servers ----------------------------------------------------------------------------------

def _run_on_pool(db, program, tmp_path, reactor, run_reactor, servers, calls: int, concurrency: int = 4) -> int:
    """A campaign of ``calls`` answered contacts over a pool of ``servers``; its id."""
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(["answer"] * calls))
    campaign_id, _, merged = new_campaign(db, program, csv_path, time.time(), concurrency=concurrency)
    pool, clients = _pool(db, reactor, run_reactor, servers, concurrency)
    try:
        run_reactor(Scheduler(db, campaign_id, pool, reactor, settings_from(merged)).run(), 20)
    finally:
        pool.close()
        for client in clients:
            run_reactor(client.stop())
    return campaign_id


def _pool(db, reactor, run_reactor, servers, concurrency):
    from autocall.campaign.pbx_pool import Member, PbxPool, shares
    members, clients = [], []
    for server, share in zip(servers, shares(concurrency, len(servers))):
        client = AmiClient(server.endpoint, username="autocall", secret=SECRET, reactor=reactor,
                           ping_interval_ms=None, backoff=Backoff(initial_ms=20, factor=2, max_ms=200),
                           originate_margin_ms=1_000)
        run_reactor(client.start())
        clients.append(client)
        pbx = AmiPbx(client, db, reactor, channel_template="PJSIP/{number}@trunk", context="autocall-outbound",
                     script="reminder", ring_timeout_ms=1_000, poll_s=0.02, hangup_grace_s=2, unknown_wait_s=0.5)
        members.append(Member(f"ami://autocall@127.0.0.1:{server.port}", share, pbx))
    return PbxPool(members, reactor, rest_s=60), clients


def test_calls_spread_over_two_servers_each_within_its_share(db, program, tmp_path, reactor, run_reactor,
                                                             fake_ami):
    first, second = fake_ami(call_delay=0.05), fake_ami(call_delay=0.05)
    busiest = {first: 0, second: 0}

    def watching(server):
        def on_answer(action):
            busiest[server] = max(busiest[server], len(server.calls))
            agi_side(db)(action)
        return on_answer
    first.on_answer, second.on_answer = watching(first), watching(second)
    campaign_id = _run_on_pool(db, program, tmp_path, reactor, run_reactor, [first, second], 12)
    assert len(first.originates) + len(second.originates) == 12
    assert len(first.originates) >= 4 and len(second.originates) >= 4       # both took calls
    assert max(busiest.values()) <= 2                                          # each within its share of 4
    assert {row["outcome"] for row in contacts(db, campaign_id)} == {"answered"}


def test_a_server_refusing_originates_is_skipped_and_its_call_goes_to_the_other(db, program, tmp_path, reactor,
                                                                               run_reactor, fake_ami):
    from tests.fakes.fake_ami import _response
    refusing, working = fake_ami(), fake_ami()
    refusing._originate = lambda session, action: session.send(
        _response(action, "Error", ("Message", "Originate failed")))
    working.on_answer = agi_side(db)
    campaign_id = _run_on_pool(db, program, tmp_path, reactor, run_reactor, [refusing, working], 6)
    assert 1 <= len(refusing.originates) <= 2          # refused, then rested (skipped)
    assert len(working.originates) == 6
    rows = contacts(db, campaign_id)
    assert [(row["outcome"], row["attempts"]) for row in rows] == [("answered", 1)] * 6   # a refusal is no attempt


def test_one_server_down_at_start_the_campaign_runs_on_the_other(tmp_path, reactor, fake_ami):
    from autocall.store.db import connect
    server = fake_ami()
    conn = connect(str(tmp_path / "autocall.db"))
    server.on_answer = agi_side(conn)
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(["answer"] * 3))
    env = dict(os.environ, AUTOCALL_DATABASE=str(tmp_path / "autocall.db"), AUTOCALL_AMI_SECRET=SECRET,
               PYTHONPATH=str(ROOT_DIR))
    down = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "autocall", "campaign", "run", str(csv_path), "--script",
                                str(SCRIPT), "--pbx", f"ami://autocall@127.0.0.1:{down}",
                                "--pbx", f"ami://autocall@127.0.0.1:{server.port}"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    code, out, err = _wait(process, reactor)
    assert code == 0, err
    assert f"127.0.0.1:{down}" in err and "skipped until it answers" in err and "Traceback" not in err
    assert len(server.originates) == 3
    conn.close()


def test_pbx_sim_cannot_be_mixed_and_a_server_cannot_be_given_twice():
    from autocall.campaign.setup import parse_pbxes
    with pytest.raises(UserError, match="cannot be combined"):
        parse_pbxes(["sim", "ami://u@h:5038"])
    with pytest.raises(UserError, match="given twice"):
        parse_pbxes(["ami://u@h:5038", "ami://u@h"])
    assert [str(a) for a in parse_pbxes(["ami://u@h1", "ami://u@h2:5039"])] == ["ami://u@h1:5038",
                                                                              "ami://u@h2:5039"]
