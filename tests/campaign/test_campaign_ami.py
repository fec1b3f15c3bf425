"""The ``ami://`` backend against the fake AMI server on 127.0.0.1 (real TCP, the global reactor iterated)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from autocall.ami.client import AmiClient, Backoff
from autocall.campaign.pbx import CallSettings
from autocall.campaign.pbx_ami import AmiLine, AmiPbx
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
        context = store.claim_attempt(db, action.variables["AUTOCALL_ATTEMPT"], time.time())
        attempt_id = context["attempt_id"]
        now = time.time()
        save_call(db, CallRecord(call_id=f"agi-{attempt_id}", script=context["script"], started_at=now,
                                 ended_at=now + 7, caller=context["number"], result=result),
                  attempt_id=attempt_id, origin="agi")
    return on_answer


def run_campaign(db, program, tmp_path, reactor, run_reactor, server, outcomes, timeout=20, hangup_grace_s=2,
                 **options):
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(outcomes))
    campaign_id, _, merged = new_campaign(db, program, csv_path, time.time(), **options)
    client = AmiClient(server.endpoint, username="autocall", secret=SECRET, reactor=reactor, ping_interval_ms=None,
                       backoff=Backoff(initial_ms=20, factor=2, max_ms=200), originate_margin_ms=1_000)
    run_reactor(client.start())
    pbx = AmiPbx(db, reactor, CallSettings(campaign="t", script="reminder", caller_id=merged["caller_id"],
                                          amd=merged["amd"], ring_timeout_ms=1_000),
                 AmiLine(client, channel_template="PJSIP/{number}@trunk", context="autocall-outbound",
                         agi_url="agi://127.0.0.1:4573", poll_s=0.02, hangup_grace_s=hangup_grace_s,
                         unknown_wait_s=0.5))
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
        token = action.variables["AUTOCALL_ATTEMPT"]
        assert token.startswith(f"{attempts[action.number]}.") and len(token) > 32
        number = action.number
        assert action.get("Channel") == f"PJSIP/{number}@trunk"
        assert (action.get("Context"), action.get("Exten"), action.get("Priority")) == ("autocall-outbound", "s", "1")
        assert action.get("Async") == "true" and action.get("Timeout") == "1000"
        assert action.get("CallerID") == "Acme <5551234>"
        assert action.variables == {"AUTOCALL_ATTEMPT": token, "AUTOCALL_SCRIPT": "reminder",
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


def test_an_answered_call_whose_script_never_ran_is_no_script_and_retried(db, program, tmp_path, reactor,
                                                                         run_reactor, fake_ami):
    """No call record after the Hangup and its grace: the script did not run; retried like a failure."""
    server = fake_ami()             # no FastAGI side: the Hangup event shortens the wait
    answers = []

    def second_time_the_script_runs(action):
        answers.append(action)
        if len(answers) > 1:
            agi_side(db)(action)
    server.on_answer = second_time_the_script_runs
    campaign_id, summary = run_campaign(db, program, tmp_path, reactor, run_reactor, server, ["answer"],
                                        hangup_grace_s=0.1, attempts=2, retry_after="10ms")
    row = contacts(db, campaign_id)[0]
    assert (row["outcome"], row["result"], row["attempts"]) == ("answered", "confirmed", 2)
    first = store.attempts_of_contact(db, row["id"])[0]
    assert first["outcome"] == "no_script" and "no call record" in first["reason"]


def test_a_record_that_comes_after_the_wait_is_taken_by_its_contact(db, program, tmp_path, reactor, run_reactor,
                                                                   fake_ami):
    """An answered attempt settled without its record (no_script, or answered after a crash) takes the record
    when the FastAGI server writes it later: no answered result is lost."""
    server = fake_ami()
    late = []                                 # the server took the call, and writes its record after the wait
    server.on_answer = lambda action: late.append(store.claim_attempt(db, action.variables["AUTOCALL_ATTEMPT"], 0))
    campaign_id, _ = run_campaign(db, program, tmp_path, reactor, run_reactor, server, ["answer"],
                                  hangup_grace_s=0.1, attempts=1)
    assert contacts(db, campaign_id)[0]["outcome"] == "no_script"
    save_call(db, CallRecord(call_id="late", script="reminder", started_at=1.0, ended_at=8.0, result="cancelled"),
              attempt_id=late[0]["attempt_id"], origin="campaign")
    store.recover_open_attempts(db, campaign_id, time.time())        # what the next run (or status) does
    row = contacts(db, campaign_id)[0]
    assert (row["status"], row["outcome"], row["result"], row["duration"]) == ("done", "answered", "cancelled", 7)


def test_an_originate_asterisk_refuses_is_retried_after_a_backoff_without_using_an_attempt(
        db, program, tmp_path, reactor, run_reactor, fake_ami):
    """Asterisk shutting down or still booting answers the Originate itself with an error: no one was dialled,
    so the contact keeps its attempts (today a core restart burned one attempt of every contact in 8 ms)."""
    server = fake_ami(refuse_originates=3)
    server.on_answer = agi_side(db)
    campaign_id, _ = run_campaign(db, program, tmp_path, reactor, run_reactor, server, ["answer"] * 2, attempts=1,
                                  concurrency=2)
    assert len(server.originates) == 5
    rows = contacts(db, campaign_id)
    assert [(row["outcome"], row["attempts"], row["result"]) for row in rows] == [("answered", 1, "confirmed")] * 2
    refused = db.execute("SELECT COUNT(*) FROM attempts WHERE reason LIKE 'not dialled: Asterisk refused%'")
    assert refused.fetchone()[0] == 3


def test_a_campaign_call_served_by_the_real_fastagi_server_sees_the_simulators_builtins(
        db, database_url, program, tmp_path, reactor, run_reactor, fake_ami, compiler):
    """Through the fake Asterisk and the real FastAGI server: ``called`` is the caller-id number (not ``s``),
    ``caller`` the contact's number, ``attempt`` the attempt; the record settles the attempt."""
    from tests.fakes.agi_fixtures import LiveReactor
    from tests.fakes.fake_asterisk import FakeAsterisk
    from tests.server.helpers import start_server
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "reminder.dlg").write_text('dialogue reminder\nparam name\nparam date\nstart main\nstate main:\n'
                                          '    result "{called}|{caller}|{attempt}|{name}"\n')
    live = LiveReactor(reactor)
    running = start_server(live, scripts, compiler=compiler, database=database_url)
    server = fake_ami()
    server.on_answer = lambda action: FakeAsterisk(
        "reminder", uniqueid=f"u{len(server.originates)}", callerid=action.number,
        variables={"AUTOCALL_ATTEMPT": action.variables["AUTOCALL_ATTEMPT"]}).call(reactor, running.host, running.port)
    try:
        campaign_id, _ = run_campaign(db, program, tmp_path, reactor, run_reactor, server, ["answer"],
                                      caller_id="Acme Clinic <0655512345>")
    finally:
        running.stop()
        live.close()
    row = contacts(db, campaign_id)[0]
    assert (row["outcome"], row["result"]) == ("answered", f"0655512345|{row['number']}|1|N0")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def agi_url(reactor):
    """Something listening where ``agi_url`` points, as ``autocall serve`` would (the dialer checks it)."""
    from twisted.internet.protocol import Factory, Protocol
    port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
    yield f"agi://127.0.0.1:{port.getHost().port}"
    port.stopListening()


