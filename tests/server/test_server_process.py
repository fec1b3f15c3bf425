"""`autocall serve` and `autocall calls` as processes: graceful stop on SIGTERM, user errors, the calls table.

The server runs as a real subprocess (``python -m autocall serve``); the fake
Asterisk calls it from the test's reactor. The stop tests hold a call in
progress (the fake stops answering at the gather) and send the signals.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autocall.engine.record import CallRecord
from autocall.store.calls import save_call
from autocall.store.db import connect
from tests.fakes.fake_asterisk import FakeAsterisk, connect_raw
from tests.server.helpers import HeldAsterisk, write

ROOT = Path(__file__).resolve().parents[2]
SLOW = """\
dialogue slow
start main

state main:
    answer
    wait 1s
    gather key digits 1 timeout 5s
    result "pressed {key}"
"""


def autocall(*args: str, cwd: Path, env: dict | None = None, **popen) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCALL_")}
    environ["PYTHONPATH"] = str(ROOT)
    environ.update(env or {})
    popen.setdefault("text", True)
    return subprocess.Popen([sys.executable, "-m", "autocall", *args], cwd=cwd, env=environ, **popen)


def run_autocall(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    process = autocall(*args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


class Server:
    """`autocall serve` on a free port, its stderr read line by line."""

    def __init__(self, folder: Path, grace: str = "30s", extra_config: str = "", env: dict | None = None,
                 open_files: int | None = None) -> None:
        scripts = folder / "scripts"
        write(scripts, "slow.dlg", SLOW)
        self.database = folder / "calls.db"
        (folder / "autocall.toml").write_text(f'database = "{self.database}"\nsounds_dir = "{folder / "sounds"}"\n'
                                              f'grace_period = "{grace}"\n' + extra_config)
        limit = None
        if open_files is not None:
            def limit():
                import resource
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
        self.process = autocall("serve", "--scripts", str(scripts), "--port", "0", cwd=folder, env=env,
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=False, bufsize=0,
                                preexec_fn=limit)
        self.lines: list[str] = []
        self._partial = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.process.stderr, selectors.EVENT_READ)
        try:
            listening = self.wait_for("msg=listening")
        except BaseException:
            self.kill()                 # never leave a server behind when it fails to start
            raise
        self.port = int(re.search(r" port=(\d+)", listening).group(1))

    def _read(self, timeout: float) -> bool:
        """Take what stderr has (unbuffered: a buffered reader would hide lines from select); False at EOF."""
        if not self._selector.select(timeout=timeout):
            return True
        data = os.read(self.process.stderr.fileno(), 65536)
        *lines, self._partial = (self._partial + data).split(b"\n")
        self.lines.extend(line.decode("utf-8", "replace") + "\n" for line in lines)
        return bool(data)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            if not self._read(0.05):
                break
        raise AssertionError(f"{text!r} never came; the server said:\n{''.join(self.lines)}")

    def finish(self, timeout: float = 20.0) -> int:
        code = self.process.wait(timeout)
        while self._read(0):
            pass
        return code

    def records(self) -> list[dict]:
        conn = sqlite3.connect(self.database)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in conn.execute("SELECT * FROM calls ORDER BY started_at")]
        finally:
            conn.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def server_process(tmp_path):
    started: list[Server] = []

    def start(grace: str = "30s", **options) -> Server:
        server = Server(tmp_path, grace, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def hold_a_call(live, port: int, uniqueid: str) -> HeldAsterisk:
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
    held = HeldAsterisk(FakeAsterisk("slow", keys="7", uniqueid=uniqueid), hold_at="WAIT FOR DIGIT")
    live.run(connectProtocol(TCP4ClientEndpoint(live.reactor, "127.0.0.1", port), held))
    live.run(held.reached, timeout=20)
    return held


def refuses_connections(live, port: int) -> bool:
    try:
        peer = live.run(connect_raw(live.reactor, "127.0.0.1", port, close=True))
    except Exception:
        return True
    live.run(peer.finished)
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_stops_listening_and_lets_the_call_in_progress_finish(server_process, live_reactor, signum):
    """SIGHUP (the terminal that started ``serve`` closed) stops as gracefully as SIGTERM: before, the
    process died at once and the records of the calls in progress were lost."""
    server = server_process()
    held = hold_a_call(live_reactor, server.port, "g1")
    server.process.send_signal(signum)
    server.wait_for(f"{signum.name}: stopping gracefully")
    server.wait_for("stopping: no new calls")
    assert refuses_connections(live_reactor, server.port)
    held.release()
    live_reactor.run(held.finished)
    assert server.finish() == 0
    [record] = server.records()
    assert (record["call_id"], record["ended_by"], record["result"]) == ("g1", "hangup", "pressed 7")
    assert "every call in progress finished" in "".join(server.lines)


def test_out_of_file_descriptors_is_logged_and_serving_goes_on(server_process, live_reactor):
    """A server at its open files limit: the connections past it are refused (closed at once), one clear
    line says why and what to do, and once calls end the server takes new ones."""
    server = server_process(open_files=64)
    assert "open_files_limit=64" in server.wait_for("msg=listening")
    peers = []
    for _ in range(80):
        peers.append(live_reactor.run(connect_raw(live_reactor.reactor, "127.0.0.1", server.port)))
    line = server.wait_for("out of file descriptors")
    assert "level=error" in line and "ulimit -n" in line and "Traceback" not in "".join(server.lines)
    for peer in peers:
        peer.transport.abortConnection()
    for peer in peers:
        live_reactor.run(peer.finished)
    held = hold_a_call(live_reactor, server.port, "fd1")
    held.release()
    live_reactor.run(held.finished)
    server.process.send_signal(signal.SIGTERM)
    assert server.finish() == 0
    assert [record["call_id"] for record in server.records()] == ["fd1"]


def test_after_the_grace_period_the_calls_left_are_hung_up_and_recorded(server_process, live_reactor):
    server = server_process(grace="1s")
    held = hold_a_call(live_reactor, server.port, "g2")
    server.process.send_signal(signal.SIGTERM)
    live_reactor.run(held.finished, timeout=20)        # the server closed it after the grace period
    assert server.finish() == 0
    [record] = server.records()
    assert record["ended_by"] == "error" and "grace period" in record["error"]
    assert "hung up the calls still in progress" in "".join(server.lines)


def test_a_second_signal_stops_at_once_and_still_writes_the_records(server_process, live_reactor):
    server = server_process(grace="10m")
    held = hold_a_call(live_reactor, server.port, "g3")
    server.process.send_signal(signal.SIGINT)
    server.wait_for("stopping gracefully")
    server.process.send_signal(signal.SIGTERM)
    live_reactor.run(held.finished, timeout=20)
    assert server.finish() == 0
    [record] = server.records()
    assert record["ended_by"] == "error" and "at once" in record["error"]


def test_the_log_is_structured_and_carries_the_call_id(server_process, live_reactor):
    server = server_process()
    held = hold_a_call(live_reactor, server.port, "log1")
    held.release()
    live_reactor.run(held.finished)
    line = server.wait_for('msg="call ended"')
    fields = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line))
    assert fields["call_id"] == "log1" and fields["script"] == "slow" and fields["ended_by"] == "hangup"
    assert fields["result"] == '"pressed 7"' and fields["level"] == "info"


def test_call_ended_reaches_the_receiver_signed_and_no_secret_is_logged(server_process, live_reactor):
    from autocall.outbox.signing import verify
    from tests.fakes.http_service import HttpService

    receiver = HttpService().start()
    receiver.routes["/hooks/calls"] = ("json", 200, {})
    try:
        server = server_process(extra_config=(
            f'[services.crm]\nurl = "{receiver.url}/hooks"\nheaders = {{ Authorization = "env:T_TOKEN" }}\n'
            'signing_secret = "env:T_SIGNING"\n[events]\ncall_ended = { service = "crm", path = "/calls" }\n'),
            env={"T_TOKEN": "Bearer tk-5f4e3d", "T_SIGNING": "sg-9a8b7c"})
        held = hold_a_call(live_reactor, server.port, "ev1")
        held.release()
        live_reactor.run(held.finished)
        deadline = time.monotonic() + 20
        while not receiver.requests:
            assert time.monotonic() < deadline, "".join(server.lines)
            time.sleep(0.05)
        [request] = receiver.requests
        body = json.loads(request["body"])
        assert body["call_id"] == "ev1" and body["result"] == "pressed 7" and body["script"] == "slow"
        headers = request["headers"]
        assert headers["X-AutoCall-Event"] == "call_ended" and headers["Authorization"] == "Bearer tk-5f4e3d"
        assert verify("sg-9a8b7c", headers["X-AutoCall-Timestamp"], request["body"], headers["X-AutoCall-Signature"])
        server.process.send_signal(signal.SIGTERM)
        assert server.finish() == 0
        log = "".join(server.lines)
        assert "web request" in log and "tk-5f4e3d" not in log and "sg-9a8b7c" not in log
    finally:
        receiver.stop()


# --- user errors: one line, exit 1 -------------------------------------------------------------------

def test_a_missing_scripts_folder_is_one_clear_line(tmp_path):
    done = run_autocall("serve", "--scripts", str(tmp_path / "nope"), "--port", "0", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"autocall: error: {tmp_path / 'nope'}: the scripts folder does not exist; create it or pass --scripts DIR"]


def test_a_port_in_use_is_one_clear_line(tmp_path):
    (tmp_path / "scripts").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_autocall("serve", "--scripts", "scripts", "--port", str(port), cwd=tmp_path)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()[-1:]
    assert line.startswith(f"autocall: error: cannot listen on 127.0.0.1:{port} (") and "in use" in line
    assert "Traceback" not in done.stderr


def test_bad_configuration_is_one_clear_line(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "autocall.toml").write_text('port = "many"\n')
    done = run_autocall("serve", "--scripts", "scripts", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "port" in done.stderr
    done = run_autocall("serve", "--scripts", "scripts", "--port", "99999", cwd=tmp_path / "scripts")
    assert done.returncode == 1 and "not a port number" in done.stderr


def test_a_database_in_a_missing_folder_is_one_clear_line(tmp_path):
    (tmp_path / "scripts").mkdir()
    done = run_autocall("serve", "--scripts", "scripts", "--port", "0", cwd=tmp_path,
                        env={"AUTOCALL_DATABASE": str(tmp_path / "no" / "calls.db")})
    assert done.returncode == 1 and "does not exist" in done.stderr and "Traceback" not in done.stderr


# --- autocall calls ------------------------------------------------------------------------------------------

def store_calls(database: Path, count: int) -> None:
    conn = connect(str(database))
    for number in range(count):
        record = CallRecord(call_id=f"1795.{number}", script="support", started_at=1772445600.0 + number * 60,
                            caller="5550100", called="s", path=["main", "login", "account"], result="balance",
                            ended_by="hangup" if number % 2 else "caller_hangup", ended_at=1772445600.0 + number * 60 + 42)
        save_call(conn, record, channel="PJSIP/trunk-1", origin="agi")
    conn.close()


def test_calls_lists_the_latest_records_as_a_table(tmp_path):
    store_calls(tmp_path / "autocall.db", 30)
    done = run_autocall("calls", "--last", "3", cwd=tmp_path, env={"TZ": "UTC"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["time", "call", "id", "script", "caller", "duration", "ended", "by", "result", "path"]
    assert len(lines) == 4 and "1795.29" in lines[1] and "1795.27" in lines[3]
    assert "42.0s" in lines[1] and "main > login > account" in lines[1] and "hangup" in lines[1]


def test_calls_json_is_a_list_of_records(tmp_path):
    store_calls(tmp_path / "autocall.db", 5)
    done = run_autocall("calls", "--json", cwd=tmp_path)
    calls = json.loads(done.stdout)
    assert [c["call_id"] for c in calls] == [f"1795.{n}" for n in (4, 3, 2, 1, 0)]
    assert calls[0]["path"] == ["main", "login", "account"] and calls[0]["channel"] == "PJSIP/trunk-1"


def test_calls_without_a_database_is_one_clear_line(tmp_path):
    done = run_autocall("calls", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("autocall: error: ") and "no database there yet" in done.stderr
    assert not (tmp_path / "autocall.db").exists()
    done = run_autocall("calls", "--last", "0", cwd=tmp_path)
    assert done.returncode == 1 and "--last 0" in done.stderr


def test_calls_never_prints_control_characters_from_peer_fields(tmp_path):
    hostile = {"caller": "555\x1b[2J\x1b]0;owned\x07", "call_id": "17\x9b31m.1", "script": "sup\u202eport",
               "result": "ok\r\x00\x7f\u2028done"}
    conn = connect(str(tmp_path / "autocall.db"))
    save_call(conn, CallRecord(started_at=1772445600.0, ended_at=1772445601.0, called="s", path=["main\x1b[1m"],
                               ended_by="hangup", **hostile), channel="PJSIP/\x1b[5mx", origin="agi")
    conn.close()
    unsafe = [chr(c) for c in (*range(0x20), *range(0x7f, 0xa0), 0x202e, 0x2028) if chr(c) != "\n"]
    table = run_autocall("calls", cwd=tmp_path, env={"TZ": "UTC"})
    assert table.returncode == 0, table.stderr
    assert not [c for c in unsafe if c in table.stdout]
    assert "555\\x1b[2J\\x1b]0;owned\\x07" in table.stdout and "sup\\u202eport" in table.stdout
    shown = run_autocall("calls", "--json", cwd=tmp_path)
    assert not [c for c in unsafe if c in shown.stdout]
    (call,) = json.loads(shown.stdout)       # the escapes are JSON's: the values read back unchanged
    assert {key: call[key] for key in hostile} == hostile and call["channel"] == "PJSIP/\x1b[5mx"
