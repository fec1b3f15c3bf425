"""Helpers for the server tests: a running server handle, scripts, a caller that can be held mid-call."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from twisted.internet import defer

from autocall.agi.records import RecordWriter
from autocall.agi.registry import ScriptRegistry
from autocall.agi.server import AgiServer
from autocall.store.calls import recent_calls
from tests.fakes.agi_fixtures import FakeSounds, LiveReactor
from tests.fakes.fake_asterisk import FakeAsterisk, FakeAsteriskProtocol, Transcript

# A dialogue that sends every kind of AGI command a script can: answer, a prompt, a gather (barge-in
# then WAIT FOR DIGIT), a menu, a wait, a transfer with caller id (SET VARIABLE, EXEC Dial, GET VARIABLE),
# a recording and the final hangup. Keys for the whole call: "12 1" (gather 2 digits, menu 1).
EVERYTHING = """\
dialogue everything
param company = "Acme"
start main

state main:
    answer
    say "Welcome to {company}."
    gather code digits 2 prompt "Enter two digits." timeout 2s
    menu "Press 1 to continue." timeout 2s tries 1:
        1 -> more
        failure -> bye

state more:
    wait 1s
    transfer "PJSIP/100" timeout 5s callerid "Acme <100>"
    record message max 5s silence 2s beep
    result "done {code}"
    goto bye

state bye:
    say "Goodbye."
    hangup
"""
EVERYTHING_KEYS = "12 1"

HELLO = """\
dialogue hello
start main

state main:
    answer
    gather pin digits 4 prompt "Enter your PIN." timeout 2s
    if pin == "1234":
        result "ok"
    else:
        result "bad"
    say "Goodbye."
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def sync_compile(function, *args) -> defer.Deferred:
    """The registry's thread runner replaced: compile on the reactor (tests that are not about threads)."""
    return defer.maybeDeferred(function, *args)


@dataclass
class Running:
    """A server listening on 127.0.0.1; ``call(fake)`` runs one fake Asterisk call to its end."""

    live: LiveReactor
    server: AgiServer
    writer: RecordWriter | None
    host: str
    port: int
    database: str

    def call(self, fake: FakeAsterisk, timeout: float = 10.0) -> Transcript:
        """One call to its end: the socket closed and the server done with it (its record handed over)."""
        ended = self.server.calls_ended
        transcript = self.live.run(fake.call(self.live.reactor, self.host, self.port), timeout=timeout)
        self.live.spin_until(lambda: self.server.calls_ended > ended, timeout)
        return transcript

    def start(self, protocol: FakeAsteriskProtocol) -> FakeAsteriskProtocol:
        """Connect a (possibly held) fake Asterisk protocol without waiting for its end."""
        from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
        self.live.run(connectProtocol(TCP4ClientEndpoint(self.live.reactor, self.host, self.port), protocol))
        return protocol

    def records(self, limit: int = 1000) -> list[dict]:
        """Every record written so far, oldest first (after flushing the writer)."""
        self.live.run(self.writer.flush())
        return list(reversed(self.live.run(self.writer.query(recent_calls, limit))))

    def last(self) -> dict:
        return self.records()[-1]

    def stop(self) -> None:
        self.server.close()
        if self.writer is not None:
            self.writer.close()


def start_server(live: LiveReactor, scripts_dir: Path, *, compiler=None, database: str, records: bool = True,
                 threaded: bool = False, sounds=None, **options) -> Running:
    reactor = live.reactor
    writer = None
    if records:
        writer = RecordWriter(database, reactor, batch_delay=0.005)
        writer.open()
    if threaded:
        from autocall.dsl.compiler import Compiler
        registry = ScriptRegistry(reactor, compiler_factory=Compiler)
    else:
        registry = ScriptRegistry(reactor, compiler_factory=lambda: compiler, run_in_thread=sync_compile)
    server = AgiServer(str(scripts_dir), sounds or FakeSounds(), records=writer, reactor=reactor,
                       registry=registry, recordings_dir="/var/spool/autocall", **options)
    host, port = live.listen(server.factory)
    return Running(live, server, writer, host, port, database)


class CountingSounds:
    """``sound_for`` that answers ``tts/abc`` (or fails with ``fail``) and keeps what it was asked."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.asked = []
        self.fail = fail

    def sound_for(self, prompt):
        self.asked.append(prompt)
        return defer.fail(self.fail) if self.fail else defer.succeed("tts/abc")


class Library:
    """The one thing ``PlayableSounds`` asks of its ``SoundLibrary``."""

    @staticmethod
    def path_of(name: str) -> str:
        return "/srv/sounds/" + name


class HeldAsterisk(FakeAsteriskProtocol):
    """A fake Asterisk that stops answering at the first command matching ``hold_at`` until ``release()``."""

    def __init__(self, setup: FakeAsterisk, hold_at: str) -> None:
        super().__init__(setup)
        self.hold_at = hold_at
        self.held: bytes | None = None
        self.reached: defer.Deferred = defer.Deferred()

    def lineReceived(self, line: bytes) -> None:
        if self.held is None and not self.reached.called and line.decode().startswith(self.hold_at):
            self.held = line
            self.reached.callback(self)
            return
        super().lineReceived(line)

    def release(self) -> None:
        line, self.held = self.held, None
        super().lineReceived(line)


def database_bytes(path: str) -> bytes:
    """The database file and its WAL, as stored on disk (for 'never stored' checks)."""
    data = b""
    for suffix in ("", "-wal"):
        try:
            data += Path(path + suffix).read_bytes()
        except FileNotFoundError:
            pass
    return data


def open_database(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


def campaign_attempt(conn: sqlite3.Connection, *, script: str, number: str, params: dict, amd: bool = False,
                     caller_id: str = ""):
    """A campaign with one contact and one attempt in progress, as the dialer leaves them: its ``Started``
    (``attempt_id``, ``token`` for ``AUTOCALL_ATTEMPT``)."""
    from autocall.store import campaigns
    now = time.time()
    with campaigns.transaction(conn):
        campaign = campaigns.create_campaign(conn, name=f"test-{script}-{number}", script=script,
                                             script_path=f"{script}.dlg", dialogue=script, contacts_path="c.csv",
                                             contacts_sha256="0" * 64, header=["number", *params],
                                             options={"amd": amd, "caller_id": caller_id}, now=now)
        campaigns.add_contact(conn, campaign, line=2, number=number, params=params, extra={}, now=now)
    contacts = campaigns.due_contacts(conn, campaign, now + 1, 10)
    [started] = campaigns.begin_attempts(conn, campaign, contacts, now)
    return started