def _cli(tmp_path, port: int, secret: str, outcomes=("answer",), *options: str, agi_url: str = "", **settings: str):
    """``autocall campaign run`` in its own process, on ``tmp_path/autocall.db``, through the AMI at ``port``."""
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(outcomes))
    env = dict(os.environ, AUTOCALL_DATABASE=str(tmp_path / "autocall.db"), AUTOCALL_AMI_SECRET=secret,
               PYTHONPATH=str(ROOT_DIR), AUTOCALL_AGI_URL=agi_url or f"agi://127.0.0.1:{_free_port()}",
               **{f"AUTOCALL_{key.upper()}": value for key, value in settings.items()})
    return subprocess.Popen([sys.executable, "-m", "autocall", "campaign", "run", str(csv_path), "--script",
                             str(SCRIPT), "--pbx", f"ami://autocall@127.0.0.1:{port}", *options], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(process, reactor, timeout=30):
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        assert time.monotonic() < deadline, "the dialer did not exit"
        reactor.iterate(0.01)
    return process.returncode, process.stdout.read(), process.stderr.read()


def test_an_unreachable_fastagi_server_refuses_the_run_before_any_dial(tmp_path, reactor, fake_ami):
    server = fake_ami()
    code, out, err = _wait(_cli(tmp_path, server.port, SECRET), reactor)
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("autocall: error: the FastAGI server at agi://127.0.0.1:") and "does not answer" in err
    assert server.originates == []


def test_a_refused_ami_login_is_one_line_and_exit_1_without_the_secret(tmp_path, reactor, fake_ami, agi_url):
    server = fake_ami()
    wrong = "wrong-Secret-42"
    code, out, err = _wait(_cli(tmp_path, server.port, wrong, agi_url=agi_url), reactor)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("autocall: error: ") and \
        "refused the login of user 'autocall'" in err, err
    assert "Traceback" not in err
    assert wrong not in out + err


def test_an_unreachable_ami_host_is_one_line_and_exit_1(tmp_path, reactor, agi_url):
    secret = "never-Shown-7"
    code, out, err = _wait(_cli(tmp_path, _free_port(), secret, agi_url=agi_url), reactor)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("autocall: error: cannot reach the Asterisk Manager at 127.0.0.1:")
    assert "Traceback" not in err and secret not in out + err


def test_campaign_run_over_ami_end_to_end_exits_0_with_every_contact_done(tmp_path, reactor, fake_ami, agi_url):
    """The CLI process dials through the fake Asterisk; this process plays the FastAGI side on the same database."""
    from autocall.store.db import connect
    server = fake_ami(outcomes={"+39065550001": "busy"})
    conn = connect(str(tmp_path / "autocall.db"))
    server.on_answer = agi_side(conn)
    process = _cli(tmp_path, server.port, SECRET, ["answer", "busy", "answer"],
                   "--attempts", "2", "--retry-after", "100ms", agi_url=agi_url)
    code, out, err = _wait(process, reactor)
    assert code == 0, err
    assert "campaign c: done" in out and SECRET not in out + err
    outcomes = {row["number"]: (row["outcome"], row["attempts"], row["result"]) for row in contacts(conn, 1)}
    assert outcomes == {"+39065550000": ("answered", 1, "confirmed"), "+39065550001": ("busy", 2, None),
                        "+39065550002": ("answered", 1, "confirmed")}
    conn.close()


def test_sighup_stops_an_ami_campaign_gracefully_and_status_says_stopped(tmp_path, reactor, fake_ami, agi_url):
    """Closing the terminal sends SIGHUP: like SIGTERM, no new call, exit 130, nothing left dialling."""
    import json
    import signal
    server = fake_ami()
    server.hold_calls()                            # calls ring until the test lets them go
    process = _cli(tmp_path, server.port, SECRET, ["answer"] * 6, "--concurrency", "2", agi_url=agi_url,
                   grace_period="2s")
    deadline = time.monotonic() + 30
    while len(server.originates) < 2:
        assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
        reactor.iterate(0.01)
    process.send_signal(signal.SIGHUP)
    for _ in range(50):
        reactor.iterate(0.01)
    server.release_calls()
    code, out, err = _wait(process, reactor)
    assert code == 130, err
    assert len(server.originates) == 2, "a call started after SIGHUP"
    env = dict(os.environ, AUTOCALL_DATABASE=str(tmp_path / "autocall.db"), PYTHONPATH=str(ROOT_DIR))
    status = subprocess.run([sys.executable, "-m", "autocall", "campaign", "status", "c", "--json"], cwd=tmp_path,
                            env=env, capture_output=True, text=True)
    data = json.loads(status.stdout)
    assert data["state"] == "stopped" and data["by_status"] == {"pending": 4, "dialling": 0, "done": 2}
    assert data["by_outcome"] == {"answered": 2}       # stopped waiting for their records: they come later


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
        pbx = AmiPbx(db, reactor, CallSettings(campaign="t", script="reminder", ring_timeout_ms=1_000),
                     AmiLine(client, channel_template="PJSIP/{number}@trunk", context="autocall-outbound",
                             agi_url="agi://127.0.0.1:4573", poll_s=0.02, hangup_grace_s=2, unknown_wait_s=0.5))
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


def test_one_server_down_at_start_the_campaign_runs_on_the_other(tmp_path, reactor, fake_ami, agi_url):
    from autocall.store.db import connect
    server = fake_ami()
    conn = connect(str(tmp_path / "autocall.db"))
    server.on_answer = agi_side(conn)
    csv_path = write_csv(tmp_path / "c.csv", contact_rows(["answer"] * 3))
    env = dict(os.environ, AUTOCALL_DATABASE=str(tmp_path / "autocall.db"), AUTOCALL_AMI_SECRET=SECRET,
               PYTHONPATH=str(ROOT_DIR), AUTOCALL_AGI_URL=agi_url)
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
