"""`autocall simulate` without --keys on a terminal: the person at the keyboard is the caller.

Runs the real command in a pseudo-terminal, waits for what it prints, and types keys.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

SCRIPT = """\
dialogue desk
start main
state main:
    say "Welcome to the desk."
    menu "For sales press 1, for support press 2." timeout 3s tries 2:
        1 -> sales
        2 -> support
        failure -> bye
state sales:
    gather code digits 2 prompt "Enter your two digit code." timeout 3s
    result "sales {code}"
state support:
    result "support"
state bye:
    result "silent"
"""


class Terminal:
    """A command running in a pseudo-terminal, read with a deadline (never a blind sleep)."""

    def __init__(self, argv: list[str]) -> None:
        self.master, slave = pty.openpty()
        env = dict(os.environ, NO_COLOR="1", TERM="xterm")
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.output = ""

    def expect(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"did not see {text!r}; got:\n{self.output}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    assert text in self.output, f"process ended before {text!r}; got:\n{self.output}"
                self.output += chunk.decode("utf-8", "replace")
        return self.output

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def finish(self, timeout: float = 15.0) -> int:
        try:
            self.expect("call ended", timeout)
        finally:
            code = self.process.wait(timeout=timeout)
            os.close(self.master)
        return code


def start(tmp_path, script: str = SCRIPT) -> Terminal:
    path = tmp_path / "desk.dlg"
    path.write_text(script)
    return Terminal([sys.executable, "-m", "autocall", "simulate", str(path)])


def test_keyboard_caller_presses_keys_when_asked(tmp_path):
    terminal = start(tmp_path)
    terminal.expect("You are the caller")
    terminal.expect("waiting for a key ... 3s")
    terminal.type("1")
    terminal.expect("Enter your two digit code.")
    terminal.type("42")
    assert terminal.finish() == 0
    assert "result: sales 42" in terminal.output
    assert "menu      caller: 1 -> match" in terminal.output


def test_keyboard_caller_hangs_up_with_q(tmp_path):
    terminal = start(tmp_path)
    terminal.expect("waiting for a key ... 3s")
    terminal.type("q")
    assert terminal.finish() == 0
    assert "call ended: caller_hangup" in terminal.output


def test_keyboard_caller_timeouts_are_real(tmp_path):
    terminal = start(tmp_path)
    began = time.monotonic()
    terminal.expect("caller: (nothing) -> timeout", timeout=10)
    assert time.monotonic() - began >= 2.5
    terminal.type("2")
    assert terminal.finish() == 0 and "result: support" in terminal.output


def test_the_wait_counts_down_visibly(tmp_path):
    terminal = start(tmp_path)
    terminal.expect("waiting for a key ... 3s")
    terminal.expect("waiting for a key ... 2s")
    terminal.expect("waiting for a key ... 1s")
    terminal.type("2")
    assert terminal.finish() == 0


def test_gathered_digits_are_echoed_as_they_are_typed(tmp_path):
    terminal = start(tmp_path)
    terminal.expect("waiting for a key ... 3s")
    terminal.type("1")
    terminal.expect("Enter your two digit code.")
    terminal.type("4")
    terminal.expect("typed 4, waiting for the next key")
    terminal.type("2")
    assert terminal.finish() == 0 and "result: sales 42" in terminal.output


SECRET = """\
dialogue bank
var count = 0
start main
state main:
    gather pin digits 4 secret prompt "Your PIN, please." timeout 5s
    set count = count + 1
    optout
    say "Leave a message."
    record note silence 1s
    result "done"
"""


def test_secret_digits_are_masked_and_set_optout_record_are_shown(tmp_path):
    terminal = start(tmp_path, SECRET)
    terminal.expect("Your PIN, please.")
    terminal.expect("waiting for a key ... 5s")
    terminal.type("9")
    terminal.expect("typed *, waiting")
    terminal.type("876")
    terminal.expect("set       count = 1")
    terminal.expect("optout    the caller's number goes on the do-not-call list")
    began = time.monotonic()
    terminal.expect("recording: silence ends it in 1s; press # to stop")
    assert terminal.finish() == 0
    assert 0.5 <= time.monotonic() - began < 3.5, "the recording waits the script's silence (1s), not 4s"
    assert "gather    caller: *** -> complete" in terminal.output
    assert "9876" not in terminal.output and "typed 9" not in terminal.output and "98" not in terminal.output


def test_a_key_that_is_no_phone_key_gets_a_hint_and_a_wrong_choice_names_the_choices(tmp_path):
    terminal = start(tmp_path)
    terminal.expect("waiting for a key ... 3s")
    terminal.type("x")
    terminal.expect("hint: 'x' is not a phone key: press 0-9, * or #; q hangs up")
    terminal.type("7")
    terminal.expect("menu      caller: 7 -> invalid")
    terminal.expect("hint: 7 is not a choice of this menu; it takes 1, 2")
    terminal.type("2")
    assert terminal.finish() == 0 and "result: support" in terminal.output
