"""The text flow DSL: `.flow` files.

    # parallel_tasks.flow
    flow ParallelProcessingDemo:
        description: "Flow for parallel processing demonstration"
        max_concurrency: 4

        task DataPreparation:
            description: "Prepare data for processing"
        task ProcessChunk1:
            runner: process
            retry_attempts: 2
        task AggregateResults

        DataPreparation -> [ProcessChunk1, ProcessChunk2] -> AggregateResults

The grammar (indentation-based, like Python; `#` starts a comment; inside `[...]` a list may
run over several lines):

    file       := flow+
    flow       := "flow" id ":" NEWLINE INDENT flow_item+ DEDENT
    flow_item  := property | task | edge
    task       := "task" id [":"] NEWLINE [INDENT property+ DEDENT]
    property   := NAME ":" value NEWLINE
    edge       := group ("->" group)+ NEWLINE
    group      := id | "[" id ("," id)* [","] "]"
    id         := NAME | STRING
    value      := STRING | NUMBER | "true" | "false" | NAME [":" NAME]

A flow or task name that is not a bare NAME (`"load data"`, `"données"`, `"a->b"`) is written
as a quoted string; `dump_flow` quotes those, and the names `task` and `flow`.

A hand-written tokenizer and a recursive-descent parser: whatever they do not understand is an
error with its line, its column and what was expected. Nothing is skipped.

Task bodies come from Python: by default the function named like the task in the `.py` file
beside the `.flow` file; `python: function` names another function of that file and
`python: module.path:function` a function of any importable module (the flow's folder is on
the import path). `noop: true` marks a task without a body. The `.flow` file is the whole
definition of the graph and the options: when the body is decorated with `@task`, only its
function is used.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import itertools
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, get_args

from pydantic import ValidationError as PydanticValidationError

from .errors import LoadError, TaskDefinitionError, ValidationError
from .loader import (
    LoadedFile,
    _evict_modules_under,
    _FolderFinder,
    _lock,
    import_fresh,
    source_hash,
)
from .task import RetryBackoff, RunnerName, Task, TaskSpec, TriggerRule, make_task
from .workflow import Workflow

__all__ = [
    "FLOW_PROPERTIES",
    "TASK_PROPERTIES",
    "FlowError",
    "dump_flow",
    "load_flow",
    "parse",
    "to_mermaid",
]

# property name -> the kind of value it takes
TASK_PROPERTIES: dict[str, str] = {
    "description": "string",
    "retry_attempts": "int",
    "retry_delay_ms": "number",
    "retry_backoff": "word",
    "retry_max_delay_ms": "number",
    "retry_jitter": "bool",
    "timeout_s": "number",
    "runner": "word",
    "trigger_rule": "word",
    "map_over": "word",
    "fallback": "ref",
    "python": "ref",
    "noop": "bool",
}
FLOW_PROPERTIES: dict[str, str] = {"description": "string", "max_concurrency": "int"}
_CHOICES: dict[str, tuple[str, ...]] = {
    "retry_backoff": get_args(RetryBackoff),
    "trigger_rule": get_args(TriggerRule),
    "runner": get_args(RunnerName),
}
_KIND_TEXT = {
    "string": 'a quoted string ("...")',
    "int": "a whole number",
    "number": "a number",
    "bool": "true or false",
    "word": "a name or a quoted string",
    "ref": "a function (name, or module.path:function)",
}
DEFAULT_MAX_CONCURRENCY = 4


# ---------------------------------------------------------------------------------------------
# errors


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


class _ParseError(Exception):
    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.problem = FlowProblem(line, col, message)


# ---------------------------------------------------------------------------------------------
# tokenizer


@dataclass(frozen=True)
class Token:
    kind: str  # NAME STRING NUMBER COLON ARROW LBRACK RBRACK COMMA NEWLINE INDENT DEDENT EOF
    value: Any
    line: int
    col: int
    text: str = ""


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[.-][A-Za-z0-9_]+)*")
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
            elif (m := _NUMBER.match(raw, i)) and not _NAME.match(raw, m.end()):
                txt = m.group()
                integral = not any(ch in txt for ch in ".eE")
                value = int(txt) if integral else float(txt)
                tokens.append(Token("NUMBER", value, lineno, col, txt))
                i = m.end()
            elif m := _NAME.match(raw, i):
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


# ---------------------------------------------------------------------------------------------
# syntax tree


@dataclass
class Value:
    kind: str  # string | int | number | bool | word | ref
    value: Any
    line: int
    col: int


@dataclass
class Prop:
    name: str
    value: Value
    line: int
    col: int


@dataclass
class TaskDecl:
    name: str
    line: int
    col: int
    props: list[Prop] = field(default_factory=list)


@dataclass
class EdgeDecl:
    src: str
    dst: str
    src_at: tuple[int, int]
    dst_at: tuple[int, int]
    line: int


@dataclass
class FlowDecl:
    name: str
    line: int
    col: int
    props: list[Prop] = field(default_factory=list)
    tasks: list[TaskDecl] = field(default_factory=list)
    edges: list[EdgeDecl] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# parser


def _describe(tok: Token) -> str:
    if tok.kind == "NAME":
        return f"{tok.value!r}"
    if tok.kind == "STRING":
        return f"the string {tok.text}"
    if tok.kind == "NUMBER":
        return f"the number {tok.text}"
    return {
        "COLON": "':'",
        "COMMA": "','",
        "LBRACK": "'['",
        "RBRACK": "']'",
        "ARROW": "'->'",
        "NEWLINE": "the end of the line",
        "INDENT": "an indented block",
        "DEDENT": "the end of the block",
        "EOF": "the end of the file",
    }[tok.kind]


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.toks = tokens
        self.i = 0
        self.problems: list[FlowProblem] = []

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, n: int = 1) -> Token:
        return self.toks[min(self.i + n, len(self.toks) - 1)]

    def next(self) -> Token:
        tok = self.toks[self.i]
        if tok.kind != "EOF":
            self.i += 1
        return tok

    def fail(self, expected: str, tok: Token | None = None, hint: str = "") -> _ParseError:
        tok = tok or self.tok
        msg = f"expected {expected}, found {_describe(tok)}"
        return _ParseError(tok.line, tok.col, f"{msg}; {hint}" if hint else msg)

    def expect(self, kind: str, expected: str) -> Token:
        if self.tok.kind != kind:
            raise self.fail(expected)
        return self.next()

    def expect_id(self, expected: str) -> Token:
        """A flow or task name: a bare NAME or a quoted string."""
        if self.tok.kind not in ("NAME", "STRING"):
            raise self.fail(expected)
        return self.next()

    def end_of_line(self, after: str) -> None:
        if self.tok.kind != "NEWLINE":
            raise self.fail(f"the end of the line after {after}")
        self.next()

    def recover(self) -> None:
        """Skip the rest of the statement and any block hanging off it."""
        while self.tok.kind not in ("NEWLINE", "EOF", "DEDENT", "INDENT"):
            self.next()
        if self.tok.kind == "NEWLINE":
            self.next()
        if self.tok.kind == "INDENT":
            self.skip_block()

    def skip_block(self) -> None:
        depth = 0
        while self.tok.kind != "EOF":
            kind = self.next().kind
            if kind == "INDENT":
                depth += 1
            elif kind == "DEDENT":
                depth -= 1
                if depth == 0:
                    return

    # -- rules ---------------------------------------------------------------------------------

    def parse_file(self) -> list[FlowDecl]:
        flows: list[FlowDecl] = []
        if self.tok.kind == "EOF":
            self.problems.append(FlowProblem(1, 1, "the file holds no flow: expected 'flow NAME:'"))
        while self.tok.kind != "EOF":
            try:
                if self.tok.kind == "INDENT":
                    raise _ParseError(
                        self.tok.line,
                        self.tok.col,
                        "unexpected indentation: expected 'flow NAME:' at the start of the line",
                    )
                if not (self.tok.kind == "NAME" and self.tok.value == "flow"):
                    raise self.fail("'flow NAME:'")
                flows.append(self.parse_flow())
            except _ParseError as exc:
                self.problems.append(exc.problem)
                self.recover()
        return flows

    def parse_flow(self) -> FlowDecl:
        kw = self.next()
        name = self.expect_id("the flow's name after 'flow'")
        flow = FlowDecl(name.value, kw.line, kw.col)
        self.expect("COLON", f"':' after 'flow {name.text}'")
        self.end_of_line(f"'flow {name.text}:'")
        if self.tok.kind != "INDENT":
            raise self.fail(
                f"an indented block with the description, tasks and edges of flow {name.value!r}"
            )
        self.next()
        while self.tok.kind not in ("DEDENT", "EOF"):
            try:
                self.parse_flow_item(flow)
            except _ParseError as exc:
                self.problems.append(exc.problem)
                self.recover()
        if self.tok.kind == "DEDENT":
            self.next()
        return flow

    def parse_flow_item(self, flow: FlowDecl) -> None:
        tok = self.tok
        if tok.kind == "INDENT":
            raise _ParseError(
                tok.line,
                tok.col,
                "unexpected indentation: only a task's properties are indented under it",
            )
        if tok.kind == "NAME" and tok.value == "task" and self.peek().kind != "COLON":
            if self.peek().kind not in ("NAME", "STRING"):
                raise self.fail("a task name after 'task'", self.peek())
            flow.tasks.append(self.parse_task())
        elif tok.kind == "NAME" and self.peek().kind == "COLON":
            flow.props.append(self.parse_property(FLOW_PROPERTIES, "flow"))
        elif tok.kind in ("NAME", "STRING", "LBRACK"):
            self.parse_edge(flow)
        else:
            raise self.fail("a task ('task NAME:'), a flow property ('NAME: value') or an edge")

    def parse_task(self) -> TaskDecl:
        self.next()
        name = self.next()
        decl = TaskDecl(name.value, name.line, name.col)
        if self.tok.kind == "COLON":
            self.next()
            self.end_of_line(f"'task {name.text}:'")
        else:
            self.end_of_line(f"'task {name.text}' (or ':' and the task's properties)")
        if self.tok.kind == "INDENT":
            self.next()
            while self.tok.kind not in ("DEDENT", "EOF"):
                try:
                    if self.tok.kind == "INDENT":
                        raise _ParseError(
                            self.tok.line, self.tok.col, "unexpected indentation in a task"
                        )
                    nested = (self.tok.kind, self.tok.value) == ("NAME", "task")
                    nested = nested and self.peek().kind in ("NAME", "STRING")
                    if self.tok.kind != "NAME" or nested:
                        raise self.fail(
                            f"a property of task {name.value!r} ('NAME: value')",
                            hint="tasks are declared at the flow's level" if nested else "",
                        )
                    if self.peek().kind != "COLON":
                        raise self.fail(f"':' after {self.tok.value!r}", self.peek())
                    decl.props.append(self.parse_property(TASK_PROPERTIES, "task"))
                except _ParseError as exc:
                    self.problems.append(exc.problem)
                    self.recover()
            if self.tok.kind == "DEDENT":
                self.next()
        return decl

    def parse_property(self, known: dict[str, str], owner: str) -> Prop:
        name = self.next()
        self.next()  # the colon
        kind = known.get(name.value)
        if kind is None:
            close = difflib.get_close_matches(name.value, list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _ParseError(
                name.line,
                name.col,
                f"unknown {owner} property {name.value!r}{hint}; expected one of: "
                + ", ".join(known),
            )
        value = self.parse_value(name.value, kind)
        self.end_of_line(f"the value of {name.value!r}")
        return Prop(name.value, value, name.line, name.col)

    def parse_value(self, prop: str, kind: str) -> Value:
        tok = self.tok
        want = _KIND_TEXT[kind]
        if kind == "string":
            if tok.kind != "STRING":
                raise self.fail(f"{want} as the value of {prop!r}")
            self.next()
            return Value(kind, tok.value, tok.line, tok.col)
        if kind in ("int", "number"):
            if tok.kind != "NUMBER" or (kind == "int" and not isinstance(tok.value, int)):
                raise self.fail(f"{want} as the value of {prop!r}")
            self.next()
            return Value(kind, tok.value, tok.line, tok.col)
        if kind == "bool":
            if tok.kind != "NAME" or tok.value not in ("true", "false"):
                raise self.fail(f"{want} as the value of {prop!r}")
            self.next()
            return Value(kind, tok.value == "true", tok.line, tok.col)
        if kind == "word":
            if tok.kind not in ("NAME", "STRING"):
                raise self.fail(f"{want} as the value of {prop!r}")
            self.next()
            return Value(kind, tok.value, tok.line, tok.col)
        # ref: function | module.path:function | "module.path:function"
        if tok.kind == "STRING":
            self.next()
            return Value(kind, tok.value, tok.line, tok.col)
        if tok.kind != "NAME":
            raise self.fail(f"{want} as the value of {prop!r}")
        self.next()
        text = tok.value
        if self.tok.kind == "COLON":
            self.next()
            fn = self.expect("NAME", f"a function name after '{text}:'")
            text = f"{text}:{fn.value}"
        return Value(kind, text, tok.line, tok.col)

    def parse_edge(self, flow: FlowDecl) -> None:
        line = self.tok.line
        groups = [self.parse_group()]
        if self.tok.kind != "ARROW":
            first = groups[0][0]
            if len(groups[0]) == 1 and self.tok.kind in ("NEWLINE", "NAME"):
                raise self.fail(
                    f"'->' (an edge) or ':' (a property) after {first[0]!r}",
                    hint=f"to declare a task write 'task {_id(first[0])}'",
                )
            raise self.fail("'->'")
        while self.tok.kind == "ARROW":
            self.next()
            groups.append(self.parse_group())
        self.end_of_line("an edge")
        for left, right in itertools.pairwise(groups):
            for src, src_at in left:
                for dst, dst_at in right:
                    flow.edges.append(EdgeDecl(src, dst, src_at, dst_at, line))

    def parse_group(self) -> list[tuple[str, tuple[int, int]]]:
        tok = self.tok
        if tok.kind in ("NAME", "STRING"):
            self.next()
            return [(tok.value, (tok.line, tok.col))]
        if tok.kind != "LBRACK":
            raise self.fail("a task name or '[' (a list of task names)")
        self.next()
        items: list[tuple[str, tuple[int, int]]] = []
        while True:
            if self.tok.kind == "RBRACK" and items:
                self.next()
                return items
            name = self.expect_id("a task name" if not items else "a task name or ']'")
            items.append((name.value, (name.line, name.col)))
            if self.tok.kind == "COMMA":
                self.next()
            elif self.tok.kind != "RBRACK":
                raise self.fail("',' or ']'")


def parse(text: str, file: str = "<flow>") -> list[FlowDecl]:
    """Parse DSL text into its flows; a `FlowError` lists every syntax problem."""
    tokens, problems = tokenize(text)
    if problems:
        raise FlowError(file, problems)
    parser = _Parser(tokens)
    flows = parser.parse_file()
    if parser.problems:
        raise FlowError(file, parser.problems)
    return flows


# ---------------------------------------------------------------------------------------------
# building workflows


async def _noop_body(context: Any) -> None:  # the body of a `noop: true` task
    return None


class _Bodies:
    """Finds task bodies: the `.py` beside the `.flow` (imported once, lazily), or modules."""

    def __init__(self, flow_path: Path) -> None:
        self.flow_path = flow_path
        self.py_path = flow_path.with_suffix(".py")
        self._module: ModuleType | None = None
        self.extra_files: list[Path] = []

    @property
    def sibling(self) -> ModuleType | None:
        if self._module is None and self.py_path.exists():
            self._module = import_fresh(self.py_path)  # a LoadError points into the .py
        return self._module

    def from_sibling(self, name: str) -> tuple[Any, str | None]:
        module = self.sibling
        if module is None:
            return None, f"{self.py_path.name} does not exist beside {self.flow_path.name}"
        found = vars(module).get(name)
        if found is None:
            hint = ""
            if "." in name:
                mod, _, fn = name.rpartition(".")
                hint = f" (for a function of another module write '{mod}:{fn}')"
            return None, f"{self.py_path.name} has no function {name!r}{hint}"
        return _callable(found, f"{self.py_path.name}: {name!r}")

    def from_module(self, module_path: str, name: str) -> tuple[Any, str | None]:
        """Import `module_path` with the flow's folder first on the path, like the loader
        imports a flow: modules of the folder compiled fresh from source, and evicted again
        afterwards so a same-named module beside another flow is never reused."""
        folder = self.flow_path.parent
        top = module_path.split(".")[0]
        with _lock:
            _evict_modules_under(folder)
            if (folder / f"{top}.py").exists() or (folder / top / "__init__.py").exists():
                for loaded in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
                    del sys.modules[loaded]
            importlib.invalidate_caches()
            added = str(folder) not in sys.path
            if added:
                sys.path.insert(0, str(folder))
            finder = _FolderFinder((str(folder) + os.sep,))
            sys.meta_path.insert(0, finder)
            before = set(sys.modules)
            try:
                module = importlib.import_module(module_path)
            except Exception as exc:
                return None, f"cannot import module {module_path!r}: {type(exc).__name__}: {exc}"
            finally:
                sys.meta_path.remove(finder)
                _evict_modules_under(folder, only=set(sys.modules) - before)
                if added:
                    with contextlib.suppress(ValueError):
                        sys.path.remove(str(folder))
        file = getattr(module, "__file__", None)
        if file and _is_user_file(file) and Path(file).resolve() not in self.extra_files:
            self.extra_files.append(Path(file).resolve())  # watched for hot reload
        found = getattr(module, name, None)
        if found is None:
            return None, f"module {module_path!r} has no function {name!r}"
        return _callable(found, f"{module_path}:{name}")

    def resolve(self, ref: str) -> tuple[Any, str | None]:
        module_path, sep, name = ref.rpartition(":")
        if not sep:
            return self.from_sibling(ref)
        if not module_path or not name:
            return None, f"expected 'function' or 'module.path:function', got {ref!r}"
        return self.from_module(module_path, name)


def _is_user_file(file: str) -> bool:
    """Not part of Python or an installed package (those are not watched for changes)."""
    if "site-packages" in file or "dist-packages" in file:
        return False
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return not any(file.startswith(p + os.sep) for p in prefixes)


def _callable(found: Any, where: str) -> tuple[Any, str | None]:
    if isinstance(found, Task):
        return found.fn, None
    if isinstance(found, Workflow) or not callable(found):
        return None, f"{where} is a {type(found).__name__}, not a function"
    return found, None


def _check_value(prop: Prop) -> str | None:
    """Check one option's value like `@task` would; the message, or None when it is fine."""
    name, value = prop.name, prop.value.value
    if name in ("python", "fallback", "noop"):
        return None
    if name in _CHOICES and value not in _CHOICES[name]:
        close = difflib.get_close_matches(str(value), _CHOICES[name], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{name}: {value!r} is not allowed{hint}; expected one of: " + ", ".join(
            _CHOICES[name]
        )
    try:
        TaskSpec.model_validate({"id": "x", name: value})
    except PydanticValidationError as exc:
        return f"{name}: {exc.errors()[0]['msg'].lower()} (got {value!r})"
    return None


