"""The rows of the run store: what its queries return, and events turned into rows and back.

- `RunRow`, `TaskRow`, `LogRow`: a stored run, a task of one (derived from its events), a log
  line. Frozen dataclasses whose fields are, in order, what their queries select.
- An `events` row (`EventRow`, `EVENT_ROW_COLUMNS`): a `task_state` event, most of what a run
  records, is columns (task, state, attempt) plus the JSON of its other fields that are not at
  their default (`state_extras`); any other event is its JSON without its defaults
  (`event_row`). The recorder's `record` builds the task_state row inline (its hot path);
  `event_from_row` reads either back into its model.
- Each value is stored once (schema version 4): a `context_written` row keeps only the keys
  (the values are in `context_writes`), a `run_finished` row no context (it is
  `runs.final_context`, or, when that is NULL, `final_context()` of the initial context and
  the writes). `Stored` hands those back to `event_from_row`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine.events import EVENT_TYPES, TaskStateChanged

if TYPE_CHECKING:
    from ..engine.state import RunView


@dataclass(frozen=True)
class RunRow:
    """One stored run, as `history` lists it."""

    run_id: str
    workflow: str
    file: str | None
    source_hash: str | None
    status: str
    started_at: float
    resumed_at: float | None
    finished_at: float | None
    last_event_at: float | None
    max_concurrency: int
    executor: str
    wall_s: float | None
    speedup: float | None
    n_tasks: int
    failed: int
    error: str | None
    resumed_from: str | None
    segments: int
    owner_pid: int | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TaskRow:
    """A task of a stored run, as its events left it (`RunStore.task_rows`)."""

    task_id: str
    parent: str | None
    status: str
    attempts: int
    started_at: float | None
    finished_at: float | None
    error: str | None
    reason: str | None
    via_fallback: bool
    segment: int
    reused: bool


@dataclass(frozen=True)
class LogRow:
    """A stored log line: a `LogLine` plus the segment (0 = first execution) it came from."""

    task_id: str
    attempt: int
    at: float
    level: str
    text: str
    segment: int = 0
    logger: str | None = None  # the `logging` logger that wrote it (None: print, root logger)
    extra: dict[str, Any] | None = None  # its record's extra= fields

    @classmethod
    def from_row(cls, row: Any) -> LogRow:
        """A row of `LOG_ROW_COLUMNS` (extra as its stored JSON text)."""
        task_id, attempt, at, level, text, segment, logger, extra = row
        parsed = json.loads(extra) if extra else None
        return cls(task_id, attempt, at, level, text, segment, logger, parsed)


def dumps(value: Any) -> str:
    """A value as the store's JSON columns hold it (compact; what JSON cannot hold as `str`)."""
    return json.dumps(value, separators=(",", ":"), default=str)


def failed_count(view: RunView) -> int:
    """How many top-level tasks of a run's view failed (`runs.failed`)."""
    return sum(1 for t in view.tasks.values() if t.state == "failed" and t.info.parent is None)


# -- events as rows ---------------------------------------------------------------------------

#: an `events` row as written: (run_id, segment, kind, at, task_id, state, attempt, data);
#: segment is None until the flush learns it (the first events of a run resumed in place)
EventRow = tuple[str, "int | None", str, float, "str | None", "str | None", "int | None", str]
EVENT_ROW_COLUMNS = "run_id, segment, kind, at, task_id, state, attempt, data"
#: what a replay selects of an `events` row (`event_from_row(run_id, *row)`)
EVENT_COLUMNS = "kind, at, task_id, state, attempt, data"

_STATE_EXTRAS = ("max_attempts", "error", "traceback", "reason", "via_fallback", "timed_out")
_STATE_DEFAULTS = {k: TaskStateChanged.model_fields[k].default for k in _STATE_EXTRAS}
_MAX_ONLY: dict[int, str] = {}
# the kinds of event that are about one task (their `task_id` goes in its column)
_TASK_KINDS = frozenset(kind for kind, cls in EVENT_TYPES.items() if "task_id" in cls.model_fields)


