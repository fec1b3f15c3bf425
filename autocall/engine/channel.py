"""The Channel interface the engine talks to, and the prompt values it plays.

Every runtime (the simulator, the FastAGI server, the simulated PBX of
campaigns) implements ``Channel``. All methods are coroutines: the simulator
completes them without suspending, the AGI channel awaits Twisted Deferreds.
Any method that touches the caller raises ``CallerHangup`` when the caller has
gone; the engine catches it in one place and still writes the call record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

ALL_KEYS = "0123456789*#"


class CallerHangup(Exception):
    """The caller hung up; raised by any channel operation that notices it.

    ``dialstatus`` is set (``""`` when unknown) when the hangup came during a
    ``transfer`` that was already dialled, so the record still lists it.
    """

    def __init__(self, *args, dialstatus: str | None = None) -> None:
        super().__init__(*args)
        self.dialstatus = dialstatus


class ChannelFailure(Exception):
    """The channel cannot go on for a reason that is not the caller's hangup.

    Examples: the PBX refused a command, the connection broke mid-command.
    The engine ends the call with ``ended_by: error`` and this message.
    """


@dataclass(frozen=True)
class TtsPrompt:
    """Text to speak with text-to-speech; ``voice``/``rate`` None means the configured default."""

    text: str
    voice: str | None = None
    rate: int | None = None
    secret: bool = False          # built from a secret value: never cached under a name derived from it


@dataclass(frozen=True)
class FilePrompt:
    """An audio file: ``path`` as written in the script, ``resolved`` the absolute path on disk."""

    path: str
    resolved: str


@dataclass(frozen=True)
class SoundPrompt:
    """A sound that already exists on the PBX, played by name (e.g. ``beep``)."""

    name: str


Prompt = TtsPrompt | FilePrompt | SoundPrompt


@dataclass(frozen=True)
class RecordOutcome:
    """How a recording ended: ``file`` is the recording's name; ``key`` the terminator pressed, if any.

    An empty ``file`` means the recording failed and nothing was recorded.
    ``hung_up`` means the caller hung up during the recording: the file is
    kept (a message left without pressing the terminator is still a message)
    and the engine ends the call as a caller hangup right after.
    """

    file: str
    key: str | None = None
    hung_up: bool = False


@dataclass(frozen=True)
class DialOutcome:
    """How one Dial ended: its ``DIALSTATUS``; with several destinations rung at once, which of them
    answered (its index, None when not known); the recorded conversation's file when it was recorded."""

    status: str
    answered: int | None = None
    recording: str | None = None


class Channel(Protocol):
    """What the engine needs from a call. Times are in milliseconds."""

    async def answer(self) -> None:
        """Answer the call (harmless if already answered)."""

    async def play(self, prompt: Prompt, interrupt_keys: str = "") -> str | None:
        """Play a prompt; return the key that interrupted it (only keys in ``interrupt_keys``), else None."""

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """Wait up to ``timeout_ms`` for one key; return it, or None on timeout."""

    async def pause(self, duration_ms: int) -> None:
        """Silence for ``duration_ms`` (the ``wait`` statement)."""

    async def record(self, name: str, max_ms: int, silence_ms: int, beep: bool,
                     terminator: str | None) -> RecordOutcome:
        """Record the caller into a file named after ``name``; return where it went."""

    async def transfer(self, destinations: tuple[str, ...], timeout_ms: int | None, callerid: str | None,
                       announce: Prompt | None = None, recording: str | None = None) -> DialOutcome:
        """Dial the destinations at once (one Dial; the first to answer is connected) and return how it ended
        (``ANSWER`` means bridged and now over). ``announce`` is played to whoever answers before the
        bridge; ``recording`` (a name such as ``transfer-1``) records the conversation, both sides."""

    async def queue(self, name: str, timeout_ms: int | None, announce: Prompt | None = None) -> str:
        """Wait in the call queue ``name``; return ``ANSWER`` (an agent took the call and it is now over)
        or why no agent did (``QUEUESTATUS``: ``TIMEOUT``, ``FULL``, ``JOINEMPTY``...)."""

    async def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable (visible to the PBX's dialplan after the script)."""

    async def hangup(self) -> None:
        """End the call from our side."""


class Clock(Protocol):
    """Where the engine reads time: wall time for ``within()``, elapsed time for the duration guard."""

    def now(self) -> float:
        """Seconds since the epoch (UTC)."""
