"""Every mistake in one run: syntax errors resynchronise, and what is reported is each problem once, in the
file's own words (golden files in golden/ show the messages; these tests hold the properties)."""

from __future__ import annotations

import random
import re
from pathlib import Path

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "scripts_examples").glob("*.dlg"))
GOLDEN = Path(__file__).parent / "golden"


def test_a_misspelled_statement_hides_none_of_the_other_errors(compiler):
    result = compiler.compile_file(str(GOLDEN / "resync.dlg"))
    lines = [d.span.line for d in result.errors]
    assert lines == [7, 8, 9, 10, 12, 13, 14, 15, 16, 17, 20]


def test_errors_after_syntax_errors_are_not_about_the_neutral_lines(compile_text):
    # The broken `state` line is read as its name, so `goto sales` finds it; a broken menu line
    # does not make the menu "without choices".
    source = ('dialogue t\nstart main\nstate main:\n    menu "x":\n        1 -> sales\n        * -> main\n'
              '        failure -> sales\nstate sales extra:\n    goto nowhere\n')
    result = compile_text(source)
    assert [(d.span.line, d.message.split(" (")[0]) for d in result.diagnostics] == [
        (6, "the * key is written star"), (8, "expected ':', found 'extra'"), (9, "unknown state 'nowhere'")]


def _mutate(rng: random.Random, text: str) -> str:
    lines = text.splitlines(keepends=True)
    for _ in range(rng.randint(1, 3)):
        index = rng.randrange(len(lines))
        line = lines[index]
        kind = rng.randrange(4)
        if kind == 0 and len(line) > 2:
            cut = rng.randrange(len(line) - 1)
            line = line[:cut] + line[cut + 1:]
        elif kind == 1:
            at = rng.randrange(len(line))
            line = line[:at] + rng.choice([":", "=", "*", "(", '"', "elif ", "x", "-"]) + line[at:]
        elif kind == 2:
            line = line.lstrip(" ")
        else:
            line = "    " + line
        lines[index] = line
    return "".join(lines)


def test_damaged_scripts_get_each_problem_once_and_only_in_their_own_words(compile_text):
    rng = random.Random(13)
    texts = [path.read_text(encoding="utf-8") for path in EXAMPLES]
    for _ in range(150):
        source = _mutate(rng, rng.choice(texts))
        result = compile_text(source)
        assert not result.ok or result.program is not None
        keys = [(d.severity, d.message, d.span) for d in result.diagnostics]
        assert len(keys) == len(set(keys)), source
        lines = source.splitlines()
        for diagnostic in result.diagnostics:
            found = re.search(r"found '([^']+)'", diagnostic.message)
            if found and diagnostic.span:
                assert found[1] in lines[diagnostic.span.line - 1], (diagnostic.headline(), source)
