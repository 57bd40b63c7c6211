"""`import cloaca` in a workflow file: Cloacina's Python API (0.12), run by tui-flow.

    import cloaca

    with cloaca.WorkflowBuilder("etl") as builder:
        builder.description("Extract, transform, load")

        @cloaca.task(id="extract")
        def extract(context):
            context.set("rows", [1, 2, 3])
            return context

The loader provides this module as `cloaca` to workflow files only (never in place of a
real install). Cloaca's semantics hold inside such files, not tui-flow's: `retry_attempts`
counts every attempt (default 3, exponential backoff from 1 s with jitter); a task runs once
its dependencies have ended, even if one failed (unless its trigger rules say otherwise);
parallel writes of one key are merged at fan-in; the Context is cloaca's (`get` of a missing
key is None, `insert` of an existing one a ValueError, `update` of a missing one a KeyError).
docs/migrating.md has the table of what maps and what is refused.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .. import conditions as _c
from ..context import Context as _NativeContext
from ..errors import TaskDefinitionError
from ..tasks import Task, make_task
from ..workflow import Workflow

__all__ = [
    "Context",
    "DefaultRunner",
    "DefaultRunnerConfig",
    "PipelineResult",
    "WorkflowBuilder",
    "all_of",
    "always",
    "any_of",
    "context_value",
    "none_of",
    "register_workflow_constructor",
    "task",
    "task_failed",
    "task_skipped",
    "task_success",
    "trigger",
]

_log = logging.getLogger("tui_flow.compat.cloaca")
_STATE = "__tui_flow_cloaca__"  # a workflow file's own registry, kept in its globals
_MISSING = object()


# -- the context -------------------------------------------------------------------------------


class Context:
    """Cloaca's Context, over the task's tui-flow context (or a stand-alone one). Values are
    read through when asked for (as the native context does), never copied all at once."""

    def __init__(self, data: Mapping[str, Any] | None = None, *, _native: Any = None) -> None:
        self._native = _native if _native is not None else _NativeContext(data or {})
        self._removed: set[str] = set()

    def _write(self, key: str, value: Any) -> None:
        self._removed.discard(key)
        self._native.set(key, value)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._removed:
            return default
        return self._native.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._write(key, value)

    def insert(self, key: str, value: Any) -> None:
        if key in self:
            raise ValueError(f"Key already exists: {key}")
        self._write(key, value)

    def update(self, key: str, value: Any) -> None:
        if key not in self:
            raise KeyError(f"Key not found: {key}")
        self._write(key, value)

    def remove(self, key: str) -> Any:
        """Remove a key and give its value (None if absent). What this task wrote is dropped;
        what an upstream task wrote stays in the run's context for the other tasks."""
        value = self.get(key)
        self._native.writes.pop(key, None)
        self._removed.add(key)
        return value

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self._native.to_dict().items() if k not in self._removed}

    def update_from_dict(self, data: Mapping[str, Any]) -> None:
        for key, value in data.items():
            self._write(key, value)

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise KeyError(f"Key not found: {key}")
        return self._native.get(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._write(key, value)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(f"Key not found: {key}")
        self.remove(key)

    def __contains__(self, key: object) -> bool:
        return key not in self._removed and key in self._native

    def keys(self) -> list[str]:
        return [k for k in self._native.keys() if k not in self._removed]

    def __len__(self) -> int:
        return len(self.keys())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __repr__(self) -> str:
        return f"Context({self.to_dict()!r})"


# -- trigger rules (onto tui-flow's run_if conditions) ----------------------------------------

_OPERATORS: dict[str, Callable[[str, Any], _c.Condition]] = {
    "Equals": lambda k, v: _c.Compare(k, "==", v),
    "NotEquals": lambda k, v: _c.Compare(k, "!=", v),
    "GreaterThan": lambda k, v: _c.Compare(k, ">", v),
    "LessThan": lambda k, v: _c.Compare(k, "<", v),
    "Contains": lambda k, v: _c.Compare(k, "contains", v),
    "NotContains": lambda k, v: _c.Compare(k, "not contains", v),
    "Exists": lambda k, v: _c.Exists(k),
    "NotExists": lambda k, v: _c.Exists(k, present=False),
}


def context_value(key: str, operator: str, value: Any = None) -> _c.Condition:
    """A condition on a context value: operator is Equals, NotEquals, GreaterThan, LessThan,
    Contains, NotContains, Exists or NotExists."""
    make = _OPERATORS.get(operator)
    if make is None:
        raise ValueError(
            f"unknown operator {operator!r} for context_value; use one of: {', '.join(_OPERATORS)}"
        )
    return make(key, value)


def task_success(task_name: str) -> _c.Condition:
    return _c.succeeded(task_name)


def task_failed(task_name: str) -> _c.Condition:
    return _c.failed(task_name)


def task_skipped(task_name: str) -> _c.Condition:
    return _c.skipped(task_name)


def all_of(*conditions: Any) -> _c.Condition:
    return _c.all_of(*_flat(conditions))


def any_of(*conditions: Any) -> _c.Condition:
    return _c.any_of(*_flat(conditions))


def none_of(*conditions: Any) -> _c.Condition:
    return _c.none_of(*_flat(conditions))


def always() -> _c.Condition:
    return _c.always()


def _flat(conditions: Iterable[Any]) -> list[_c.Condition]:
    """Cloaca takes the conditions as arguments or as one list."""
    out: list[_c.Condition] = []
    for c in conditions:
        out += _flat(c) if isinstance(c, list | tuple) else [c]
    return out


# -- a workflow file's registry ------------------------------------------------------------------


class _FileState:
    """What one workflow file declared: its builders, tasks and what tui-flow does not run."""

    def __init__(self) -> None:
        self.builders: list[WorkflowBuilder] = []
        self.workflows: list[Workflow] = []
        self.tasks: dict[str, Task] = {}
        self.unscheduled: list[str] = []
        self.open: list[WorkflowBuilder] = []


def _state(depth: int = 2) -> _FileState:
    """The registry of the module that called (kept in its globals, so two files, or two
    loads of one file, never share one)."""
    g = sys._getframe(depth).f_globals
    found = g.get(_STATE)
    if found is None:
        found = g[_STATE] = _FileState()
        g["__tui_flow_collect__"] = _collect
    return found


def _line(depth: int = 2) -> str:
    f = sys._getframe(depth)
    return f"{Path(f.f_code.co_filename).name}:{f.f_lineno}"


def _collect(module_globals: Mapping[str, Any], stem: str) -> dict[str, Workflow]:
    """The loader's hook: the file's workflows (its builders', else one of all its tasks)."""
    st: _FileState = module_globals[_STATE]
    for b in st.builders:
        if b._workflow is None:
            b.build()
    found: dict[str, Workflow] = {}
    for wf in st.workflows:
        if wf.name in found:
            raise TaskDefinitionError(f"two workflows are named {wf.name!r}; names must be unique")
        found[wf.name] = wf
    if not found and st.tasks:
        wf = Workflow(stem, list(st.tasks.values()), fan_in="merge")
        wf.line = None
        found[wf.name] = wf
    for wf in found.values():
        wf.not_scheduled = list(st.unscheduled)
    return found


# -- tasks -------------------------------------------------------------------------------------

_RETRY_CONDITIONS = ("never", "transient", "all")


def task(
    fn: Callable[..., Any] | None = None,
    *,
    id: str | None = None,
    dependencies: Iterable[Any] = (),
    retry_attempts: int = 3,
    retry_backoff: str = "exponential",
    retry_delay_ms: float = 1000,
    retry_max_delay_ms: float = 30000,
    retry_jitter: bool = True,
    retry_condition: str = "all",
    on_success: Callable[..., Any] | None = None,
    on_failure: Callable[..., Any] | None = None,
    trigger_rules: Any = None,
) -> Any:
    """`@cloaca.task(id=..., dependencies=[...], ...)`: a task with cloaca's semantics."""
    st = _state()

    def decorate(f: Callable[..., Any]) -> Task:
        tid = id or f.__name__
        if isinstance(retry_attempts, bool) or not isinstance(retry_attempts, int):
            raise TaskDefinitionError(
                f"task {tid!r}: retry_attempts must be a whole number, not {retry_attempts!r}"
            )
        if retry_condition not in _RETRY_CONDITIONS:
            raise TaskDefinitionError(
                f"task {tid!r}: retry_condition must be one of {', '.join(_RETRY_CONDITIONS)}, "
                f"not {retry_condition!r}"
            )
        rule = _rule(tid, trigger_rules)
        body = _body(tid, f, on_success, on_failure)
        attempts = max(1, retry_attempts) if retry_condition != "never" else 1
        t = make_task(
            body,
            id=tid,
            dependencies=list(dependencies),
            retry_attempts=attempts - 1,
            retry_backoff=retry_backoff,
            retry_delay_ms=retry_delay_ms,
            retry_max_delay_ms=retry_max_delay_ms,
            retry_jitter=retry_jitter,
            trigger_rule="all_done",  # cloaca runs a task once its dependencies have ended
            run_if=rule,
            description=_first_line(f.__doc__),
        )
        t.source_file, t.source_line = _source(f)
        st.tasks[tid] = t
        if st.open:
            st.open[-1].add_task(t)
        return t

    return decorate(fn) if fn is not None else decorate


def _rule(tid: str, rules: Any) -> _c.Condition | None:
    if rules is None or isinstance(rules, _c.Always):
        return None
    if isinstance(rules, list | tuple):
        rules = _c.all_of(*_flat(rules))
    if not isinstance(rules, _c.Condition):
        raise TaskDefinitionError(
            f"task {tid!r}: trigger_rules must be a rule made with cloaca.context_value, "
            f"task_success, all_of, ..., not {rules!r}"
        )
    return rules


def _first_line(doc: str | None) -> str | None:
    return inspect.cleandoc(doc).split("\n", 1)[0] if doc else None


def _source(f: Callable[..., Any]) -> tuple[str | None, int | None]:
    code = getattr(inspect.unwrap(f), "__code__", None)
    return (code.co_filename, code.co_firstlineno) if code else (None, None)


def _callback(cb: Callable[..., Any] | None, *args: Any) -> None:
    if cb is None:
        return
    try:
        cb(*args)
    except Exception as exc:  # cloaca logs a callback's error; the task's outcome stands
        _log.warning(
            "callback %s failed: %s: %s", getattr(cb, "__name__", cb), type(exc).__name__, exc
        )


def _body(
    tid: str,
    f: Callable[..., Any],
    on_success: Callable[..., Any] | None,
    on_failure: Callable[..., Any] | None,
) -> Callable[..., Any]:
    """The tui-flow body around a cloaca one: cloaca's Context in, callbacks, nothing kept
    from the return value (cloaca bodies `return context`)."""
    if inspect.iscoroutinefunction(f):

        @functools.wraps(f)
        async def run_async(context: _NativeContext) -> None:
            ctx = Context(_native=context)
            try:
                await f(ctx)
            except BaseException as exc:
                _callback(on_failure, tid, str(exc), ctx)
                raise
            _callback(on_success, tid, ctx)

        return run_async

    @functools.wraps(f)
    def run(context: _NativeContext) -> None:
        ctx = Context(_native=context)
        try:
            f(ctx)
        except BaseException as exc:
            _callback(on_failure, tid, str(exc), ctx)
            raise
        _callback(on_success, tid, ctx)

    return run


# -- workflows ---------------------------------------------------------------------------------


class WorkflowBuilder:
    """`with cloaca.WorkflowBuilder("name") as builder:` (tasks defined inside belong to it),
    or `builder.add_task(...)` then `builder.build()`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._description: str | None = None
        self._tags: dict[str, str] = {}
        self._tasks: list[Any] = []
        self._workflow: Workflow | None = None
        self._state = _state()
        self._state.builders.append(self)

    def description(self, text: str) -> WorkflowBuilder:
        self._description = text
        return self

    def tag(self, key: str, value: str) -> WorkflowBuilder:
        self._tags[key] = value
        return self

    def add_task(self, task: Any) -> WorkflowBuilder:
        self._tasks.append(task)
        return self

    def build(self) -> Workflow:
        tasks = []
        for t in self._tasks:
            if isinstance(t, str):
                found = self._state.tasks.get(t)
                if found is None:
                    raise TaskDefinitionError(
                        f"workflow {self.name!r}: add_task({t!r}): no task with that id"
                    )
                t = found
            tasks.append(t)
        if self._workflow is None:
            wf = Workflow(self.name, tasks, description=self._description, fan_in="merge")
            wf.tags = dict(self._tags)
            self._workflow = wf
            self._state.workflows.append(wf)
        return self._workflow

    def __enter__(self) -> WorkflowBuilder:
        self._state.open.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._state.open.remove(self)
        if exc[0] is None:
            self.build()


def register_workflow_constructor(name: str, constructor: Callable[[], Any]) -> None:
    """Cloaca's older registration: the constructor builds (and returns) the workflow."""
    made = constructor()
    if isinstance(made, WorkflowBuilder):
        made.build()


# -- what tui-flow loads but does not act on -----------------------------------------------------


def trigger(*args: Any, **kwargs: Any) -> Any:
    """`@cloaca.trigger(...)`: a poll trigger. Loaded, listed by `validate`, never polled."""
    st = _state()
    what = f"trigger {kwargs.get('name') or kwargs.get('workflow') or ''}".rstrip()
    st.unscheduled.append(f"{what} ({_line()})")
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return lambda f: f


# -- running from Python: `python file.py` -------------------------------------------------------


class DefaultRunnerConfig:
    def __init__(self) -> None:
        self.max_concurrent_tasks = 4
        self.task_timeout_seconds: float | None = None


class PipelineResult:
    def __init__(self, status: str, final_context: Context, error_message: str | None) -> None:
        self.status = status
        self.final_context = final_context
        self.error_message = error_message

    def __repr__(self) -> str:
        return f"PipelineResult(status={self.status!r})"


def _print_task_lines(event: Any) -> None:
    """What the bodies print goes to the terminal, as under cloaca (tui-flow captures it for
    the task's log: this puts it back on the real stdout)."""
    lines = getattr(event, "lines", None)
    if getattr(event, "kind", None) == "task_logs" and lines:
        out = sys.__stdout__
        if out is not None:
            out.write("".join(f"{line.text}\n" for line in lines))
            out.flush()


class DefaultRunner:
    """`DefaultRunner(url).execute(name, Context)`: runs a workflow of the calling file with
    tui-flow's engine (the database URL is not used: tui-flow keeps its own store)."""

    def __init__(self, database_url: str = "", config: DefaultRunnerConfig | None = None) -> None:
        self.database_url = database_url
        self.config = config or DefaultRunnerConfig()
        self._globals = sys._getframe(1).f_globals

    @classmethod
    def with_config(cls, database_url: str, config: DefaultRunnerConfig) -> DefaultRunner:
        r = cls(database_url, config)
        r._globals = sys._getframe(1).f_globals
        return r

    @classmethod
    def with_schema(cls, database_url: str, schema: str) -> DefaultRunner:
        """Cloaca's tenants (a PostgreSQL schema each): one tui-flow runner, no isolation."""
        r = cls(database_url)
        r._globals = sys._getframe(1).f_globals
        st = r._globals.get(_STATE)
        if isinstance(st, _FileState):
            st.unscheduled.append(f"tenant schema {schema!r} (one runner, no isolation)")
        return r

    def register_cron_workflow(self, workflow_name: str, cron: str, timezone: str = "UTC") -> str:
        st = self._globals.get(_STATE)
        if isinstance(st, _FileState):
            st.unscheduled.append(f"cron {cron!r} for {workflow_name!r}")
        _log.warning(
            "tui-flow does not schedule cron workflows: %r (%s) not scheduled", workflow_name, cron
        )
        return ""

    def execute(
        self, workflow_name: str, context: Context | Mapping[str, Any] | None = None
    ) -> PipelineResult:
        from ..engine.scheduler import run_sync

        stem = Path(str(self._globals.get("__file__", "workflow"))).stem
        workflows = _collect(self._globals, stem) if _STATE in self._globals else {}
        wf = workflows.get(workflow_name)
        if wf is None:
            known = ", ".join(sorted(workflows)) or "none"
            raise ValueError(f"workflow {workflow_name!r} is not registered; known: {known}")
        initial = context.to_dict() if isinstance(context, Context) else dict(context or {})
        result = run_sync(
            wf,
            initial,
            max_concurrency=self.config.max_concurrent_tasks,
            subscribers=[_print_task_lines],
        )
        failed = [o for o in result.tasks.values() if o.status == "failed"]
        error = None
        if failed:
            error = "; ".join(f"{o.id}: {o.error}" for o in failed)
        elif result.error:
            error = result.error
        status = "Completed" if result.ok else "Failed"
        return PipelineResult(status, Context(result.context), error)

    def shutdown(self) -> None:
        """Nothing to release: each `execute` runs to its end."""


def __getattr__(name: str) -> Any:
    """A cloaca name this module does not provide: say so, and where the map is."""
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(
        f"tui-flow's cloaca does not provide {name!r} (it provides: {', '.join(__all__)}); "
        "docs/migrating.md lists what maps and what is refused"
    )
