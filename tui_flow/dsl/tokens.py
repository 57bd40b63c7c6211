"""The DSL's tokens: the tokenizer, and the errors every stage reports (line, column, what).

A hand-written tokenizer: indentation gives INDENT/DEDENT (as in Python), `#` starts a
comment, inside `[...]` a list may run over several lines; whatever it does not understand is
a problem with its line and column. Nothing is skipped.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

from ..errors import LoadError


@dataclass(frozen=True)
class FlowProblem:
    line: int
    col: int
    message: str


class FlowError(LoadError):
    """A `.flow` file is wrong. Holds every problem found, each with its line and column."""

    def __init__(self, file: str, problems: list[FlowProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line, p.col))
        first = self.problems[0]
        super().__init__(file, first.message, first.line)
        self.column = first.col
        self.args = (str(self),)

    def __str__(self) -> str:
        return "\n".join(f"{self.file}:{p.line}:{p.col}: {p.message}" for p in self.problems)


@dataclass(frozen=True)
class Token:
    kind: str  # NAME STRING NUMBER COLON ARROW LBRACK RBRACK COMMA NEWLINE INDENT DEDENT EOF
    value: Any
    line: int
    col: int
    text: str = ""


NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[.-][A-Za-z0-9_]+)*")
_NUMBER = re.compile(r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")
_PUNCT = {":": "COLON", ",": "COMMA", "[": "LBRACK", "]": "RBRACK"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}
_HEX_ESCAPES = {"u": 4, "U": 8}  # \u00e9, \U0001f600: any code point


def tokenize(text: str) -> tuple[list[Token], list[FlowProblem]]:
    """Split `text` into tokens, with INDENT/DEDENT for blocks. Also returns every problem."""
    tokens: list[Token] = []
    problems: list[FlowProblem] = []
    indents = [""]
    brackets: list[Token] = []  # open "[" tokens: newlines inside them are not line ends
    lines = text.splitlines()
    for lineno, raw in enumerate(lines, 1):
        body = raw.lstrip(" \t")
        indent = raw[: len(raw) - len(body)]
        if not body or body.startswith("#"):
            continue
        if not brackets:
            top = indents[-1]
            if indent == top:
                pass
            elif indent.startswith(top):
                indents.append(indent)
                tokens.append(Token("INDENT", None, lineno, len(indent) + 1))
            elif indent in indents:
                while indents[-1] != indent:
                    indents.pop()
                    tokens.append(Token("DEDENT", None, lineno, len(indent) + 1))
            else:
                what = "mixes tabs and spaces" if "\t" in indent + top else "matches no outer block"
                problems.append(
                    FlowProblem(
                        lineno,
                        len(indent) + 1,
                        f"inconsistent indentation: this line's indentation {what}",
                    )
                )
                continue
        i = len(indent)
        n = len(raw)
        while i < n:
            c = raw[i]
            col = i + 1
            if c in " \t":
                i += 1
            elif c == "#":
                break
            elif raw.startswith("->", i):
                tokens.append(Token("ARROW", "->", lineno, col, "->"))
                i += 2
            elif c in _PUNCT:
                kind = _PUNCT[c]
                tok = Token(kind, c, lineno, col, c)
                tokens.append(tok)
                if kind == "LBRACK":
                    brackets.append(tok)
                elif kind == "RBRACK" and brackets:
                    brackets.pop()
                i += 1
            elif c in "\"'":
                value, end, error = _read_string(raw, i)
                if error:
                    at = end + 1 if raw[end : end + 1] == "\\" else col  # the bad escape
                    problems.append(FlowProblem(lineno, at, error))
                    break
                tokens.append(Token("STRING", value, lineno, col, raw[i:end]))
                i = end
            elif (m := _NUMBER.match(raw, i)) and not NAME.match(raw, m.end()):
                txt = m.group()
                integral = not any(ch in txt for ch in ".eE")
                number: int | float = int(txt) if integral else float(txt)
                tokens.append(Token("NUMBER", number, lineno, col, txt))
                i = m.end()
            elif m := NAME.match(raw, i):
                tokens.append(Token("NAME", m.group(), lineno, col, m.group()))
                i = m.end()
            else:
                problems.append(FlowProblem(lineno, col, f"unexpected character {c!r}"))
                i += 1
        if not brackets:
            tokens.append(Token("NEWLINE", None, lineno, len(raw.rstrip()) + 1))
    end_line = len(lines) + 1
    for tok in brackets:
        problems.append(FlowProblem(tok.line, tok.col, "'[' is never closed: expected ']'"))
    if brackets:
        tokens.append(Token("NEWLINE", None, end_line, 1))
    while len(indents) > 1:
        indents.pop()
        tokens.append(Token("DEDENT", None, end_line, 1))
    tokens.append(Token("EOF", None, end_line, 1))
    return tokens, problems


def _read_string(raw: str, start: int) -> tuple[str, int, str | None]:
    quote = raw[start]
    out: list[str] = []
    i = start + 1
    while i < len(raw):
        c = raw[i]
        if c == quote:
            return "".join(out), i + 1, None
        if c == "\\":
            nxt = raw[i + 1] if i + 1 < len(raw) else ""
            if nxt in _HEX_ESCAPES:
                digits = raw[i + 2 : i + 2 + _HEX_ESCAPES[nxt]]
                if len(digits) != _HEX_ESCAPES[nxt] or not _is_hex(digits):
                    like = "\\u00e9" if nxt == "u" else "\\U0001f600"
                    return "", i, f"'\\{nxt}' needs {_HEX_ESCAPES[nxt]} hex digits, like {like}"
                if int(digits, 16) > sys.maxunicode:
                    return "", i, f"'\\{nxt}{digits}' is not a Unicode code point"
                out.append(chr(int(digits, 16)))
                i += 2 + len(digits)
                continue
            if nxt not in _ESCAPES:
                return "", i, f"unknown escape '\\{nxt}' in a string (use \\\\ for a backslash)"
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(c)
        i += 1
    return "", i, f"string is not closed: expected {quote} before the end of the line"


def _is_hex(digits: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in digits)


# -- spelling a name or a string so that it reads back the same ---------------------------------


def is_name(s: str) -> bool:
    return bool(NAME.fullmatch(s)) and s not in ("true", "false")


_QUOTED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quote(s: str) -> str:
    """`s` as a DSL string: the escapes, and `\\uXXXX` for what is not printable (control and
    format characters, line and paragraph separators, lone surrogates...), so any text fits on
    one line and reads back the same."""
    out = (_QUOTED.get(c) or (c if c.isprintable() else code_point(c)) for c in s)
    return '"' + "".join(out) + '"'


def code_point(c: str) -> str:
    """`c` as an escape, `\\u00e9` or `\\U0001f600` (the DSL's, and YAML's)."""
    return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"


def spell(s: str) -> str:
    """A flow or task name as written: bare when it is a NAME, else quoted."""
    return s if is_name(s) and s not in ("flow", "task") else quote(s)
