"""Fixtures shared by the language's tests."""

from __future__ import annotations

import pytest

HEADER = "dialogue t\nstart main\n"


@pytest.fixture
def program(compile_text):
    """Compile ``header + body`` (it must compile cleanly) and return the Program."""
    def build(body: str, header: str = HEADER):
        result = compile_text(header + body)
        assert result.ok, result.render()
        return result.program
    return build
