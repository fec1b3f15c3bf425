"""The scripted caller of ``--keys``: a DTMF buffer that each input the dialogue waits for draws from.

Pure code, shared by the simulated channel and the tests' fake Asterisk, so a
scenario gives the same call on both. The language (operations.md): keys
``0-9*#``, ``w`` (the input being waited for times out), ``h`` (the caller
hangs up at that point); spaces are ignored; once the keys run out every
further input times out.
"""

from __future__ import annotations

from collections import deque

from autocall.engine.channel import ALL_KEYS
from autocall.errors import UserError

HANGUP = "h"
SILENCE = "w"
KEY_CHARS = ALL_KEYS
VALID_CHARS = KEY_CHARS + SILENCE + HANGUP


def parse_keys(keys: str) -> list[str]:
    """Split a ``--keys`` string into tokens, refusing anything outside its language."""
    tokens = []
    for position, char in enumerate(keys, start=1):
        if char.isspace():
            continue
        token = char.lower()
        if token not in VALID_CHARS:
            raise UserError(
                f"--keys: {char!r} at position {position} is not a key; "
                "use 0-9, *, #, w (stay silent) and h (hang up)")
        tokens.append(token)
    return tokens


class ScriptedCaller:
    """A caller who presses keys only when the dialogue waits for input, as ``--keys`` describes.

    Each method is the caller's reaction to one channel operation and returns
    a key, ``None`` (nothing: plays on / times out), or ``HANGUP``.
    """

    def __init__(self, keys: str = "") -> None:
        self._tokens: deque[str] = deque(parse_keys(keys))
        self.pressed: list[str] = []

    @property
    def remaining(self) -> str:
        return "".join(self._tokens)

    def _take(self) -> str:
        token = self._tokens.popleft()
        if token in KEY_CHARS:
            self.pressed.append(token)
        return token

    def on_step(self) -> str | None:
        """Any caller-facing operation (answer, say, transfer, silence): hang up if ``h`` is next."""
        if self._tokens and self._tokens[0] == HANGUP:
            return self._take()
        return None

    def on_play(self, interrupt_keys: str, text: str = "") -> str | None:
        """A prompt starts: barge in with the next key if it may interrupt, or hang up."""
        if not self._tokens:
            return None
        head = self._tokens[0]
        if head == HANGUP or (head in KEY_CHARS and head in interrupt_keys):
            return self._take()
        return None

    def on_wait_digit(self, timeout_ms: int | None = None) -> str | None:
        """The dialogue waits for one key: press it, stay silent (``w`` or no keys left), or hang up."""
        if not self._tokens:
            return None
        token = self._take()
        return None if token == SILENCE else token

    def on_record(self, terminator: str | None, silence_ms: int | None = None) -> str | None:
        """A recording runs: it ends on silence, unless the terminator or ``h`` is next."""
        if self._tokens and (self._tokens[0] == HANGUP or self._tokens[0] == terminator):
            return self._take()
        return None
