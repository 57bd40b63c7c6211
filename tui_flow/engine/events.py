"""The typed event stream. The scheduler emits only these; every view subscribes.

Times are wall-clock seconds since the epoch (`time.time()` or the run's injected clock).
Every event carries `run_id`; `kind` tells them apart once serialised (`Event` is the union).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ..tasks import Task

TaskState = Literal["pending", "running", "retrying", "completed", "failed", "skipped", "cancelled"]
FINAL_STATES: frozenset[str] = frozenset({"completed", "failed", "skipped", "cancelled"})
#: the reason of a `pending` task_state event: the task holds a slot but waits for a worker
#: process (one starting up, or the pool is busy); its `running` event ends the wait
WAITS_FOR_WORKER = "waits for a worker process"
#: the reason of a `running` task_state event after `x` on a task whose body runs in a thread:
#: a thread cannot be stopped, so the task stays running until its body returns, and is then
#: cancelled (what the body did is dropped)
CANCEL_WAITS_FOR_THREAD = "cancel asked: a thread cannot be stopped, it runs until its body returns"
RunStatus = Literal["running", "completed", "failed", "cancelled", "interrupted"]


M = TypeVar("M", bound=BaseModel)


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)
    run_id: str
    at: float


class TaskInfo(BaseModel):
    """A task as the run saw it when it started (enough for a view to draw the graph)."""

    model_config = ConfigDict(frozen=True)
    id: str
    dependencies: tuple[str, ...] = ()
    description: str | None = None
    retry_attempts: int = 0
    retry_delay_ms: float = 0
    retry_backoff: str = "fixed"
    trigger_rule: str = "all_success"
    runner: str = "async"
    timeout_s: float | None = None
    map_over: str | None = None
    has_fallback: bool = False
    run_if: str | None = None  # the task's condition, as text (conditions.py)
    parent: str | None = None  # for `task[3]` instances of a map_over task: the task's id


class RunStarted(_Event):
    kind: Literal["run_started"] = "run_started"
    workflow: str
    file: str | None = None
    source_hash: str | None = None
    max_concurrency: int
    tasks: list[TaskInfo]
    initial_context: dict[str, Any] = Field(default_factory=dict)
    resumed_from: str | None = None  # a run id when this run resumes / re-runs another
    reused: dict[str, str] = Field(default_factory=dict)  # task id -> state taken from before
    executor: str = "local"
    options: dict[str, Any] = Field(default_factory=dict)


class TaskStateChanged(_Event):
    kind: Literal["task_state"] = "task_state"
    task_id: str
    state: TaskState
    attempt: int = 0  # 1-based attempt number; 0 before the first attempt
    max_attempts: int = 1
    error: str | None = None  # one-line summary ("ValueError: bad row 12")
    traceback: str | None = None
    reason: str | None = None  # why skipped / cancelled, "timed out", "via fallback", ...
    via_fallback: bool = False
    timed_out: bool = False  # the attempt this event ends ran past the task's timeout_s

    @classmethod
    def trusted(
        cls,
        run_id: str,
        at: float,
        task_id: str,
        state: str,
        attempt: int = 0,
        max_attempts: int = 1,
        error: str | None = None,
        traceback: str | None = None,
        reason: str | None = None,
        via_fallback: bool = False,
        timed_out: bool = False,
    ) -> TaskStateChanged:
        """The event from values the caller guarantees are of the right types (the
        scheduler's hot path: two of these per task). The same model as `TaskStateChanged(...)`
        builds (equal, same JSON), without validating: less than half the cost. `model_construct`
        is no help here: it is slower than validating."""
        m = _new(cls)
        _setattr(
            m,
            "__dict__",
            {
                "run_id": run_id,
                "at": float(at),
                "kind": "task_state",
                "task_id": task_id,
                "state": state,
                "attempt": attempt,
                "max_attempts": max_attempts,
                "error": error,
                "traceback": traceback,
                "reason": reason,
                "via_fallback": via_fallback,
                "timed_out": timed_out,
            },
        )
        _setattr(m, "__pydantic_fields_set__", set(_TRUSTED_FIELDS))  # (model_copy updates it)
        _setattr(m, "__pydantic_extra__", None)
        _setattr(m, "__pydantic_private__", None)
        return m


_new = object.__new__
_setattr = object.__setattr__
_TRUSTED_FIELDS = frozenset(TaskStateChanged.model_fields) - {"kind"}


class RetryScheduled(_Event):
    kind: Literal["retry_scheduled"] = "retry_scheduled"
    task_id: str
    attempt: int  # the attempt that failed
    next_attempt: int
    max_attempts: int
    delay_s: float
    error: str


class LogLine(BaseModel):
    """One line a task wrote. `logger`: the name of the `logging` logger that wrote it (None
    for print, context.log and the root logger); `extra`: the record's `extra=` fields (JSON
    values; on the first line of a record written over several lines)."""

    model_config = ConfigDict(frozen=True)
    task_id: str
    attempt: int
    at: float
    level: str
    text: str
    logger: str | None = None
    extra: dict[str, Any] | None = None


class TaskLogs(_Event):
    """A batch of log lines (several tasks may be mixed, in the order they were written)."""

    kind: Literal["task_logs"] = "task_logs"
    lines: list[LogLine]


class TaskProgress(_Event):
    kind: Literal["task_progress"] = "task_progress"
    task_id: str
    done: float
    total: float | None = None
    message: str | None = None


class ContextWritten(_Event):
    """The keys a task wrote, emitted when it completes, just before its state change."""

    kind: Literal["context_written"] = "context_written"
    task_id: str
    values: dict[str, Any]


class TasksAdded(_Event):
    """Tasks created while running (the instances of a map_over task)."""

    kind: Literal["tasks_added"] = "tasks_added"
    parent: str
    tasks: list[TaskInfo]


class RunFinished(_Event):
    """The run ended. "interrupted": the process running it died; the store says so when it
    reads such a run (that event is never recorded)."""

    kind: Literal["run_finished"] = "run_finished"
    status: RunStatus
    report: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None  # what ended the run, when the engine itself failed
    traceback: str | None = None


Event = Annotated[
    RunStarted
    | TaskStateChanged
    | RetryScheduled
    | TaskLogs
    | TaskProgress
    | ContextWritten
    | TasksAdded
    | RunFinished,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)
#: each event model by its `kind`, from the `Event` union above (the one list of events): what
#: reads back an event serialised without its `kind`, as the store does (defaults left out)
EVENT_TYPES: dict[str, type[BaseModel]] = {
    cls.model_fields["kind"].default: cls for cls in get_args(get_args(Event)[0])
}


def event_from_json(data: str | bytes | dict[str, Any]) -> Any:
    """Parse one serialised event back into its model."""
    if isinstance(data, dict):
        return EVENT_ADAPTER.validate_python(data)
    return EVENT_ADAPTER.validate_json(data)


def task_info(t: Task) -> TaskInfo:
    """A task as events describe it (cached on the task while its spec is unchanged)."""
    cached = t.__dict__.get("_tui_flow_info")
    if cached is not None and cached[0] is t.spec:
        return cached[1]
    info = _build_task_info(t)
    t.__dict__["_tui_flow_info"] = (t.spec, info)
    return info


def _build_task_info(t: Task) -> TaskInfo:
    s = t.spec
    return unchecked(
        TaskInfo,
        id=s.id,
        dependencies=s.dependencies,
        description=s.description,
        retry_attempts=s.retry_attempts,
        retry_delay_ms=s.retry_delay_ms,
        retry_backoff=s.retry_backoff,
        trigger_rule=s.trigger_rule,
        runner=t.runner,
        timeout_s=s.timeout_s,
        map_over=s.map_over,
        has_fallback=t.fallback_fn is not None,
        run_if=None if s.run_if is None else str(s.run_if),
    )


def _float_fields(cls: type[BaseModel]) -> frozenset[str]:
    return frozenset(
        name
        for name, f in cls.model_fields.items()
        if f.annotation is float or f.annotation == (float | None)
    )


_UNCHECKED: dict[type[BaseModel], tuple[dict[str, Any], frozenset[str]]] = {}


def unchecked(cls: type[M], **values: Any) -> M:
    """The model validation would build from `values` (equal, the same JSON), without
    validating: for values the engine made itself, of the right types already (a run of
    100,000 tasks describes every task at its start). Missing fields take their defaults;
    whole numbers given for float fields become floats, as validation makes them."""
    known = _UNCHECKED.get(cls)
    if known is None:
        defaults = {
            k: f.get_default(call_default_factory=True) for k, f in cls.model_fields.items()
        }
        known = _UNCHECKED[cls] = (defaults, _float_fields(cls))
    defaults, floats = known
    data = {**defaults, **values}
    for k in floats:
        if type(data[k]) is int:
            data[k] = float(data[k])
    m = _new(cls)
    _setattr(m, "__dict__", data)
    _setattr(m, "__pydantic_fields_set__", set(values))  # (a set: model_copy updates it)
    _setattr(m, "__pydantic_extra__", None)
    _setattr(m, "__pydantic_private__", None)
    return m
