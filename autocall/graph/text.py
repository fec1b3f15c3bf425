"""IR values rendered back as the script author wrote them: expressions, string templates, menu keys."""

from __future__ import annotations

# Loosest first, as the parser applies them (autocall/dsl/parser.py, ``_Precedence``).
_BINARY = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
           "+": 5, "-": 5, "*": 6, "/": 6}
_NOT, _NEG, _ATOM = 3, 7, 8

KEY_WORDS = {"*": "star", "#": "hash"}


def key_text(keys: str) -> str:
    """A menu key as the script writes it: ``1``, ``star``, ``hash``, ``"101"``."""
    if len(keys) == 1:
        return KEY_WORDS.get(keys, keys)
    return f'"{keys}"'


def template_text(parts: list) -> str:
    """An IR string template back to a quoted string: ``"Hello {name}, PIN {pin|digits}"``."""
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part.replace("\\", "\\\\").replace('"', '\\"').replace("{", "{{").replace("}", "}}"))
        else:
            suffix = f"|{part['format']}" if part.get("format") else ""
            name = ".".join([part["var"], *part.get("path", ())])
            out.append(f"{{{name}{suffix}}}")
    return '"' + "".join(out) + '"'


def expression_text(expr: list) -> str:
    """An IR expression back to source text, with only the parentheses precedence needs."""
    return _render(expr)[0]


def _render(expr: list) -> tuple[str, int]:
    """(text, precedence of its outermost operator); recursion depth is bounded by the parser's own."""
    kind = expr[0]
    if kind == "int" or kind == "dec":
        return str(expr[1]), _ATOM
    if kind == "str":
        return template_text(expr[1]), _ATOM
    if kind == "var":
        return expr[1], _ATOM
    if kind == "path":
        return ".".join([expr[1], *expr[2]]), _ATOM
    if kind == "call":
        return f"{expr[1]}({', '.join(expression_text(arg) for arg in expr[2])})", _ATOM
    if kind == "not":
        return f"not {_operand(expr[1], _NOT + 1)}", _NOT
    if kind == "neg":
        return f"-{_operand(expr[1], _ATOM)}", _NEG
    if kind == "bin":
        op = expr[1]
        level = _BINARY[op]
        # Left-associative: the right operand needs parentheses at the same level; comparisons
        # do not chain, so there both sides do.
        left_needs = level + 1 if level == _BINARY["=="] else level
        return f"{_operand(expr[2], left_needs)} {op} {_operand(expr[3], level + 1)}", level
    raise ValueError(f"unknown expression {expr!r:.60}")


def web_path_text(literals: list[str], values: list) -> str:
    """A fetch/send/notify path back to its template: ``"/accounts/{caller}"``."""
    out = [literals[0]]
    for value, literal in zip(values, literals[1:]):
        out.append("{" + expression_text(value) + "}" + literal)
    return '"' + "".join(out) + '"'


def _operand(expr: list, needed: int) -> str:
    text, level = _render(expr)
    return text if level >= needed else f"({text})"


def shorten(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
