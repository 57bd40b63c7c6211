"""The `@task` decorator: turns a plain function into a workflow task.

    @task(id="partition_data", dependencies=["generate_data"], retry_attempts=3)
    def partition_data(context: Context) -> None: ...

Every option is checked when the decorator runs. The decorated object still behaves like the
function (call it directly in a unit test), and carries a validated `TaskSpec` in `.spec`.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import types
from collections.abc import Callable, Iterable
from typing import Any, Literal, get_args, overload

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)

from .conditions import Condition
from .conditions import parse as parse_condition
from .errors import TaskDefinitionError

RetryBackoff = Literal["fixed", "linear", "exponential"]
TriggerRule = Literal["all_success", "all_done", "one_failed", "none_failed"]
RunnerName = Literal["async", "thread", "process"]
#: `@task(retry_on=...)`: exception types (one or a tuple), or a predicate taking the error
RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


class TaskSpec(BaseModel):
    """What a task is, minus its body. Immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    id: str = Field(min_length=1)
    dependencies: tuple[str, ...] = ()
    retry_attempts: int = Field(default=0, ge=0)
    # finite: an infinite delay would hold the run forever; None is "no cap", "no timeout"
    retry_delay_ms: float = Field(default=0, ge=0, allow_inf_nan=False)
    retry_backoff: RetryBackoff = "fixed"
    retry_max_delay_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    retry_jitter: bool = False
    timeout_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    trigger_rule: TriggerRule = "all_success"
    runner: RunnerName | None = None
    description: str | None = None
    map_over: str | None = None
    fallback: str | None = None  # the fallback function's name (the callable lives on Task)
    # which errors are retried, as text: exception types ("ConnectionError, MyError") or a
    # predicate ("is_transient"); the types or the callable live on Task (`retry_on`)
    retry_on: str | None = None
    run_if: Condition | None = None  # see conditions.py: false => the task is skipped

    @field_validator("id")
    @classmethod
    def _id_is_clean(cls, v: str) -> str:
        if v != v.strip() or any(c in v for c in "\n\r\t[]"):
            raise ValueError("must not contain whitespace at the ends, tabs, newlines or '[]'")
        return v

    @field_validator(
        "retry_attempts", "retry_delay_ms", "retry_max_delay_ms", "timeout_s", mode="before"
    )
    @classmethod
    def _number_not_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):  # pydantic would read True as 1
            raise ValueError(f"must be a number, not {v!r}")
        return v

    @field_serializer("run_if")
    def _run_if_as_text(self, v: Condition | None) -> str | None:
        return None if v is None else str(v)  # the text form reads back (conditions.parse)

    @property
    def max_attempts(self) -> int:
        return self.retry_attempts + 1


TASK_OPTIONS: tuple[str, ...] = tuple(TaskSpec.model_fields)
_SPEC_DEFAULTS: dict[str, Any] = {k: f.default for k, f in TaskSpec.model_fields.items()}
_GIVEN = object()  # (never a default: an option without one is always checked)

_ALLOWED: dict[str, str] = {
    "retry_backoff": " | ".join(repr(a) for a in get_args(RetryBackoff)),
    "trigger_rule": " | ".join(repr(a) for a in get_args(TriggerRule)),
    "runner": "None | " + " | ".join(repr(a) for a in get_args(RunnerName)),
    "run_if": "a condition, e.g. ctx('key') == value, succeeded('task'), all_of(...)",
}


class Task:
    """A function marked with `@task`. Calling it calls the function."""

    spec: TaskSpec
    fn: Callable[..., Any]
    fallback_fn: Callable[..., Any] | None
    #: which errors are retried: exception types, or a predicate (None: every error but a
    #: context error, which would fail the same way again)
    retry_on: tuple[type[BaseException], ...] | Callable[[BaseException], bool] | None
    source_file: str | None
    source_line: int | None
    signature_problem: str | None

    def __init__(
        self,
        fn: Callable[..., Any],
        spec: TaskSpec,
        fallback_fn: Callable[..., Any] | None = None,
        retry_on: tuple[type[BaseException], ...] | Callable[[BaseException], bool] | None = None,
    ) -> None:
        self.fn = fn
        self.spec = spec
        self.fallback_fn = fallback_fn
        self.retry_on = retry_on
        self.source_file, self.source_line = source_of(fn)
        self.signature_problem = _signature_problem(fn)
        self._is_async = inspect.iscoroutinefunction(fn)
        functools.update_wrapper(self, fn)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def is_async(self) -> bool:
        return self._is_async

    @property
    def runner(self) -> str:
        """Where the body runs: "async" (on the loop), "thread" or "process"."""
        if self.spec.runner:
            return self.spec.runner
        return "async" if self._is_async else "thread"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:  # keep methods working
        return self if obj is None else functools.partial(self.__call__, obj)

    def __repr__(self) -> str:
        return f"<task {self.id!r} at {self.source_file}:{self.source_line}>"

    def with_spec(self, **changes: Any) -> Task:
        """A copy with some options changed (used by the DSL and by tests)."""
        new = Task(self.fn, self.spec.model_copy(update=changes), self.fallback_fn, self.retry_on)
        new.source_file, new.source_line = self.source_file, self.source_line
        return new


