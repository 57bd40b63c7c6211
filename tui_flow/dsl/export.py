"""Writing workflows out: as DSL text that loads back the same (`dump_flow`), or as a Mermaid
graph (`to_mermaid`). Names the DSL cannot spell bare are quoted and escaped."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..tasks import Task, TaskSpec, source_of
from ..workflow import Workflow
from .build import noop_body
from .parser import DEFAULT_MAX_CONCURRENCY, FLOW_PROPERTIES, TASK_PROPERTIES
from .tokens import NAME, code_point, is_name, quote, spell


def _number(v: float) -> str:
    if isinstance(v, int):
        return str(v)
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


def _ref(fn: Any, task_id: str | None, wf_file: str | None) -> str | None:
    """How the DSL names a function: None when it is the default body of `task_id`."""
    inner = fn.fn if isinstance(fn, Task) else fn
    name = getattr(inner, "__name__", "?")
    code_file = source_of(inner)[0]
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
        return quote(str(v))
    if kind == "bool":
        return "true" if v else "false"
    if kind in ("int", "number"):
        return _number(v)
    if kind == "word":
        return v if is_name(str(v)) else quote(str(v))
    return v if re.fullmatch(rf"{NAME.pattern}(?::{NAME.pattern})?", v) else quote(v)


def dump_flow(workflow: Workflow | Iterable[Workflow]) -> str:
    """The DSL text of a workflow (or several): loading it gives the same graph and options."""
    if not isinstance(workflow, Workflow):
        return "\n".join(dump_flow(w) for w in workflow)
    wf = workflow
    defaults = TaskSpec(id="x")
    out = [f"flow {spell(wf.name)}:"]
    if wf.description is not None:
        out.append(f"    description: {quote(str(wf.description))}")
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
            v, default = getattr(t.spec, name), getattr(defaults, name)
            if v is not None and (default is None or v != default):
                props.append((name, _value(name, v)))
        if t.fn is noop_body:
            props.append(("noop", "true"))
        else:
            ref = _ref(t.fn, tid, wf.file)
            if ref is not None:
                props.append(("python", _value("python", ref)))
        if t.fallback_fn is not None:
            fb = _ref(t.fallback_fn, None, wf.file)
            props.append(("fallback", _value("fallback", fb or t.fallback_fn.__name__)))
        if props:
            out.append(f"    task {spell(tid)}:")
            out += [f"        {k}: {v}" for k, v in props]
        else:
            out.append(f"    task {spell(tid)}")
    edges = [(tid, wf.dependents(tid)) for tid in declared]
    edges = [(s, ds) for s, ds in edges if ds]
    if edges:
        out.append("")
    rank = {tid: i for i, tid in enumerate(declared)}
    for src, dsts in edges:
        dsts = [spell(d) for d in sorted(dsts, key=rank.__getitem__)]
        right = dsts[0] if len(dsts) == 1 else "[" + ", ".join(dsts) + "]"
        out.append(f"    {spell(src)} -> {right}")
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
    if is_name(s) and s.lower() not in _YAML_WORDS:
        return s
    text = json.dumps(s, ensure_ascii=False)
    return "".join(c if c.isprintable() else code_point(c) for c in text)


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
        elif t.fn is noop_body:
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
