"""Menu key matching as a pure state machine: feed keys, get a decision (no I/O, no time)."""

from __future__ import annotations

MORE = "more"
MATCH = "match"
INVALID = "invalid"


class KeyMatcher:
    """Collects keys against a menu's choices, as the spec's ``menu`` section says.

    ``feed(key)`` returns MATCH as soon as the keys equal a choice that no
    longer choice begins with, INVALID as soon as they can begin no choice,
    else MORE. ``expire()`` (the interdigit wait passed) takes the keys if they
    equal a choice, else INVALID.
    """

    __slots__ = ("choices", "prefixes", "keys")

    def __init__(self, choices: frozenset[str], prefixes: frozenset[str]) -> None:
        self.choices = choices
        self.prefixes = prefixes
        self.keys = ""

    @staticmethod
    def prefixes_of(choices) -> frozenset[str]:
        """Every proper prefix of every choice: the key runs that may still grow into a choice."""
        return frozenset(choice[:i] for choice in choices for i in range(1, len(choice)))

    def feed(self, key: str) -> str:
        self.keys += key
        if self.keys in self.prefixes:
            return MORE
        return MATCH if self.keys in self.choices else INVALID

    def expire(self) -> str:
        return MATCH if self.keys in self.choices else INVALID
