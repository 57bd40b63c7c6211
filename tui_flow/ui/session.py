"""`RunSession`: one run as the app sees it, built only from engine events.

It is an event subscriber (a plain, non-blocking callable): it folds each event into a
`RunView` and remembers what changed since the app last drew (task ids, new log lines, new
retries, whether the graph changed). The app takes those changes a few times a second, so a
flood of events costs a set insertion or a deque append each, never a redraw.

Log lines are kept in bounded deques (all tasks merged, and per task): the screen shows a
bounded number of lines; the run store keeps them all.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..engine.events import (
    ContextWritten,
    Event,
    RetryScheduled,
    RunFinished,
    RunStarted,
    TaskInfo,
    TaskLogs,
    TasksAdded,
    TaskStateChanged,
    task_info,
)
from ..engine.state import RunView, TaskView
from ..tracebacks import user_frames
from ..workflow import Workflow

MAX_MERGED_LINES = 10_000
MAX_TASK_LINES = 5_000

# one log line as the app keeps it: (task id, level, text, source, at): `source` is a
# `logging` record's logger and extra fields as shown (`log_source`; "" for other lines), `at`
# when it was written (epoch seconds; the log view shows it with `T`). The log view also takes
# the first three or four items alone.
Entry = tuple[Any, ...]


def log_source(logger: str | None, extra: Mapping[str, Any] | None) -> str:
    """A `logging` record's logger and extra fields as the log view shows them."""
    parts = [logger] if logger else []
    parts += [f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in (extra or {}).items()]
    return " ".join(parts)


def log_entry(
    task_id: str,
    level: str,
    text: str,
    logger: str | None,
    extra: Mapping[str, Any] | None,
    at: float | None = None,
) -> Entry:
    """A log line as the app keeps it (a LogLine or a stored LogRow)."""
    if logger is None and not extra:
        return (task_id, level, text, "", at)
    return (task_id, level, text, log_source(logger, extra), at)


def error_entries(
    task_id: str,
    attempt: int,
    max_attempts: int,
    error: str | None,
    tb: str | None,
    at: float | None = None,
) -> list[Entry]:
    """An attempt's error as log lines: the error, then where in the user's code."""
    which = f"attempt {attempt}/{max_attempts} " if attempt else ""
    out: list[Entry] = [(task_id, "error", f"✖ {which}failed: {error or 'failed'}", "", at)]
    for f in user_frames(tb):
        where = f"    at {f.where()}" + (f": {f.code}" if f.code else "")
        out.append((task_id, "error", where, "", at))
    return out


def with_attempt_errors(rows: Iterable[Any], view: RunView) -> list[Entry]:
    """Stored log rows (`LogRow`s) with each failed attempt's error after its lines, as a live
    run's log has them (for a past run opened in the app)."""
    out: list[Entry] = []
    shown: set[tuple[str, int]] = set()

    def errors_of(key: tuple[str, int] | None) -> None:
        if key is None or key in shown:
            return
        shown.add(key)
        t = view.tasks.get(key[0])
        if t is None:
            return
        for a in t.attempts:
            if a.number == key[1] and a.error and a.status not in ("completed", "running"):
                out.extend(
                    error_entries(
                        t.id, a.number, t.max_attempts, a.error, a.traceback, a.finished_at
                    )
                )

    last: tuple[str, int] | None = None
    for r in rows:
        key = (r.task_id, r.attempt)
        if key != last:
            errors_of(last)
            last = key
        out.append(log_entry(r.task_id, r.level, r.text, r.logger, r.extra, r.at))
    errors_of(last)
    for t in view.tasks.values():  # attempts that failed without writing a line
        for a in t.attempts:
            if a.error and (t.id, a.number) not in shown:
                errors_of((t.id, a.number))
    return out


@dataclass
class Changes:
    """What happened since the last `RunSession.take()`."""

    tasks: set[str] = field(default_factory=set)
    lines: list[Entry] = field(default_factory=list)
    graph: bool = False
    retries: bool = False
    finished: bool = False
    context: bool = False


def task_infos(workflow: Workflow) -> list[TaskInfo]:
    """The tasks of a workflow as the engine describes them (for the idle screen)."""
    return [task_info(workflow.tasks[tid]) for tid in workflow.order]


