"""The person at the keyboard as the caller: keys read one by one from the terminal, timeouts real."""

from __future__ import annotations

import os
import select
import sys
import termios
import time
import tty

from autocall.dsl.lower import DEFAULT_TIMEOUT_MS
from autocall.sim.caller import HANGUP, KEY_CHARS

HANGUP_CHARS = {"q", "h", "\x04", "\x1b"}
RECORD_WAIT_MS = 4000


class TerminalCaller:
    """Implements the SimCaller reactions with real keys and real waiting; use as a context manager."""

    def __init__(self, stdin=None, stdout=None) -> None:
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self._fd = self.stdin.fileno()
        self._saved = None
        self._pending: list[str] = []
        self.pressed: list[str] = []

    def __enter__(self) -> "TerminalCaller":
        self._saved = termios.tcgetattr(self._fd)
        tty.setcbreak(self._fd)
        self._say("You are the caller: press 0-9, * or # when asked; q hangs up.")
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)

    def _say(self, text: str) -> None:
        self.stdout.write(f"   \033[2m{text}\033[0m\n")
        self.stdout.flush()

    def _read(self, timeout_s: float) -> str | None:
        """One meaningful character within ``timeout_s`` (others are ignored), or None."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self._pending:
                return self._pending.pop(0)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if not ready:
                return None
            char = os.read(self._fd, 1).decode("utf-8", "replace")
            if char == "":
                return HANGUP
            if char.lower() in HANGUP_CHARS:
                return HANGUP
            if char in KEY_CHARS:
                return char

    def _typed_ahead(self) -> str | None:
        key = self._read(0)
        return key

    def on_step(self) -> str | None:
        key = self._typed_ahead()
        if key is not None and key != HANGUP:
            self._pending.insert(0, key)
            return None
        return key

    def on_play(self, interrupt_keys: str, text: str = "") -> str | None:
        key = self._typed_ahead()
        if key is None or key == HANGUP:
            return key
        if key in interrupt_keys:
            self.pressed.append(key)
            return key
        self._pending.insert(0, key)
        return None

    def on_wait_digit(self, timeout_ms: int | None = None) -> str | None:
        seconds = (timeout_ms or DEFAULT_TIMEOUT_MS) / 1000
        self._say(f"waiting {seconds:g}s for a key ...")
        key = self._read(seconds)
        if key is not None and key != HANGUP:
            self.pressed.append(key)
        return key

    def on_record(self, terminator: str | None) -> str | None:
        stop = f"press {terminator} to stop, or " if terminator else ""
        self._say(f"recording: {stop}wait {RECORD_WAIT_MS // 1000}s")
        deadline = time.monotonic() + RECORD_WAIT_MS / 1000
        while True:
            key = self._read(max(deadline - time.monotonic(), 0))
            if key is None or key == HANGUP or key == terminator:
                return key
