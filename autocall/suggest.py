"""Finding the name a typo most likely meant, for "did you mean ...?" hints."""

from __future__ import annotations

import difflib
from typing import Iterable


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, swapped neighbours."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate a typo most likely meant, or None when none is close."""
    limit = max(1, len(name) // 3)
    best = None
    for candidate in candidates:
        if abs(len(candidate) - len(name)) > limit:
            continue
        distance = edit_distance(name.lower(), candidate.lower())
        if distance > limit:
            continue
        score = (distance, -difflib.SequenceMatcher(None, name, candidate).ratio())
        if best is None or score < best[0]:
            best = (score, candidate)
    return best[1] if best else None


def suggest(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    found = closest(name, candidates)
    return f" (did you mean '{found}'?)" if found else ""
