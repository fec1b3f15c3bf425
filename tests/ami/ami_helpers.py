"""Helpers of the AMI tests: the captured transcripts as data, a scripted peer over StringTransport.

A module with its own name (not conftest) so that test modules import it unambiguously
beside other folders' conftest.py files.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer, error
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from autocall.ami.client import AmiClient, Backoff
from autocall.ami.protocol import AmiConnection, ConnectionClosed, NeedData, encode_message

# Traffic captured verbatim from Asterisk 22.10.1, kept with the tests.
TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"
_ENTRY = re.compile(r"^\[\s*[\d.]+\] (<<|>>) (.*)$")
_CONTINUATION = " " * 13


@dataclass
class Transcript:
    """One ``ami-*.log``: what Asterisk sent (bytes per message, and as lines) and what the probe sent."""

    name: str
    received: list[bytes] = field(default_factory=list)          # the banner, then one item per message
    received_lines: list[list[str]] = field(default_factory=list)
    sent: list[list[tuple[str, str]]] = field(default_factory=list)

    @property
    def stream(self) -> bytes:
        return b"".join(self.received)


def load_transcript(path: Path) -> Transcript:
    """Rebuild the bytes of a transcript: ``<<`` entries with their indented lines, ``>>`` lines into actions."""
    transcript = Transcript(path.stem)
    current: list[str] | None = None

    def close() -> None:
        nonlocal current
        if current is not None:
            transcript.received_lines.append(current)
            transcript.received.append(("\r\n".join(current) + "\r\n\r\n").encode())
            current = None

    for line in path.read_text(encoding="utf-8").splitlines():
        match = _ENTRY.match(line)
        if match is None:
            assert current is not None and line.startswith(_CONTINUATION), line
            current.append(line[len(_CONTINUATION):])
            continue
        close()
        direction, payload = match.groups()
        if direction == ">>":
            key, _, value = payload.partition(": ")
            if key == "Action":
                transcript.sent.append([])
            transcript.sent[-1].append((key, value))
        elif payload.startswith("'"):                       # the banner, as a Python literal
            transcript.received.append(ast.literal_eval(payload).encode())
            transcript.received_lines.append([])
        elif payload.startswith("["):                       # a message logged as a list of lines
            current = list(ast.literal_eval(payload))
        else:
            current = [payload]
    close()
    return transcript


def transcript_paths() -> list[Path]:
    return sorted(TRANSCRIPTS.glob("ami-*.log"))


def transcripts_or_skip() -> list[Path]:
    paths = transcript_paths()
    if not paths:
        pytest.skip(f"the captured transcripts are not at {TRANSCRIPTS}")
    return paths


def message(*pairs: tuple[str, str]) -> bytes:
    return encode_message(pairs)


def parse_actions(data: bytes) -> list[list[tuple[str, str]]]:
    """What the client wrote, as actions of (key, value) lines (a tiny parser of our own, for assertions)."""
    actions = []
    for block in data.decode().split("\r\n\r\n"):
        if block:
            actions.append([tuple(line.split(": ", 1)) for line in block.split("\r\n")])
    return actions


def field_of(action: list[tuple[str, str]], key: str) -> str | None:
    return next((value for name, value in action if name == key), None)


# -- a scripted peer over StringTransport, for the task.Clock tests --------------------------------
class Link:
    """One connection made by the client: read what it wrote, answer as Asterisk would."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.transport = StringTransport()
        protocol.makeConnection(self.transport)
        self._read = 0

    def say(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def new_actions(self) -> list[list[tuple[str, str]]]:
        data = self.transport.value()
        fresh, self._read = data[self._read:], len(data)
        return parse_actions(fresh)

    def all_actions(self) -> list[list[tuple[str, str]]]:
        return parse_actions(self.transport.value())

    def close(self, reason: Exception | None = None) -> None:
        self.protocol.connectionLost(Failure(reason or error.ConnectionDone()))

    @property
    def dropped(self) -> bool:
        return self.transport.disconnecting


class FakeEndpoint:
    """An ``IStreamClientEndpoint`` that connects to StringTransports, or refuses while ``refusing``."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.links: list[Link] = []
        self.attempts: list[float] = []
        self.refusing = False

    def connect(self, factory: Any) -> defer.Deferred:
        self.attempts.append(self.clock.seconds())
        if self.refusing:
            return defer.fail(error.ConnectionRefusedError("111: Connection refused"))
        link = Link(factory.buildProtocol(None))
        self.links.append(link)
        return defer.succeed(link.protocol)

    @property
    def link(self) -> Link:
        return self.links[-1]


SECRET = "s3cr3t-Pa55"


def make_client(clock: Clock, endpoint: FakeEndpoint, **options: Any) -> AmiClient:
    settings = dict(username="autocall", secret=SECRET, reactor=clock, address="pbx.example:5038",
                    action_id_prefix="t-", ping_interval_ms=20_000, ping_timeout_ms=5_000,
                    backoff=Backoff(initial_ms=500, factor=2, max_ms=4_000), originate_margin_ms=5_000)
    settings.update(options)
    return AmiClient(endpoint, **settings)


def log_in(link: Link, banner: bytes = b"Asterisk Call Manager/11.0.0\r\n") -> list[tuple[str, str]]:
    """Play the server side of the login on ``link``; returns the Login action the client sent."""
    link.say(banner)
    login = link.new_actions()[-1]
    link.say(message(("Response", "Success"), ("ActionID", field_of(login, "ActionID")),
                     ("Message", "Authentication accepted")))
    return login


def fired(deferred: defer.Deferred) -> list[Any]:
    """Collect what ``deferred`` fires with (a Failure is collected too, not left unhandled)."""
    results: list[Any] = []
    deferred.addBoth(results.append)
    return results


# -- feeding the pure protocol ------------------------------------------------------------------------
def drain(connection: AmiConnection) -> list:
    items = []
    while True:
        item = connection.next_event()
        if item is NeedData or item is ConnectionClosed:
            return items
        items.append(item)


def parse_whole(data: bytes) -> list:
    connection = AmiConnection()
    connection.receive_data(data)
    return drain(connection)


def parse_bytewise(data: bytes) -> list:
    connection = AmiConnection()
    items = []
    for index in range(len(data)):
        connection.receive_data(data[index:index + 1])
        items += drain(connection)
    return items


def parse_chunks(data: bytes, cuts: list[int]) -> list:
    connection = AmiConnection()
    items, start = [], 0
    for cut in sorted(set(cuts) - {0}) + [len(data)]:
        connection.receive_data(data[start:cut])    # never b"": that would mean the peer closed
        items += drain(connection)
        start = cut
    return items
