"""The editor syntax file (editors/dlg.tmLanguage.json): its patterns compile, and it knows every keyword.

The keywords are read from the language's own grammar (grammar/dialogue.lark),
so a statement added there and forgotten in the syntax file fails here. Lines
are highlighted by a small TextMate tokenizer (earliest match wins, ties go to
the first rule; begin/end regions with their inner patterns), enough to see
which scope a word ends up with. The patterns must mean the same to
Oniguruma (what editors use) and to Python's ``re`` (what this test runs).
"""

from __future__ import annotations

import ctypes
import json
import re
from importlib import resources
from pathlib import Path

import pytest

from autocall.engine.ir import BUILTINS

SYNTAX_FILE = Path(__file__).resolve().parents[2] / "editors" / "dlg.tmLanguage.json"
KEYWORD_SCOPES = ("keyword.", "storage.type.", "constant.language.")

# Escapes and groups that one of the two engines reads differently or not at all.
ONLY_ONE_ENGINE = {
    r"\h": "Oniguruma's hex digit", r"\H": "Oniguruma's non-hex digit", r"\G": "Oniguruma's search start",
    r"\K": "Oniguruma's keep", r"\R": "Oniguruma's line break", r"\X": "Oniguruma's grapheme",
    r"\z": "Oniguruma's end of string", r"\Z": "end of string (differs between the engines)",
    r"\p": "Unicode properties", r"\P": "Unicode properties", r"\k": "named back-references",
    r"\g": "subexpression calls", r"\N": "Python's named characters", r"\o": "Oniguruma's octal",
}
ONLY_ONE_ENGINE_GROUPS = re.compile(r"\(\?(P|<[A-Za-z]|~|[imx]*-?[imx]*\))")


def load_grammar() -> dict:
    return json.loads(SYNTAX_FILE.read_text(encoding="utf-8"))


def language_keywords() -> set[str]:
    """Every word the Lark grammar spells out: statement, declaration, option and operator keywords."""
    text = resources.files("autocall").joinpath("grammar", "dialogue.lark").read_text(encoding="utf-8")
    text = re.sub(r"//[^\n]*", "", text)
    return set(re.findall(r'"([A-Za-z_]+)"', text))


def all_rules(node):
    """Every rule of the grammar (anything with a regex), wherever it sits."""
    if isinstance(node, dict):
        if any(key in node for key in ("match", "begin", "end")):
            yield node
        for value in node.values():
            yield from all_rules(value)
    elif isinstance(node, list):
        for value in node:
            yield from all_rules(value)


def all_patterns(grammar) -> list[str]:
    return [rule[key] for rule in all_rules(grammar) for key in ("match", "begin", "end") if key in rule]


class Tokenizer:
    """One line at a time, as a TextMate engine does it (no state carried across lines: .dlg needs none)."""

    def __init__(self, grammar: dict) -> None:
        self.grammar = grammar

    def _flatten(self, patterns):
        for pattern in patterns:
            if "include" in pattern:
                yield from self._flatten([self.grammar["repository"][pattern["include"].lstrip("#")]])
            elif "match" in pattern or "begin" in pattern:
                yield pattern
            else:
                yield from self._flatten(pattern.get("patterns", []))

    def spans(self, line: str) -> list[tuple[int, int, str]]:
        found: list[tuple[int, int, str]] = []
        self._scan(line, 0, self.grammar["patterns"], None, found)
        return found

    def _scan(self, line, pos, patterns, end, found) -> int:
        rules = list(self._flatten(patterns))
        while pos <= len(line):
            best = None
            if end is not None:
                match = re.compile(end[0]).search(line, pos)
                if match:
                    best = (match, None)
            for rule in rules:
                match = re.compile(rule.get("match") or rule["begin"]).search(line, pos)
                if match and (best is None or match.start() < best[0].start()):
                    best = (match, rule)
            if best is None:
                return len(line)
            match, rule = best
            if rule is None:
                return match.end()
            if "match" in rule:
                self._mark(match, rule.get("name"), rule.get("captures", {}), found)
                pos = match.end() if match.end() > match.start() else match.end() + 1
            else:
                self._mark(match, None, rule.get("beginCaptures", {}), found)
                start = match.start()
                pos = self._scan(line, match.end(), rule.get("patterns", []), (rule["end"],), found)
                found.append((start, pos, rule.get("name")))
        return pos

    @staticmethod
    def _mark(match, name, captures, found) -> None:
        if name:
            found.append((match.start(), match.end(), name))
        for group, capture in captures.items():
            if match.group(int(group)) is not None and match.end(int(group)) > match.start(int(group)):
                found.append((match.start(int(group)), match.end(int(group)), capture["name"]))

    def scope_at(self, line: str, offset: int) -> str | None:
        """The innermost scope covering ``offset``."""
        covering = [(end - start, name) for start, end, name in self.spans(line) if start <= offset < end and name]
        return min(covering)[1] if covering else None


@pytest.fixture(scope="module")
def grammar() -> dict:
    return load_grammar()


@pytest.fixture(scope="module")
def tokenizer(grammar) -> Tokenizer:
    return Tokenizer(grammar)


def test_the_syntax_file_is_a_textmate_grammar_for_dlg_files(grammar):
    assert grammar["scopeName"] == "source.dlg" and grammar["fileTypes"] == ["dlg"]
    assert grammar["patterns"] and all("include" in p for p in grammar["patterns"])
    for pattern in grammar["patterns"]:
        assert pattern["include"].lstrip("#") in grammar["repository"]


