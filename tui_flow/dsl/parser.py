"""The DSL's grammar: the syntax tree and a recursive-descent parser.

    file       := flow+
    flow       := "flow" id ":" NEWLINE INDENT flow_item+ DEDENT
    flow_item  := property | task | edge
    task       := "task" id [":"] NEWLINE [INDENT property+ DEDENT]
    property   := NAME ":" value NEWLINE
    edge       := group ("->" group)+ NEWLINE
    group      := id | "[" id ("," id)* [","] "]"
    id         := NAME | STRING
    value      := STRING | NUMBER | "true" | "false" | NAME [":" NAME]

Whatever it does not understand is an error with its line, its column and what was expected.
"""

from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .tokens import FlowError, FlowProblem, Token, spell, tokenize

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
    "retry_on": "word",
    "python": "ref",
    "noop": "bool",
    "run_if": "string",
}
FLOW_PROPERTIES: dict[str, str] = {"description": "string", "max_concurrency": "int"}
_KIND_TEXT = {
    "string": 'a quoted string ("...")',
    "int": "a whole number",
    "number": "a number",
    "bool": "true or false",
    "word": "a name or a quoted string",
    "ref": "a function (name, or module.path:function)",
}
DEFAULT_MAX_CONCURRENCY = 4


class _ParseError(Exception):
    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.problem = FlowProblem(line, col, message)


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
                    hint=f"to declare a task write 'task {spell(first[0])}'",
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


_CODE = re.compile(r"^([ \t]*)code[ \t]*:(.*)$")
_TASK = re.compile(r"^([ \t]*)task[ \t]+(\S.*?)[ \t]*:?[ \t]*(#.*)?$")


def code_blocks(text: str, file: str) -> tuple[str, list[FlowProblem]]:
    """Taskinity's inline `code: |` blocks: one problem each (tui-flow does not run code kept
    in a flow file), and the text with those lines blanked (line numbers kept)."""
    lines = text.split("\n")
    problems: list[FlowProblem] = []
    py = Path(file).with_suffix(".py").name
    task_name = None
    i = 0
    while i < len(lines):
        m_task = _TASK.match(lines[i])
        if m_task:
            task_name = m_task.group(2).strip().strip("\"'")
        m = _CODE.match(lines[i])
        if not m:
            i += 1
            continue
        indent = len(m.group(1).expandtabs())
        start = i
        lines[i] = ""
        i += 1
        while i < len(lines) and (
            not lines[i].strip()
            or len(lines[i].expandtabs()) - len(lines[i].expandtabs().lstrip()) > indent
        ):
            lines[i] = ""
            i += 1
        name = task_name or "NAME"
        problems.append(
            FlowProblem(
                start + 1,
                indent + 1,
                f"task {name!r}: inline code is not run by tui-flow; put the body in "
                f"'def {name}(context)' in {py} beside this file (or point at a function with "
                "'python: module.path:function') and remove the 'code:' block",
            )
        )
    return "\n".join(lines), problems


def parse(text: str, file: str = "<flow>") -> list[FlowDecl]:
    """Parse DSL text into its flows; a `FlowError` lists every syntax problem."""
    text, blocks = code_blocks(text, file)
    tokens, problems = tokenize(text)
    if problems or blocks:
        raise FlowError(file, blocks + problems)
    parser = _Parser(tokens)
    flows = parser.parse_file()
    if parser.problems:
        raise FlowError(file, parser.problems)
    return flows