def idle_view(workflow: Workflow, max_concurrency: int | None = None) -> RunView:
    """A RunView of a workflow that has not run: every task pending, status "idle"."""
    infos = task_infos(workflow)
    return RunView(
        workflow=workflow.name,
        file=workflow.file,
        status="idle",
        max_concurrency=int(max_concurrency or workflow.max_concurrency),
        tasks={i.id: TaskView(i) for i in infos},
        order=[i.id for i in infos],
    )


class RunSession:
    """Subscriber that folds events into a RunView and collects changes for the screen."""

    def __init__(
        self,
        view: RunView | None = None,
        *,
        max_lines: int = MAX_MERGED_LINES,
        max_task_lines: int = MAX_TASK_LINES,
        live: bool = True,
    ) -> None:
        self.view = view if view is not None else RunView()
        self.live = live
        self.recorded = False  # the run is in the run store (re-runs are planned from it)
        self.max_lines = max_lines
        self.max_task_lines = max_task_lines
        self.lines: deque[Entry] = deque(maxlen=max_lines)
        self.task_lines: dict[str, deque[Entry]] = {}
        self.total_lines = 0
        self.writes: dict[str, dict[str, Any]] = {}
        self.reused: dict[str, str] = {}
        self.finished = view is not None and view.status not in ("running", "idle", "pending")
        self._changes = Changes()
        self.errors: list[str] = []

    # -- subscriber ----------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        changes = self._changes
        if isinstance(event, TaskLogs):  # the flood: the short way
            self.add_lines(
                [
                    (ln.task_id, ln.level, ln.text, "", ln.at)
                    if ln.logger is None and ln.extra is None
                    else log_entry(ln.task_id, ln.level, ln.text, ln.logger, ln.extra, ln.at)
                    for ln in event.lines
                ]
            )
            self.view.apply(event)
            return
        changed = self.view.apply(event)
        if changed:
            changes.tasks.update(changed)
        match event:
            case TaskStateChanged(error=str()) if event.state in ("retrying", "failed"):
                # each attempt's error inline in the task's log, where its lines end
                self.add_lines(
                    error_entries(
                        event.task_id,
                        event.attempt,
                        event.max_attempts,
                        event.error,
                        event.traceback,
                        event.at,
                    )
                )
            case RetryScheduled():
                changes.retries = True
            case ContextWritten():
                self.writes[event.task_id] = dict(event.values)
                changes.context = True
            case RunStarted():
                changes.graph = True
                self.reused = dict(event.reused)
            case TasksAdded():
                changes.graph = True
            case RunFinished():
                self.finished = True
                changes.finished = True

    def add_lines(self, entries: Iterable[Entry]) -> None:
        """Keep log lines (bounded) and queue them for the screen."""
        new = entries if isinstance(entries, list) else list(entries)
        if not new:
            return
        self.total_lines += len(new)
        self.lines.extend(new)
        per_task = self.task_lines
        first = new[0][0]
        if all(e[0] == first for e in new):  # the usual batch: one task's lines
            q = per_task.get(first)
            if q is None:
                q = per_task[first] = deque(maxlen=self.max_task_lines)
            q.extend(new)
        else:
            for entry in new:
                q = per_task.get(entry[0])
                if q is None:
                    q = per_task[entry[0]] = deque(maxlen=self.max_task_lines)
                q.append(entry)
        pending = self._changes.lines
        pending.extend(new)
        if len(pending) > 2 * self.max_lines:  # the screen is behind: keep only what it can show
            del pending[: len(pending) - self.max_lines]

    def take(self) -> Changes:
        """The changes since the last call (and forget them)."""
        changes, self._changes = self._changes, Changes()
        return changes

    # -- queries -------------------------------------------------------------------------------

    def lines_of(self, task_id: str) -> list[Entry]:
        """The kept lines of one task (its map_over instances included)."""
        t = self.view.tasks.get(task_id)
        if t is not None and t.instances:
            ids = {task_id, *t.instances}
            return [e for e in self.lines if e[0] in ids]
        return list(self.task_lines.get(task_id, ()))

    def task_line_count(self, task_id: str) -> int:
        t = self.view.tasks.get(task_id)
        if t is None:
            return 0
        return t.log_lines + sum(
            self.view.tasks[i].log_lines for i in t.instances if i in self.view.tasks
        )