class _FlowBuilder:
    """Checks one parsed flow and builds its Workflow, adding every problem it finds."""

    def __init__(
        self, decl: FlowDecl, bodies: _Bodies, problems: list[FlowProblem], file: str
    ) -> None:
        self.decl = decl
        self.bodies = bodies
        self.problems = problems
        self.file = file
        self.declared: dict[str, TaskDecl] = {}
        self.deps: dict[str, list[str]] = {}
        self.edge_at: dict[tuple[str, str], EdgeDecl] = {}

    def add(self, line: int, col: int, msg: str) -> None:
        self.problems.append(FlowProblem(line, col, msg))

    def build(self) -> Workflow | None:
        start = len(self.problems)
        flow_opts = self.flow_options()
        self.collect_tasks()
        self.collect_edges()
        tasks = [t for t in map(self.make, self.declared.values()) if t is not None]
        if len(self.problems) > start:
            return None
        try:
            wf = Workflow(
                self.decl.name,
                tasks,
                max_concurrency=flow_opts.get("max_concurrency", DEFAULT_MAX_CONCURRENCY),
                description=flow_opts.get("description"),
            )
        except ValidationError as exc:
            for p in exc.problems:
                self.add(*self.locate(p))
            return None
        wf.line = self.decl.line
        wf.defined_in = self.file
        return wf

    def flow_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        seen: dict[str, Prop] = {}
        for prop in self.decl.props:
            if prop.name in seen:
                first = seen[prop.name].line
                msg = f"flow property {prop.name!r} is set twice (first on line {first})"
                self.add(prop.line, prop.col, msg)
                continue
            seen[prop.name] = prop
            if prop.name == "max_concurrency" and prop.value.value < 1:
                self.add(prop.value.line, prop.value.col, "max_concurrency must be at least 1")
                continue
            opts[prop.name] = prop.value.value
        return opts

    def collect_tasks(self) -> None:
        for t in self.decl.tasks:
            if t.name in self.declared:
                first = self.declared[t.name].line
                self.add(
                    t.line, t.col, f"duplicate task {t.name!r} (first declared on line {first})"
                )
                continue
            self.declared[t.name] = t
            self.deps[t.name] = []
        if not self.declared and not self.decl.edges:
            self.add(self.decl.line, self.decl.col, f"flow {self.decl.name!r} has no tasks")

    def collect_edges(self) -> None:
        for e in self.decl.edges:
            bad = False
            for name, (line, col) in ((e.src, e.src_at), (e.dst, e.dst_at)):
                if name not in self.declared:
                    bad = True
                    close = difflib.get_close_matches(name, list(self.declared), n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    msg = f"edge uses task {name!r}, which is not declared{hint}"
                    self.add(line, col, f"{msg}; declare it with 'task {_id(name)}'")
            if bad:
                continue
            if e.src == e.dst:
                self.add(*e.dst_at, f"task {e.src!r} cannot depend on itself")
                continue
            if e.src not in self.deps[e.dst]:
                self.deps[e.dst].append(e.src)
                self.edge_at[(e.src, e.dst)] = e

    def options(self, t: TaskDecl) -> tuple[dict[str, Any], dict[str, Prop], bool]:
        opts: dict[str, Any] = {}
        seen: dict[str, Prop] = {}
        ok = True
        for prop in t.props:
            if prop.name in seen:
                first = seen[prop.name].line
                msg = f"property {prop.name!r} is set twice (first on line {first})"
                self.add(prop.line, prop.col, f"task {t.name!r}: {msg}")
                ok = False
                continue
            seen[prop.name] = prop
            msg = _check_value(prop)
            if msg:
                self.add(prop.value.line, prop.value.col, f"task {t.name!r}: {msg}")
                ok = False
                continue
            opts[prop.name] = prop.value.value
        return opts, seen, ok

    def make(self, t: TaskDecl) -> Task | None:
        name = t.name
        opts, seen, ok = self.options(t)
        noop = opts.pop("noop", False)
        python = opts.pop("python", None)
        fallback_ref = opts.pop("fallback", None)
        if noop and python is not None:
            p = seen["python"]
            self.add(p.line, p.col, f"task {name!r}: 'noop: true' and 'python:' exclude each other")
            ok = False
        if noop and opts.get("runner") == "process":
            v = seen["runner"].value
            msg = "a noop task has no body to run in a process; remove 'runner: process'"
            self.add(v.line, v.col, f"task {name!r}: {msg}")
            ok = False
        fn: Any = None
        if noop:
            fn = _noop_body
        elif python is not None:
            fn, why = self.bodies.resolve(python)
            if fn is None:
                v = seen["python"].value
                self.add(v.line, v.col, f"task {name!r}: python: {why}")
                ok = False
        else:
            fn, why = self.bodies.from_sibling(name)
            if fn is None:
                self.add(
                    t.line,
                    t.col,
                    f"task {name!r} has no body: {why}; write 'def {name}(context)' there, "
                    "point at one with 'python: module.path:function', or mark the task "
                    "'noop: true'",
                )
                ok = False
        if fallback_ref is not None:
            v = seen["fallback"].value
            fb, why = self.bodies.resolve(fallback_ref)
            if fb is None:
                self.add(v.line, v.col, f"task {name!r}: fallback: {why}")
                ok = False
            else:
                opts["fallback"] = fb
        if not ok:
            return None
        try:
            task = make_task(fn, id=name, dependencies=self.deps[name], **opts)
        except TaskDefinitionError as exc:
            self.add(t.line, t.col, str(exc).splitlines()[0])
            return None
        if noop:
            task.source_file, task.source_line = self.file, t.line
        return task

    def locate(self, p: Any) -> tuple[int, int, str]:
        """Where in the `.flow` file a Workflow validation problem belongs."""
        msg = p.message
        if msg.startswith("dependency cycle: "):
            path = msg.removeprefix("dependency cycle: ").split(" -> ")
            edges = [self.edge_at[e] for e in itertools.pairwise(path) if e in self.edge_at]
            if edges:
                last = max(edges, key=lambda e: (e.line, e.dst_at))
                return last.dst_at[0], last.dst_at[1], msg
        t = self.declared.get(p.task_id or "")
        if t is not None:
            if p.file and p.file != self.file:
                msg += f" (body at {p.file}:{p.line})" if p.line else f" (body in {p.file})"
            return t.line, t.col, msg
        return self.decl.line, self.decl.col, msg


def _file_of(fn: Any) -> str | None:
    code = getattr(fn, "__code__", None)
    return code.co_filename if code is not None else None


def build(flows: list[FlowDecl], path: Path) -> LoadedFile:
    """Turn parsed flows into Workflows with real Tasks; a `FlowError` lists every problem."""
    file = str(path)
    bodies = _Bodies(path)
    problems: list[FlowProblem] = []
    workflows: dict[str, Workflow] = {}
    names: dict[str, FlowDecl] = {}
    for decl in flows:
        if decl.name in names:
            problems.append(
                FlowProblem(
                    decl.line,
                    decl.col,
                    f"two flows are named {decl.name!r} (first on line {names[decl.name].line})",
                )
            )
            continue
        names[decl.name] = decl
        wf = _FlowBuilder(decl, bodies, problems, file).build()
        if wf is not None:
            workflows[wf.name] = wf
    if problems:
        raise FlowError(file, problems)
    watch = [path]
    if bodies.py_path.exists():
        watch.append(bodies.py_path)
    watch += [f for f in bodies.extra_files if f not in watch]
    digest = source_hash(*watch)
    for wf in workflows.values():
        wf.file = file
        wf.source_hash = digest
    return LoadedFile(path, workflows, digest, watch)


def load_flow(path: str | Path) -> LoadedFile:
    """Load a `.flow` file: parse it, find the bodies, build and validate its workflows."""
    p = Path(path).resolve()
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(str(p), f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise LoadError(str(p), f"cannot be read: {exc.strerror or exc}") from None
    return build(parse(text, str(p)), p)


# ---------------------------------------------------------------------------------------------
# writing workflows out


def _is_name(s: str) -> bool:
    return bool(_NAME.fullmatch(s)) and s not in ("true", "false")


_QUOTED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _quote(s: str) -> str:
    """`s` as a DSL string: the escapes, and `\\uXXXX` for what is not printable (control and
    format characters, line and paragraph separators, lone surrogates...), so any text fits on
    one line and reads back the same."""
    out = (_QUOTED.get(c) or (c if c.isprintable() else _code_point(c)) for c in s)
    return '"' + "".join(out) + '"'


def _code_point(c: str) -> str:
    """`c` as an escape, `\\u00e9` or `\\U0001f600` (the DSL's, and YAML's)."""
    return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"


def _id(s: str) -> str:
    """A flow or task name as written: bare when it is a NAME, else quoted."""
    return s if _is_name(s) and s not in ("flow", "task") else _quote(s)


def _number(v: float) -> str:
    if isinstance(v, int):
        return str(v)
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


def _ref(fn: Any, task_id: str | None, wf_file: str | None) -> str | None:
    """How the DSL names a function: None when it is the default body of `task_id`."""
    inner = fn.fn if isinstance(fn, Task) else fn
    name = getattr(inner, "__name__", "?")
    code_file = _file_of(inner)
    sibling = None
    if wf_file:
        sibling = str(Path(wf_file).with_suffix(".py").resolve())
    if code_file and sibling and str(Path(code_file).resolve()) == sibling:
        return None if name == task_id else name
    module = getattr(inner, "__module__", None) or ""
    if module.startswith("tui_flow_user_") or module in ("__main__", ""):
        module = Path(code_file).stem if code_file else module
    return f"{module}:{name}"


def _value(name: str, v: Any) -> str:
    kind = TASK_PROPERTIES.get(name) or FLOW_PROPERTIES.get(name)
    if kind == "string":
        return _quote(str(v))
    if kind == "bool":
        return "true" if v else "false"
    if kind in ("int", "number"):
        return _number(v)
    if kind == "word":
        return v if _is_name(str(v)) else _quote(str(v))
    return v if re.fullmatch(rf"{_NAME.pattern}(?::{_NAME.pattern})?", v) else _quote(v)


def dump_flow(workflow: Workflow | Iterable[Workflow]) -> str:
    """The DSL text of a workflow (or several): loading it gives the same graph and options."""
    if not isinstance(workflow, Workflow):
        return "\n".join(dump_flow(w) for w in workflow)
    wf = workflow
    defaults = TaskSpec(id="x")
    out = [f"flow {_id(wf.name)}:"]
    if wf.description is not None:
        out.append(f"    description: {_quote(str(wf.description))}")
    if wf.max_concurrency != DEFAULT_MAX_CONCURRENCY:
        out.append(f"    max_concurrency: {wf.max_concurrency}")
    out.append("")
    declared = list(wf.tasks)  # declaration order, as written
    for tid in declared:
        t = wf.tasks[tid]
        props: list[tuple[str, str]] = []
        for name in TASK_PROPERTIES:
            if name in ("python", "noop", "fallback"):
                continue
            v = getattr(t.spec, name)
            if v != getattr(defaults, name) and v is not None:
                props.append((name, _value(name, v)))
        if t.fn is _noop_body:
            props.append(("noop", "true"))
        else:
            ref = _ref(t.fn, tid, wf.file)
            if ref is not None:
                props.append(("python", _value("python", ref)))
        if t.fallback_fn is not None:
            fb = _ref(t.fallback_fn, None, wf.file)
            props.append(("fallback", _value("fallback", fb or t.fallback_fn.__name__)))
        if props:
            out.append(f"    task {_id(tid)}:")
            out += [f"        {k}: {v}" for k, v in props]
        else:
            out.append(f"    task {_id(tid)}")
    edges = [(tid, wf.dependents(tid)) for tid in declared]
    edges = [(s, ds) for s, ds in edges if ds]
    if edges:
        out.append("")
    rank = {tid: i for i, tid in enumerate(declared)}
    for src, dsts in edges:
        dsts = [_id(d) for d in sorted(dsts, key=rank.__getitem__)]
        right = dsts[0] if len(dsts) == 1 else "[" + ", ".join(dsts) + "]"
        out.append(f"    {_id(src)} -> {right}")
    return "\n".join(out) + "\n"


# words Mermaid reads as keywords where a node id may stand (it matches some in any case)
_MERMAID_WORDS = frozenset(
    "end graph subgraph flowchart style class classdef click linkstyle direction call href "
    "default interpolate acctitle accdescr".split()
)


def _mermaid_id(tid: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", tid) or "task"
    if base[0].isdigit():
        base = "t_" + base
    if base.lower() in _MERMAID_WORDS:
        base += "_"
    candidate, n = base, 2
    while candidate in used:
        candidate, n = f"{base}_{n}", n + 1
    used.add(candidate)
    return candidate


_MERMAID_ENTITIES = {
    "#": "#35;",
    "&": "#amp;",
    '"': "#quot;",
    "<": "#lt;",
    ">": "#gt;",
    "`": "#96;",
}


def _mermaid_text(s: str) -> str:
    """Text for inside a quoted Mermaid label: what Mermaid would read as markup (quotes, HTML,
    `#...;` entity codes, a leading backtick's Markdown) and what is not printable (newlines,
    separators) as entity codes, which Mermaid shows as the characters themselves."""
    return "".join(_MERMAID_ENTITIES.get(c) or (c if c.isprintable() else f"#{ord(c)};") for c in s)


_YAML_WORDS = frozenset("true false null yes no on off y n".split())  # not a name in YAML


def _mermaid_title(s: str) -> str:
    """The workflow's name as a YAML value (Mermaid's front matter): bare when plain, else a
    double-quoted string with escapes."""
    if _is_name(s) and s.lower() not in _YAML_WORDS:
        return s
    text = json.dumps(s, ensure_ascii=False)
    return "".join(c if c.isprintable() else _code_point(c) for c in text)


def to_mermaid(workflow: Workflow) -> str:
    """A Mermaid flowchart of the workflow: one node per task, one arrow per dependency.

    Map-over tasks are drawn as subroutines (`[[...]]`) labelled with their list key; a
    dependency whose task runs under another trigger rule than all_success is a dotted
    arrow labelled with the rule.
    """
    wf = workflow
    used: set[str] = set()
    ids = {tid: _mermaid_id(tid, used) for tid in wf.tasks}
    out = ["---", f"title: {_mermaid_title(wf.name)}", "---", "flowchart TD"]
    for tid in wf.tasks:
        t = wf.tasks[tid]
        label = _mermaid_text(tid)
        if t.spec.map_over:
            label += f"<br/><small>for each in {_mermaid_text(t.spec.map_over)}</small>"
            out.append(f'    {ids[tid]}[["{label}"]]')
        elif t.fn is _noop_body:
            out.append(f'    {ids[tid]}(["{label}"])')
        else:
            out.append(f'    {ids[tid]}["{label}"]')
    for tid in wf.tasks:
        rule = wf.tasks[tid].spec.trigger_rule
        for dep in sorted(wf.dependencies(tid), key=list(wf.tasks).index):
            if rule == "all_success":
                out.append(f"    {ids[dep]} --> {ids[tid]}")
            else:
                out.append(f"    {ids[dep]} -.->|{rule}| {ids[tid]}")
    return "\n".join(out) + "\n"