def state_extras(d: dict[str, Any]) -> str:
    """The `data` of a task_state row (`d`: the event's fields): its fields beyond the row's
    columns that are not at their default, as JSON; '{}' when none."""
    if d["error"] is None and d["traceback"] is None and d["reason"] is None:
        if not d["via_fallback"] and not d["timed_out"]:
            n = d["max_attempts"]
            if n == 1:
                return "{}"
            out = _MAX_ONLY.get(n)
            if out is None:
                out = _MAX_ONLY[n] = dumps({"max_attempts": int(n)})
            return out
    return dumps({k: d[k] for k in _STATE_EXTRAS if d[k] != _STATE_DEFAULTS[k]})


def event_row(event: Any, segment: int | None) -> EventRow:
    """The `events` row of an event other than task_state (whose row the recorder builds
    itself): the event's JSON without the fields at their default (`kind` among them), and
    without the values stored elsewhere: a context_written row keeps the keys written (their
    values are `context_writes` rows), a run_finished row no context (`runs.final_context`)."""
    kind = event.kind
    task_id = event.task_id if kind in _TASK_KINDS else None
    if kind == "context_written":
        data = dumps({"task_id": event.task_id, "keys": list(event.values)})
    elif kind == "run_finished":
        data = event.model_dump_json(exclude_defaults=True, exclude={"context"})
    else:
        data = event.model_dump_json(exclude_defaults=True)
    return (event.run_id, segment, kind, event.at, task_id, None, None, data)


def final_context(
    initial: Mapping[str, Any],
    order: Iterable[str],
    completed: Callable[[str], bool],
    writes: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """A run's final context as the engine makes it (`Ledger.final`): the initial context
    plus the writes of each completed task, in run order. The writer stores
    `runs.final_context` only when the run's own differs from this (never, unless a
    subscriber changed it); the reader derives it otherwise."""
    merged = dict(initial)
    for tid in order:
        w = writes.get(tid)
        if w and completed(tid):
            merged.update(w)
    return merged


@dataclass
class Stored:
    """What the `events` rows of a run leave out, to put back when they are read: each
    task's written values (`context_writes`, as JSON text) and the run's final context
    (None: derive it from the replayed view, see `final_context`)."""

    writes: dict[str, dict[str, str]] = field(default_factory=dict)
    final: dict[str, Any] | None = None

    def values(self, task_id: str, keys: Iterable[str]) -> dict[str, Any]:
        mine = self.writes.get(task_id, {})
        return {k: json.loads(mine[k]) if k in mine else None for k in keys}

    def context(self, view: RunView | None) -> dict[str, Any]:
        if self.final is not None or view is None:
            return dict(self.final or {})
        tasks = view.tasks
        return final_context(
            view.context,
            view.order,
            lambda tid: tid in tasks and tasks[tid].state == "completed",
            {tid: self.values(tid, w) for tid, w in self.writes.items()},
        )


def parse_event(kind: str, data: str) -> Any:
    """A stored event (but task_state) back as its model (`data` omits fields at their
    default)."""
    return EVENT_TYPES[kind].model_validate_json(data)


def event_from_row(
    run_id: str,
    kind: str,
    at: float,
    task_id: str | None,
    state: str | None,
    attempt: int | None,
    data: str,
    stored: Stored | None = None,
    view: RunView | None = None,
) -> Any:
    """An `events` row (the columns of `EVENT_COLUMNS`) back as its event model; `stored`
    puts back the values kept elsewhere (`event_row`), `view` (the run replayed so far) is
    what a final context that was not stored is derived from."""
    if kind == "task_state":
        return TaskStateChanged.model_validate(
            {
                "run_id": run_id,
                "at": at,
                "task_id": task_id,
                "state": state,
                "attempt": attempt or 0,
                **json.loads(data),
            }
        )
    if kind == "context_written":
        d = json.loads(data)
        if "keys" in d:  # schema version 4 on: the values are in context_writes
            keys = d.pop("keys")
            d["values"] = (stored or Stored()).values(d["task_id"], keys)
        return EVENT_TYPES[kind].model_validate({"run_id": run_id, "at": at, **d})
    if kind == "run_finished":
        d = json.loads(data)
        if "context" not in d:
            d["context"] = (stored or Stored()).context(view)
        return EVENT_TYPES[kind].model_validate({"run_id": run_id, "at": at, **d})
    return parse_event(kind, data)
