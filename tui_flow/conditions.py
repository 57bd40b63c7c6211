"""Data conditions: `@task(run_if=...)` runs a task only when its condition holds.

    from tui_flow import task, ctx, succeeded, all_of

    @task(dependencies=["validate"], run_if=ctx("do_audit") == True)
    def audit(context): ...

A condition is evaluated once, when the task is ready (its dependencies are final and its
trigger rule lets it run), against what the task would see of the context and the states of
the tasks it names. When it does not hold, the task is SKIPPED (its body never runs) with the
reason the condition gives: "do_audit is false". A skip is not a failure: what follows obeys
its own trigger rule (the default, all_success, skips it too; none_failed and all_done run it).

The same conditions are written as text in `.flow` files and shown that way in the app:
`do_audit == true and succeeded(validate)`; `parse()` reads the text, `str()` writes it.
"""

from __future__ import annotations

import ast
import json
import keyword
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_MISSING = object()


def _lit(v: Any) -> str:
    """A value as condition text writes it (JSON: true, null, "a")."""
    try:
        return json.dumps(v, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(v)


class Condition:
    """Something that holds or not, given the context a task sees and the tasks' states."""

    def why_not(self, values: Mapping[str, Any], states: Mapping[str, str]) -> str | None:
        """None when the condition holds, else why not (a short sentence for the skip)."""
        raise NotImplementedError

    def holds(self, values: Mapping[str, Any], states: Mapping[str, str] | None = None) -> bool:
        return self.why_not(values, states or {}) is None

    def tasks(self) -> set[str]:
        """The task ids whose state the condition reads."""
        return set()

    def __and__(self, other: Condition) -> Condition:
        return all_of(self, other)

    def __or__(self, other: Condition) -> Condition:
        return any_of(self, other)

    def __invert__(self) -> Condition:
        return none_of(self)

    def __bool__(self) -> bool:
        raise TypeError(
            "a condition has no truth value in Python; combine conditions with "
            "all_of/any_of/none_of (or & | ~), not and/or/not"
        )

    def __repr__(self) -> str:
        return f"<condition {self}>"

    def __eq__(self, other: object) -> Any:
        return type(self) is type(other) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "contains": lambda a, b: b in a,
    "not contains": lambda a, b: b not in a,
}


def _key_text(key: str) -> str:
    if key.isidentifier() and not keyword.iskeyword(key) and key not in _WORDS:
        return key
    return f"ctx({_lit(key)})"


class Compare(Condition):
    """`ctx(key) <op> value`: a context value compared with a constant."""

    __slots__ = ("key", "op", "value")

    def __init__(self, key: str, op: str, value: Any) -> None:
        if op not in _OPS:
            raise ValueError(f"unknown comparison {op!r}; use one of: {', '.join(_OPS)}")
        self.key, self.op, self.value = key, op, value

    def why_not(self, values: Mapping[str, Any], states: Mapping[str, str]) -> str | None:
        actual = values.get(self.key, _MISSING)
        if actual is _MISSING:
            return f"{self.key} is not set"
        try:
            ok = _OPS[self.op](actual, self.value)
        except TypeError:
            ok = False
        if ok:
            return None
        if self.op == "==":
            return f"{self.key} is {_lit(actual)}"
        if self.op == "!=":
            return f"{self.key} is {_lit(self.value)}"
        if self.op in ("contains", "not contains"):
            does = "does not contain" if self.op == "contains" else "contains"
            return f"{self.key} {does} {_lit(self.value)}"
        return f"{self.key} is {_lit(actual)}, not {self.op} {_lit(self.value)}"

    def __str__(self) -> str:
        if self.op == "contains":
            return f"{_lit(self.value)} in {_key_text(self.key)}"
        if self.op == "not contains":
            return f"{_lit(self.value)} not in {_key_text(self.key)}"
        return f"{_key_text(self.key)} {self.op} {_lit(self.value)}"


class Exists(Condition):
    __slots__ = ("key", "present")

    def __init__(self, key: str, present: bool = True) -> None:
        self.key, self.present = key, present

    def why_not(self, values: Mapping[str, Any], states: Mapping[str, str]) -> str | None:
        if (self.key in values) == self.present:
            return None
        return f"{self.key} is not set" if self.present else f"{self.key} is set"

    def __str__(self) -> str:
        return f"{'exists' if self.present else 'missing'}({_lit(self.key)})"