def test_the_vs_code_extension_files_point_at_the_grammar(grammar):
    folder = SYNTAX_FILE.parent / "vscode"
    package = json.loads((folder / "package.json").read_text(encoding="utf-8"))
    (language,), (entry,) = package["contributes"]["languages"], package["contributes"]["grammars"]
    assert language["extensions"] == [".dlg"] and entry["language"] == language["id"]
    assert entry["scopeName"] == grammar["scopeName"] and entry["path"].endswith("/" + SYNTAX_FILE.name)
    configuration = json.loads((folder / language["configuration"]).read_text(encoding="utf-8"))
    assert configuration["comments"]["lineComment"] == "#"


def test_every_pattern_uses_syntax_both_engines_read_alike_and_compiles(grammar):
    patterns = all_patterns(grammar)
    assert len(patterns) > 20
    for pattern in patterns:
        escapes = re.findall(r"\\.", pattern)
        for escape in escapes:
            assert escape not in ONLY_ONE_ENGINE, f"{pattern!r}: {escape} is {ONLY_ONE_ENGINE[escape]}"
        assert not ONLY_ONE_ENGINE_GROUPS.search(pattern), f"{pattern!r}: a group only one engine reads"
        re.compile(pattern)


def _oniguruma():
    """A compile function backed by the system's libonig (the engine of VS Code and Sublime's TextMate), or None."""
    try:
        lib = ctypes.CDLL("libonig.so.5")
    except OSError:
        return None
    utf8 = ctypes.addressof(ctypes.c_char.in_dll(lib, "OnigEncodingUTF8"))
    if lib.onig_initialize((ctypes.c_void_p * 1)(utf8), 1) != 0:
        return None
    syntax = ctypes.c_void_p.in_dll(lib, "OnigDefaultSyntax").value

    def compile_error(pattern: str) -> str | None:
        data = pattern.encode("utf-8")
        buffer = ctypes.create_string_buffer(data)
        regex, info = ctypes.c_void_p(), (ctypes.c_void_p * 3)()
        code = lib.onig_new(ctypes.byref(regex), buffer, ctypes.c_void_p(ctypes.addressof(buffer) + len(data)),
                            0, ctypes.c_void_p(utf8), ctypes.c_void_p(syntax), info)
        if code == 0:
            lib.onig_free(regex)
            return None
        message = ctypes.create_string_buffer(256)
        lib.onig_error_code_to_str(message, code, info)
        return message.value.decode("utf-8", "replace")
    return compile_error


def test_every_pattern_compiles_with_oniguruma_itself(grammar):
    compile_error = _oniguruma()
    if compile_error is None:
        pytest.skip("libonig is not installed; the syntax check above still ran")
    assert compile_error("(?P<x>a)") is not None          # the check can fail
    for pattern in all_patterns(grammar):
        assert compile_error(pattern) is None, f"{pattern!r}: {compile_error(pattern)}"


def test_every_keyword_of_the_language_is_highlighted_as_one(tokenizer):
    keywords = language_keywords()
    assert {"dialogue", "state", "say", "menu", "gather", "optout", "secret", "star", "not", "repeat"} <= keywords
    missed = []
    for word in sorted(keywords):
        for line in (f"    {word}", f"    {word} other"):
            scope = tokenizer.scope_at(line, 4)
            if not (scope or "").startswith(KEYWORD_SCOPES):
                missed.append(f"{line.strip()!r} -> {scope}")
    assert not missed, "keywords of grammar/dialogue.lark without a keyword scope: " + "; ".join(missed)


def test_built_in_variables_are_highlighted(tokenizer):
    for name in BUILTINS:
        assert tokenizer.scope_at(f"    log {name}", 8) == "variable.language.builtin.dlg", name


@pytest.mark.parametrize("line, word, scope", [
    ("    say \"Press # for say\"  # say it", "# for", "string.quoted.double.dlg"),
    ("    say \"Press # for say\"  # say it", "# say it", "comment.line.number-sign.dlg"),
    ('    say "Your code is {code|digits}."', "code|", "variable.other.dlg"),
    ('    say "Your code is {code|digits}."', "digits}", "support.function.spoken-form.dlg"),
    ('    say "a \\" quote, then {{braces}}"', "{{", "constant.character.escape.dlg"),
    ("        1 -> sales", "sales", "entity.name.function.state.dlg"),
    ("        9 -> repeat", "repeat", "keyword.control.dlg"),
    ("        failure -> goodbye", "failure", "keyword.other.option.dlg"),
    ("state main:", "main", "entity.name.function.state.dlg"),
    ("prompt beep = sound \"beep\"", "beep =", "variable.other.definition.dlg"),
    ("    gather pin digits 4 secret timeout 5s", "pin", "variable.other.dlg"),
    ("    gather pin digits 4 secret timeout 5s", "5s", "constant.numeric.duration.dlg"),
    ("    if within(open) and len(pin) != 4:", "within", "support.function.dlg"),
    ("    if within(open) and len(pin) != 4:", "!=", "keyword.operator.comparison.dlg"),
])
def test_lines_are_highlighted_as_a_reader_expects(tokenizer, line, word, scope):
    assert tokenizer.scope_at(line, line.index(word)) == scope
