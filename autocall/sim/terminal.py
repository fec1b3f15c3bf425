"""The person at the keyboard as the caller: keys read one by one from the terminal, timeouts real.

While the dialogue waits, a status line counts the seconds down and shows the
keys typed so far in this input (``*`` for each key of a ``secret`` gather);
it is rewritten in place and cleared when the wait ends, so the transcript
keeps only the call's own lines. A key that is not a phone key gets a hint,
and so does a menu choice the menu does not have. What is being waited for
comes from the engine's events (``event``), the same ones the transcript
printer reads.
"""

from __future__ import annotations

import math
import os
import select
import sys
import termios
import time
import tty

from autocall.dsl.lower import DEFAULT_RECORD_SILENCE_MS, DEFAULT_TIMEOUT_MS
from autocall.engine.ir import Program
from autocall.sim.caller import HANGUP, KEY_CHARS

HANGUP_CHARS = {"q", "h", "\x04", "\x1b"}
_CLEAR_LINE = "\r\033[K"


def menu_choices(program: Program) -> dict[str, list[str]]:
    """Each state's menu choices (the keys of every menu in it, in order), for the invalid-choice hint."""
    found: dict[str, list[str]] = {}
    for name, state in program.data["states"].items():
        for op in state["code"]:
            if op["op"] == "menu":
                keys = found.setdefault(name, [])
                keys += [c["keys"] for c in op["choices"] if c["keys"] not in keys]
    return found


class TerminalCaller:
    """Implements the SimCaller reactions with real keys and real waiting; use as a context manager."""

    def __init__(self, stdin=None, stdout=None, program: Program | None = None, color: bool = True) -> None:
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self._dim, self._reset = ("\033[2m", "\033[0m") if color else ("", "")
        self._fd = self.stdin.fileno()
        self._saved = None
        self._pending: list[str] = []
        self._menus = menu_choices(program) if program is not None else {}
        self._typed = ""            # keys of the input in progress, for the status line
        self._secret = False        # the input in progress is a secret gather
        self._status_shown = False
        self.pressed: list[str] = []

    def __enter__(self) -> "TerminalCaller":
        self._saved = termios.tcgetattr(self._fd)
        tty.setcbreak(self._fd)
        mode = termios.tcgetattr(self._fd)      # no echo, whatever this Python's setcbreak does: a
        mode[3] &= ~termios.ECHO                # secret PIN is shown as * on the status line only
        termios.tcsetattr(self._fd, termios.TCSANOW, mode)
        self._say("You are the caller: press 0-9, * or # when asked; q hangs up.")
        return self

    def __exit__(self, *exc) -> None:
        self._clear_status()
        if self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)

    # -- the engine's events -------------------------------------------------------------------
    def event(self, kind: str, data) -> None:
        """Follow the call: a gather starting (secret or not), an input finished, a menu choice refused."""
        if kind == "gather":
            self._typed, self._secret = "", bool(data["secret"])
        elif kind == "input":
            self._typed, self._secret = "", False
            if data["op"] == "menu" and data["outcome"] == "invalid" and self._menus.get(data["state"]):
                choices = ", ".join(self._menus[data["state"]])
                self._say(f"hint: {data['keys']} is not a choice of this menu; it takes {choices}")

    # -- output --------------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self._clear_status()
        self.stdout.write(f"   {self._dim}{text}{self._reset}\n")
        self.stdout.flush()

    def _status(self, text: str) -> None:
        self.stdout.write(f"{_CLEAR_LINE}   {self._dim}{text}{self._reset}")
        self.stdout.flush()
        self._status_shown = True

    def _clear_status(self) -> None:
        if self._status_shown:
            self.stdout.write(_CLEAR_LINE)
            self.stdout.flush()
            self._status_shown = False

    def _typed_shown(self) -> str:
        return "*" * len(self._typed) if self._secret else self._typed

    # -- input ---------------------------------------------------------------------------------
    def _read(self, timeout_s: float, status=None) -> str | None:
        """One meaningful character within ``timeout_s`` (others get a hint), or None.

        ``status(seconds_left)`` gives the status line, redrawn each second.
        """
        deadline = time.monotonic() + timeout_s
        shown_seconds = None
        polled = False                          # a zero timeout still looks once at what was typed ahead
        while True:
            if self._pending:
                return self._pending.pop(0)
            remaining = max(deadline - time.monotonic(), 0)
            if remaining == 0 and polled:
                return None
            polled = True
            if status is not None and remaining > 0:
                seconds = math.ceil(remaining)
                if seconds != shown_seconds:
                    self._status(status(seconds))
                    shown_seconds = seconds
                wait = remaining - (seconds - 1)       # until the next whole second
            else:
                wait = remaining
            ready, _, _ = select.select([self._fd], [], [], wait)
            if not ready:
                continue
            char = os.read(self._fd, 1).decode("utf-8", "replace")
            if char == "" or char.lower() in HANGUP_CHARS:
                return HANGUP
            if char in KEY_CHARS:
                return char
            self._hint(char)
            shown_seconds = None

    def _hint(self, char: str) -> None:
        if char in "\r\n":
            self._say("hint: Enter is not a phone key; # ends an entry where the dialogue asks for it")
        elif char.isprintable():
            self._say(f"hint: '{char}' is not a phone key: press 0-9, * or #; q hangs up")

    def _waiting(self, seconds: int) -> str:
        typed = self._typed_shown()
        if typed:
            return f"typed {typed}, waiting for the next key ... {seconds}s"
        return f"waiting for a key ... {seconds}s"

    def _keep(self, key: str | None) -> str | None:
        if key is not None and key != HANGUP:
            self.pressed.append(key)
            self._typed += key
        return key

    def on_step(self) -> str | None:
        key = self._read(0)
        if key is not None and key != HANGUP:
            self._pending.insert(0, key)
            return None
        return key

    def on_play(self, interrupt_keys: str, text: str = "") -> str | None:
        key = self._read(0)
        if key is None or key == HANGUP:
            return key
        if key in interrupt_keys:
            return self._keep(key)
        self._pending.insert(0, key)
        return None

    def on_wait_digit(self, timeout_ms: int | None = None) -> str | None:
        key = self._read((timeout_ms or DEFAULT_TIMEOUT_MS) / 1000, self._waiting)
        self._clear_status()
        return self._keep(key)

    def on_record(self, terminator: str | None, silence_ms: int | None = None) -> str | None:
        stop = f"; press {terminator} to stop" if terminator else ""

        def status(seconds: int) -> str:
            return f"recording: silence ends it in {seconds}s{stop}"
        deadline = time.monotonic() + (silence_ms or DEFAULT_RECORD_SILENCE_MS) / 1000
        while True:
            key = self._read(max(deadline - time.monotonic(), 0), status)
            if key is None or key == HANGUP or key == terminator:
                self._clear_status()
                return key