class Key(Condition):
    """`ctx("key")`: holds when the value is set and truthy; compare it to make others."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        if not isinstance(key, str) or not key:
            raise TypeError(f"ctx() takes a context key (a non-empty string), not {key!r}")
        self.key = key

    def why_not(self, values: Mapping[str, Any], states: Mapping[str, str]) -> str | None:
        actual = values.get(self.key, _MISSING)
        if actual is _MISSING:
            return f"{self.key} is not set"
        return None if actual else f"{self.key} is {_lit(actual)}"

    def __str__(self) -> str:
        return _key_text(self.key)

    def __eq__(self, value: object) -> Any:
        if isinstance(value, Condition):  # two conditions: are they the same one
            return Condition.__eq__(self, value)
        return Compare(self.key, "==", value)

    def __ne__(self, value: object) -> Any:
        if isinstance(value, Condition):
            return not Condition.__eq__(self, value)
        return Compare(self.key, "!=", value)

    def __gt__(self, value: Any) -> Condition:
        return Compare(self.key, ">", value)

    def __lt__(self, value: Any) -> Condition:
        return Compare(self.key, "<", value)

    def __ge__(self, value: Any) -> Condition:
        return Compare(self.key, ">=", value)

    def __le__(self, value: Any) -> Condition:
        return Compare(self.key, "<=", value)

    def __hash__(self) -> int:
        return hash(("key", self.key))

    def contains(self, value: Any) -> Condition:
        return Compare(self.key, "contains", value)

    def not_contains(self, value: Any) -> Condition:
        return Compare(self.key, "not contains", value)

    def exists(self) -> Condition:
        return Exists(self.key)

    def missing(self) -> Condition:
        return Exists(self.key, present=False)


class State(Condition):
    """`succeeded("a")`, `failed("a")`, `skipped("a")`: an upstream task's final state."""

    __slots__ = ("state", "task_id")
    WORDS = {"completed": "succeeded", "failed": "failed", "skipped": "skipped"}

    def __init__(self, task_id: Any, state: str) -> None:
        self.task_id = getattr(task_id, "id", task_id)
        if not isinstance(self.task_id, str):
            raise TypeError(f"a task id or a task function, not {task_id!r}")
        self.state = state

    def why_not(self, values: Mapping[str, Any], states: Mapping[str, str]) -> str | None:
        now = states.get(self.task_id, "pending")
        return None if now == self.state else f"{self.task_id!r} {now}"

    def tasks(self) -> set[str]:
        return {self.task_id}

    def __str__(self) -> str:
        name = self.task_id if self.task_id.isidentifier() else _lit(self.task_id)
        return f"{self.WORDS[self.state]}({name})"


class Group(Condition):
    """all_of / any_of / none_of a list of conditions."""

    __slots__ = ("kind", "parts")

    def __init__(self, kind: str, parts: Iterable[Condition]) -> None:
        self.kind = kind
        self.parts = tuple(parts)
        for p in self.parts:
            if not isinstance(p, Condition):
                raise TypeError(f"{kind}() takes conditions, not {p!r}")

    def why_not(self, values: Mapping[str, Any], states: Mapping[str, str]) -> str | None:
        reasons = [p.why_not(values, states) for p in self.parts]
        if self.kind == "all_of":
            return next((r for r in reasons if r is not None), None)
        if self.kind == "any_of":
            if not self.parts or any(r is None for r in reasons):
                return None if self.parts else "any_of() of nothing"
            return " and ".join(r for r in reasons if r is not None)
        held = [p for p, r in zip(self.parts, reasons, strict=True) if r is None]
        return f"{held[0]} holds" if held else None

    def tasks(self) -> set[str]:
        return set().union(*(p.tasks() for p in self.parts))

    def __str__(self) -> str:
        if self.kind == "none_of" and len(self.parts) == 1:
            return f"not {_wrap(self.parts[0])}"
        if self.kind in ("all_of", "any_of") and len(self.parts) >= 2:
            word = " and " if self.kind == "all_of" else " or "
            return word.join(_wrap(p) for p in self.parts)
        return f"{self.kind}({', '.join(str(p) for p in self.parts)})"


def _wrap(c: Condition) -> str:
    text = str(c)
    return f"({text})" if isinstance(c, Group) and (" and " in text or " or " in text) else text


class Always(Condition):
    def why_not(self, values: Mapping[str, Any], states: Mapping[str, str]) -> str | None:
        return None

    def __str__(self) -> str:
        return "always()"


# -- the helpers users write ---------------------------------------------------------------


def ctx(key: str) -> Key:
    """A context value, to compare: `ctx("mode") == "full"`, `ctx("n") > 3`, `ctx("k").exists()`."""
    return Key(key)


