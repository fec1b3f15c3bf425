"""The simulated channel: the engine's Channel with a virtual clock and a caller (scripted or at a keyboard)."""

from __future__ import annotations

from collections import deque
from typing import Protocol

from autocall.engine.channel import (ALL_KEYS, CallerHangup, DialOutcome, FilePrompt, Prompt, RecordOutcome,
                                     SoundPrompt, TtsPrompt)
from autocall.engine.dial import DIAL_ANSWERED
from autocall.sim.caller import HANGUP

DEFAULT_TRANSFER_STATUS = "NOANSWER"
DEFAULT_QUEUE_STATUS = "TIMEOUT"
RING_MS = 30_000


class SimCaller(Protocol):
    """The caller's reactions (see ``ScriptedCaller``); each returns a key, None, or ``"h"`` (hang up)."""

    def on_step(self) -> str | None: ...
    def on_play(self, interrupt_keys: str, text: str = "") -> str | None: ...
    def on_wait_digit(self, timeout_ms: int | None = None) -> str | None: ...
    def on_record(self, terminator: str | None, silence_ms: int | None = None) -> str | None: ...


class SimClock:
    """Virtual time: starts at ``start`` (epoch seconds) and moves only when the call waits."""

    def __init__(self, start: float) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, ms: int) -> None:
        self._now += ms / 1000


def describe_prompt(prompt: Prompt) -> str:
    if isinstance(prompt, TtsPrompt):
        return prompt.text
    if isinstance(prompt, FilePrompt):
        return f"[file {prompt.path}]"
    assert isinstance(prompt, SoundPrompt)
    return f"[sound {prompt.name}]"


class SimChannel:
    """A call with no PBX: prompts are text, keys come from ``caller``, time from ``clock``."""

    def __init__(self, caller: SimCaller, clock: SimClock, *, call_id: str = "sim",
                 transfer_status: str = DEFAULT_TRANSFER_STATUS, queue_status: str = DEFAULT_QUEUE_STATUS,
                 recordings_dir: str = "recordings") -> None:
        self.caller = caller
        self.clock = clock
        self.call_id = call_id
        self.transfer_status = transfer_status
        self.queue_status = queue_status
        self.recordings_dir = recordings_dir
        self.variables: dict[str, str] = {}
        self.answered = False
        self.hung_up = False
        self.typed: deque[str] = deque()        # keys pressed while a prompt that takes none spoke

    def _step(self) -> None:
        if self.caller.on_step() == HANGUP:
            raise CallerHangup()

    async def answer(self) -> None:
        self._step()
        self.answered = True

    async def play(self, prompt: Prompt, interrupt_keys: str = "") -> str | None:
        typed = self.typed
        if typed and interrupt_keys and typed[0] in interrupt_keys:
            return typed.popleft()              # typed ahead: the prompt is interrupted before it starts
        reaction = self.caller.on_play(interrupt_keys or ALL_KEYS, describe_prompt(prompt))
        if reaction == HANGUP:
            raise CallerHangup()
        if reaction is not None and reaction not in interrupt_keys:
            typed.append(reaction)              # type-ahead: kept for the next input; the prompt goes on
            return None
        return reaction

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        if self.typed:
            return self.typed.popleft()
        reaction = self.caller.on_wait_digit(timeout_ms)
        if reaction == HANGUP:
            raise CallerHangup()
        if reaction is None:
            self.clock.advance(timeout_ms)
        return reaction

    async def pause(self, duration_ms: int) -> None:
        self._step()
        self.clock.advance(duration_ms)

    async def record(self, name: str, max_ms: int, silence_ms: int, beep: bool,
                     terminator: str | None) -> RecordOutcome:
        reaction = self.caller.on_record(terminator, silence_ms)
        self.clock.advance(silence_ms)
        file = f"{self.recordings_dir}/{self.call_id}-{name}.wav"
        if reaction == HANGUP:
            return RecordOutcome(file, None, hung_up=True)
        return RecordOutcome(file, reaction)

    async def transfer(self, destinations: tuple[str, ...], timeout_ms: int | None, callerid: str | None,
                       announce: Prompt | None = None, recording: str | None = None) -> DialOutcome:
        """Every Dial ends with ``transfer_status``; ``ANSWER`` is the first destination's answer."""
        self._step()
        self.clock.advance(timeout_ms or RING_MS)
        if self.transfer_status != DIAL_ANSWERED:
            return DialOutcome(self.transfer_status)
        file = f"{self.recordings_dir}/{self.call_id}-{recording}.wav" if recording else None
        return DialOutcome(DIAL_ANSWERED, 0, file)

    async def queue(self, name: str, timeout_ms: int | None, announce: Prompt | None = None) -> str:
        self._step()
        self.clock.advance(timeout_ms or RING_MS)
        return self.queue_status

    async def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value

    async def hangup(self) -> None:
        self.hung_up = True


def run_sync(coroutine):
    """Drive a coroutine that never suspends (the simulated channel's calls) to its result."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the simulated call waited on something outside the simulator")
