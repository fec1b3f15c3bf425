"""A small script and a way to write scenario files beside it, shared by the scenario tests."""

from __future__ import annotations

import textwrap
import wave

SCRIPT = """dialogue shop
timeout 5s
tries 2
param company = "Acme"
param customer
var attempts = 0
hours office = "mon-fri 09:00-17:00" in "Europe/Rome"
start main

state main:
    answer
    say "Welcome to {company}, {customer}."
    if not within(office):
        goto closed
    menu "Press 1 for sales, 2 for your PIN." :
        1 -> sales
        2 -> login
        invalid say "Not valid."
        failure -> bye

state login:
    gather pin digits 4 prompt "Your PIN?" timeout 5s
    if pin == "1234":
        result "ok"
        goto bye
    set attempts = attempts + 1
    if attempts < 2:
        goto login
    result "pin_failed"
    goto bye

state sales:
    result "sales"
    transfer "PJSIP/200"
    goto bye

state closed:
    play file "closed.wav"
    result "closed"
    goto bye

state bye:
    say "Bye."
    hangup
"""

OPEN = "2026-03-02T10:00:00+01:00"     # a Monday morning in Rome: open


def write_script(tmp_path, scenarios: str, script: str = SCRIPT, name: str = "shop"):
    """``NAME.dlg`` (with a tiny closed.wav beside it) and ``NAME.test.toml``; returns the script path."""
    write_wav(tmp_path / "closed.wav")
    path = tmp_path / f"{name}.dlg"
    path.write_text(script, encoding="utf-8")
    (tmp_path / f"{name}.test.toml").write_text(textwrap.dedent(scenarios), encoding="utf-8")
    return path


def write_wav(path, seconds: float = 0.2, rate: int = 16000) -> None:
    """A valid, tiny, silent WAV file (for scripts that play a file prompt)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