def succeeded(task: Any) -> Condition:
    return State(task, "completed")


def failed(task: Any) -> Condition:
    return State(task, "failed")


def skipped(task: Any) -> Condition:
    return State(task, "skipped")


def all_of(*conditions: Condition) -> Condition:
    return Group("all_of", conditions)


def any_of(*conditions: Condition) -> Condition:
    return Group("any_of", conditions)


def none_of(*conditions: Condition) -> Condition:
    return Group("none_of", conditions)


def always() -> Condition:
    return Always()


# -- the text form (.flow files, the app) ----------------------------------------------------

_WORDS = {"true", "false", "null", "and", "or", "not", "in"}
_CONSTANTS = {"true": True, "false": False, "null": None}
_AST_OPS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Gt: ">",
    ast.Lt: "<",
    ast.GtE: ">=",
    ast.LtE: "<=",
}


class ConditionSyntaxError(ValueError):
    """Condition text that cannot be read; the message says what was expected."""


def parse(text: str) -> Condition:
    """Read a condition written as text: `do_audit == true and succeeded(validate)`.

    Context keys are bare names (or `ctx("any key")`); values are JSON-like (`true`, `3`,
    `"full"`, `null`); `"x" in tags`, `exists(k)`, `missing(k)`, `succeeded(t)`, `failed(t)`,
    `skipped(t)`, `all_of(...)`, `any_of(...)`, `none_of(...)`, `always()`, `and`, `or`,
    `not` and parentheses combine them."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConditionSyntaxError(f"not a condition: {exc.msg} in {text!r}") from None
    return _cond(tree.body, text)


def _cond(node: ast.expr, text: str) -> Condition:
    if isinstance(node, ast.BoolOp):
        parts = [_cond(v, text) for v in node.values]
        return all_of(*parts) if isinstance(node.op, ast.And) else any_of(*parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return none_of(_cond(node.operand, text))
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, op, right = node.left, node.ops[0], node.comparators[0]
        if isinstance(op, ast.In | ast.NotIn):
            which = "contains" if isinstance(op, ast.In) else "not contains"
            return Compare(_key(right, text), which, _value(left, text))
        if type(op) in _AST_OPS:
            return Compare(_key(left, text), _AST_OPS[type(op)], _value(right, text))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        name, args = node.func.id, node.args
        if name == "ctx" and len(args) == 1:
            return Key(_key(node, text))
        if name in ("exists", "missing") and len(args) == 1:
            return Exists(_name_or_string(args[0], text), present=name == "exists")
        if name in ("succeeded", "failed", "skipped") and len(args) == 1:
            tid = _name_or_string(args[0], text)
            return {"succeeded": succeeded, "failed": failed, "skipped": skipped}[name](tid)
        if name in ("all_of", "any_of", "none_of"):
            return Group(name, [_cond(a, text) for a in args])
        if name == "always" and not args:
            return always()
    if isinstance(node, ast.Name) and node.id not in _CONSTANTS:
        return Key(node.id)
    raise ConditionSyntaxError(
        f"not a condition: {ast.get_source_segment(text.strip(), node) or text!r}; write "
        "e.g. 'key == value', '\"x\" in key', 'exists(key)', 'succeeded(task)', "
        "'all_of(...)', 'a and b', 'not a'"
    )


def _key(node: ast.expr, text: str) -> str:
    if isinstance(node, ast.Name) and node.id not in _CONSTANTS:
        return node.id
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "ctx"
        and len(node.args) == 1
    ):
        return _name_or_string(node.args[0], text)
    raise ConditionSyntaxError(
        f'expected a context key (a name or ctx("key")), got '
        f"{ast.get_source_segment(text.strip(), node)!r}"
    )


def _name_or_string(node: ast.expr, text: str) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    raise ConditionSyntaxError(
        f"expected a name or a quoted string, got {ast.get_source_segment(text.strip(), node)!r}"
    )


def _value(node: ast.expr, text: str) -> Any:
    """A JSON-like value: numbers, strings, true/false/null, lists and objects of them."""
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.List | ast.Tuple):
        return [_value(e, text) for e in node.elts]
    if isinstance(node, ast.Dict) and None not in node.keys:
        pairs = zip(node.keys, node.values, strict=True)
        return {_value(k, text): _value(v, text) for k, v in pairs if k is not None}
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ConditionSyntaxError(
            f"expected a value (a number, a quoted string, true, false, null or a list), got "
            f"{ast.get_source_segment(text.strip(), node)!r}"
        ) from None
