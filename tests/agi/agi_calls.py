"""Calls and constants shared by the AGI channel tests (in memory) and the TCP tests."""

from __future__ import annotations

from pathlib import Path

from autocall.engine.channel import ALL_KEYS, SoundPrompt, TtsPrompt

GOLDEN = Path(__file__).parent / "golden"
HELLO = TtsPrompt("Hello")
MENU = TtsPrompt("For sales press 1")
KNOWN = {"tts/hello", "tts/for-sales-press-1", "beep", "autocall-beep"}
REC = "/rec"

USAGE_520 = ["520-Invalid command syntax.  Proper usage follows:", "Waits up to some time.",
             "520 End of proper usage."]


FULL_CALL = [
    lambda ch: ch.answer(),
    lambda ch: ch.play(HELLO),
    lambda ch: ch.play(MENU, ALL_KEYS),
    lambda ch: ch.wait_for_digit(2000),
    lambda ch: ch.wait_for_digit(2000),
    lambda ch: ch.play(SoundPrompt("beep")),
    lambda ch: ch.record("message", 60_000, 5_000, True, "#"),
    lambda ch: ch.transfer(("PJSIP/101",), 25_000, '"Acme" <5551234>'),
    lambda ch: ch.pause(1_500),
    lambda ch: ch.set_variable("RESULT", "voicemail left"),
    lambda ch: ch.hangup(),
]
