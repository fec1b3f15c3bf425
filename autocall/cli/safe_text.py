"""Peer-supplied text made safe for a terminal: control and format characters shown as escapes."""

from __future__ import annotations

import re
import unicodedata

# What a terminal may act on rather than show: C0 and C1 controls, DEL, and Unicode's format characters
# (bidirectional overrides, zero-width joiners) and line separators. Anything else prints as itself.
_CANDIDATE = re.compile(r"[^\x20-\x7e]")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def terminal_safe(text: str) -> str:
    """``text`` with every control or format character shown as its escape (``\\x1b``, ``\\u202e``)."""
    return _CANDIDATE.sub(_escape, str(text))


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in _UNSAFE_CATEGORIES


def _escape(match: re.Match) -> str:
    char = match.group()
    if not _unsafe(char):
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def json_safe(text: str) -> str:
    """JSON text with every control or format character inside its strings as a ``\\uXXXX`` escape."""
    return _CANDIDATE.sub(_json_escape, text)


def _json_escape(match: re.Match) -> str:
    """Inside JSON text these occur only in strings, where ``\\uXXXX`` (UTF-16 units) is the same character."""
    char = match.group()
    if char == "\n" or not _unsafe(char):     # a line break of the layout (one in a string is "\\n" already)
        return char
    data = char.encode("utf-16-be")
    return "".join(f"\\u{int.from_bytes(data[i:i + 2], 'big'):04x}" for i in range(0, len(data), 2))