def source_of(fn: Any) -> tuple[str | None, int | None]:
    """Where a function is defined (its file and first line), None for what has no code."""
    try:
        code = inspect.unwrap(fn).__code__
    except (AttributeError, TypeError, ValueError):
        return None, None
    return code.co_filename, code.co_firstlineno


def _signature_problem(fn: Callable[..., Any]) -> str | None:
    """A task body takes exactly one positional argument: the Context."""
    if _plainly_fine(fn):
        return None  # (the common case, from the code object: ~50x cheaper than a signature)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    required = [
        p
        for p in sig.parameters.values()
        if p.default is p.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    positional = [
        p
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if not positional:
        return f"takes no arguments; a task body must take one argument, the Context: {sig}"
    if len(required) > 1:
        names = ", ".join(p.name for p in required)
        return f"requires {len(required)} arguments ({names}); a task body takes only the Context"
    return None


def _plainly_fine(fn: Any) -> bool:
    """A plain function whose parameters take one positional argument, at most one required:
    what `_signature_problem` accepts, read off the code object (a generated workflow of
    100,000 tasks pays one signature per task otherwise)."""
    if type(fn) is not types.FunctionType or "__wrapped__" in fn.__dict__:
        return False
    if "__signature__" in fn.__dict__:
        return False
    code = fn.__code__
    positional = code.co_argcount
    if positional == 0 and not code.co_flags & inspect.CO_VARARGS:
        return False
    required = positional - len(fn.__defaults__ or ())
    required += code.co_kwonlyargcount - len(fn.__kwdefaults__ or {})
    return required <= 1


def _name_of(obj: Any) -> str:
    """An exception type or a function as `retry_on`'s text names it: by its name (a workflow
    file's module name is an import detail, not something to read)."""
    return getattr(obj, "__name__", None) or repr(obj)


def _retry_on(
    task_id: str, value: Any
) -> tuple[tuple[type[BaseException], ...] | Callable[[BaseException], bool], str]:
    """`retry_on` checked: exception types (one, or a tuple/list of them) or a predicate;
    with its text for the spec."""
    if isinstance(value, type) and issubclass(value, BaseException):
        value = (value,)
    if isinstance(value, tuple | list | frozenset | set):
        types_ = tuple(value)
        bad = [v for v in types_ if not (isinstance(v, type) and issubclass(v, BaseException))]
        if bad or not types_:
            what = f"{bad[0]!r} is not an exception type" if bad else "it is empty"
            raise TaskDefinitionError(
                f"task {task_id!r}: option 'retry_on': {what}; give exception types, e.g. "
                f"retry_on=(ConnectionError, TimeoutError), or a function error -> bool"
            )
        return types_, ", ".join(_name_of(t) for t in types_)
    if callable(value) and not isinstance(value, type):
        return value, _name_of(value)
    raise TaskDefinitionError(
        f"task {task_id!r}: option 'retry_on' must be exception types (e.g. "
        f"(ConnectionError, TimeoutError)) or a function taking the error and returning "
        f"True to retry, not {value!r}"
    )


def _dependency_id(dep: Any) -> str:
    if isinstance(dep, Task):
        return dep.id
    if isinstance(dep, str):
        return dep
    if callable(dep) and hasattr(dep, "__name__"):
        # a plain function that was not decorated: refer to it by name, validation will tell
        return dep.__name__
    raise TypeError(f"a dependency must be a task id or a task function, not {type(dep).__name__}")


def _describe_validation_error(task_id: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        option = ".".join(str(x) for x in e["loc"]) or "?"
        msg = e["msg"].removeprefix("Value error, ")
        if option in _ALLOWED:
            msg = f"{msg}; allowed: {_ALLOWED[option]}"
        lines.append(f"task {task_id!r}: option {option!r}: {msg} (got {e.get('input')!r})")
    return "\n".join(lines)


def make_task(fn: Callable[..., Any], **options: Any) -> Task:
    """Build a Task from a function and `@task` options, validating every option."""
    if isinstance(fn, Task):
        raise TaskDefinitionError(f"task {fn.id!r} is decorated with @task twice")
    if not callable(fn):
        raise TaskDefinitionError(f"@task must decorate a function, not {type(fn).__name__}")
    task_id = options.get("id") or getattr(fn, "__name__", None) or "?"
    unknown = [k for k in options if k not in _SPEC_DEFAULTS]
    if unknown:
        parts = []
        for name in unknown:
            close = difflib.get_close_matches(name, TASK_OPTIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            parts.append(f"task {task_id!r}: unknown option {name!r}{hint}")
        allowed = ", ".join(TASK_OPTIONS)
        raise TaskDefinitionError("\n".join(parts) + f"\nallowed options: {allowed}")

    opts = dict(options)
    opts["id"] = task_id if options.get("id") is None else options["id"]
    deps = opts.get("dependencies") or ()
    if isinstance(deps, str | Task) or not isinstance(deps, Iterable):
        deps = (deps,)
    try:
        opts["dependencies"] = tuple(_dependency_id(d) for d in deps)
    except TypeError as exc:
        raise TaskDefinitionError(f"task {task_id!r}: option 'dependencies': {exc}") from None
    fallback = opts.pop("fallback", None)
    if fallback is not None:
        if not callable(fallback):
            raise TaskDefinitionError(
                f"task {task_id!r}: option 'fallback' must be a function taking the Context"
            )
        fallback = fallback.fn if isinstance(fallback, Task) else fallback
        opts["fallback"] = getattr(fallback, "__name__", "fallback")
    retry_on = opts.pop("retry_on", None)
    if retry_on is not None and not isinstance(retry_on, str):
        retry_on, opts["retry_on"] = _retry_on(task_id, retry_on)
    elif isinstance(retry_on, str):
        raise TaskDefinitionError(
            f"task {task_id!r}: option 'retry_on' takes the exception types themselves "
            f"(e.g. retry_on=(ConnectionError,)), not their names ({retry_on!r})"
        )
    if isinstance(opts.get("run_if"), str):
        try:
            opts["run_if"] = parse_condition(opts["run_if"])
        except ValueError as exc:
            raise TaskDefinitionError(f"task {task_id!r}: option 'run_if': {exc}") from None
    doc = getattr(fn, "__doc__", None)
    if not opts.get("description") and doc:
        opts["description"] = inspect.cleandoc(doc).split("\n", 1)[0]
    # options left at their default need no checking (the decorator passes every one): a
    # generated workflow of 100,000 tasks validates two fields a task, not thirteen
    given = {k: v for k, v in opts.items() if v is not _SPEC_DEFAULTS.get(k, _GIVEN)}
    try:
        spec = TaskSpec(**given)
    except ValidationError as err:
        raise TaskDefinitionError(_describe_validation_error(task_id, err)) from None
    return Task(fn, spec, fallback, retry_on)


@overload
def task(fn: Callable[..., Any], /) -> Task: ...


@overload
def task(
    fn: None = None,
    /,
    *,
    id: str | None = None,
    dependencies: Iterable[str | Task | Callable[..., Any]] = (),
    retry_attempts: int = 0,
    retry_delay_ms: float = 0,
    retry_backoff: RetryBackoff = "fixed",
    retry_max_delay_ms: float | None = None,
    retry_jitter: bool = False,
    timeout_s: float | None = None,
    trigger_rule: TriggerRule = "all_success",
    runner: RunnerName | None = None,
    description: str | None = None,
    map_over: str | None = None,
    fallback: Callable[..., Any] | None = None,
    retry_on: RetryOn | None = None,
    run_if: Condition | str | None = None,
) -> Callable[[Callable[..., Any]], Task]: ...


def task(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    id: str | None = None,
    dependencies: Iterable[str | Task | Callable[..., Any]] = (),
    retry_attempts: int = 0,
    retry_delay_ms: float = 0,
    retry_backoff: RetryBackoff = "fixed",
    retry_max_delay_ms: float | None = None,
    retry_jitter: bool = False,
    timeout_s: float | None = None,
    trigger_rule: TriggerRule = "all_success",
    runner: RunnerName | None = None,
    description: str | None = None,
    map_over: str | None = None,
    fallback: Callable[..., Any] | None = None,
    retry_on: RetryOn | None = None,
    run_if: Condition | str | None = None,
    **unknown: Any,
) -> Task | Callable[[Callable[..., Any]], Task]:
    """Mark a function as a workflow task.

    Use as `@task` or `@task(...)`. `retry_attempts` counts retries after the first attempt.
    `runner=None` runs async bodies on the event loop and sync bodies in a thread;
    `"process"` runs the body in a worker process (for CPU-bound Python).
    `retry_on`: retry only these errors: exception types (`(ConnectionError, TimeoutError)`;
    a timeout counts as `TimeoutError`) or a function `error -> bool`; any other error fails
    the task at once, its reason saying why.
    `run_if` (see `tui_flow.conditions`): when it does not hold, the task is skipped.
    A body's non-None return value is kept in the context under the task's id.
    """
    options: dict[str, Any] = {
        "id": id,
        "dependencies": dependencies,
        "retry_attempts": retry_attempts,
        "retry_delay_ms": retry_delay_ms,
        "retry_backoff": retry_backoff,
        "retry_max_delay_ms": retry_max_delay_ms,
        "retry_jitter": retry_jitter,
        "timeout_s": timeout_s,
        "trigger_rule": trigger_rule,
        "runner": runner,
        "description": description,
        "map_over": map_over,
        "fallback": fallback,
        "retry_on": retry_on,
        "run_if": run_if,
        **unknown,
    }

    def decorate(f: Callable[..., Any]) -> Task:
        return make_task(f, **options)

    if fn is not None:
        return decorate(fn)
    return decorate
