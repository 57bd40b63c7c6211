"""From parsed flows to Workflows: find each task's body, check every option like `@task`
would, and report every problem at its line and column in the `.flow` file.

Task bodies come from Python: by default the function named like the task in the `.py` file
beside the `.flow` file; `python: function` names another function of that file and
`python: module.path:function` a function of any importable module (the flow's folder is on
the import path). `noop: true` marks a task without a body. The `.flow` file is the whole
definition of the graph and the options: when the body is decorated with `@task`, only its
function is used.
"""

from __future__ import annotations

import difflib
import importlib
import itertools
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, get_args

from pydantic import ValidationError as PydanticValidationError

from ..conditions import parse as parse_condition
from ..errors import LoadError, TaskDefinitionError, ValidationError
from ..fresh_import import LoadedFile, import_fresh, importing_from, source_hash
from ..tasks import RetryBackoff, RunnerName, Task, TaskSpec, TriggerRule, make_task
from ..workflow import Workflow
from .parser import DEFAULT_MAX_CONCURRENCY, EdgeDecl, FlowDecl, Prop, TaskDecl, parse
from .tokens import FlowError, FlowProblem, spell

_CHOICES: dict[str, tuple[str, ...]] = {
    "retry_backoff": get_args(RetryBackoff),
    "trigger_rule": get_args(TriggerRule),
    "runner": get_args(RunnerName),
}


async def noop_body(context: Any) -> None:  # the body of a `noop: true` task
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
        with importing_from(folder):
            # a module of that name imported from elsewhere must not stand in for the folder's
            if (folder / f"{top}.py").exists() or (folder / top / "__init__.py").exists():
                for loaded in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
                    del sys.modules[loaded]
            try:
                module = importlib.import_module(module_path)
            except Exception as exc:
                return None, f"cannot import module {module_path!r}: {type(exc).__name__}: {exc}"
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
    found = getattr(found, "__tui_flow_body__", found)  # a compat body (taskinity's @task)
    if isinstance(found, Workflow) or not callable(found):
        return None, f"{where} is a {type(found).__name__}, not a function"
    return found, None


def _check_value(prop: Prop) -> str | None:
    """Check one option's value like `@task` would; the message, or None when it is fine."""
    name, value = prop.name, prop.value.value
    if name in ("python", "fallback", "noop", "retry_on"):
        return None
    if name == "run_if":
        try:
            parse_condition(value)
        except ValueError as exc:
            return f"run_if: {exc}"
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
        declared = list(self.declared)
        refused: set[str] = set()
        for e in self.decl.edges:
            bad = False
            for name, (line, col) in ((e.src, e.src_at), (e.dst, e.dst_at)):
                if name in self.declared:
                    continue
                if name not in refused and self.declare_by_edge(name, line, col, declared):
                    continue
                bad = True
                if name not in refused:
                    refused.add(name)
                    close = difflib.get_close_matches(name, declared, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    msg = f"edge uses task {name!r}, which is not declared{hint}"
                    self.add(line, col, f"{msg}; declare it with 'task {spell(name)}'")
            if bad:
                continue
            if e.src == e.dst:
                self.add(*e.dst_at, f"task {e.src!r} cannot depend on itself")
                continue
            if e.src not in self.deps[e.dst]:
                self.deps[e.dst].append(e.src)
                self.edge_at[(e.src, e.dst)] = e

    def declare_by_edge(self, name: str, line: int, col: int, declared: list[str]) -> bool:
        """A task named only by edges (Taskinity's way) is a task when the `.py` beside the
        flow has its body and its name is no near-miss of a declared task (a typo)."""
        if difflib.get_close_matches(name, declared, n=1):
            return False
        fn, _ = self.bodies.from_sibling(name)
        if fn is None:
            return False
        self.declared[name] = TaskDecl(name=name, line=line, col=col)
        self.deps[name] = []
        return True

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
            problem = _check_value(prop)
            if problem:
                self.add(prop.value.line, prop.value.col, f"task {t.name!r}: {problem}")
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
            fn = noop_body
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
        retry_ref = opts.pop("retry_on", None)
        if retry_ref is not None:
            retry_on, why = self.retry_on(str(retry_ref))
            if why is not None:
                v = seen["retry_on"].value
                self.add(v.line, v.col, f"task {name!r}: retry_on: {why}")
                ok = False
            else:
                opts["retry_on"] = retry_on
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

    def retry_on(self, text: str) -> tuple[Any, str | None]:
        """`retry_on: ConnectionError` or `"ConnectionError, mod:MyError"` (exception types:
        builtins by name, others as functions are found), or `is_transient` (a function
        error -> bool): what `@task(retry_on=...)` takes, or why not."""
        import builtins

        found = []
        for ref in (p.strip() for p in text.split(",")):
            obj = getattr(builtins, ref, None)
            if not (isinstance(obj, type) and issubclass(obj, BaseException)):
                obj, why = self.bodies.resolve(ref)
                if obj is None:
                    return None, why
            found.append(obj)
        if all(isinstance(o, type) and issubclass(o, BaseException) for o in found):
            return tuple(found), None
        if len(found) == 1:
            return found[0], None
        return None, f"expected exception types or one function, got {text!r}"

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
