"""`RunView`: the state of a run rebuilt from its events.

The engine's result, the app and the store's `show` all read a run through this one reducer,
so a live run and a past one look the same. `apply()` returns the ids of the tasks it changed,
so a view can redraw only those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .events import (
    FINAL_STATES,
    WAITS_FOR_WORKER,
    ContextWritten,
    Event,
    RetryScheduled,
    RunFinished,
    RunStarted,
    TaskInfo,
    TaskLogs,
    TaskProgress,
    TasksAdded,
    TaskStateChanged,
)
from .report import Report, compute_report


@dataclass
class AttemptView:
    number: int
    started_at: float
    finished_at: float | None = None
    status: str = "running"  # running | completed | failed | timed_out | cancelled
    error: str | None = None
    traceback: str | None = None


@dataclass
class TaskView:
    info: TaskInfo
    state: str = "pending"
    attempts: list[AttemptView] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    reason: str | None = None
    via_fallback: bool = False
    progress: tuple[float, float | None, str | None] | None = None
    next_retry_at: float | None = None
    retry_delay_s: float | None = None
    written_keys: list[str] = field(default_factory=list)
    started_at: float | None = None  # first time it ran
    finished_at: float | None = None  # when it reached its final state
    instances: list[str] = field(default_factory=list)
    log_lines: int = 0
    worker_wait_s: float = 0.0  # held a slot waiting for a worker process (report breakdown)
    worker_wait_since: float | None = None

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def status(self) -> str:
        return self.state

    @property
    def dependencies(self) -> tuple[str, ...]:
        return self.info.dependencies

    @property
    def parent(self) -> str | None:
        return self.info.parent

    # set by RunView for a map_over task: its longest instance (see report.compute_report)
    path_weight: float | None = None

    @property
    def note(self) -> str | None:
        """One line: why the task failed, was skipped ("do_audit is false") or cancelled."""
        if self.error:
            return self.error
        return self.reason if self.state in ("skipped", "cancelled") else None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def attempt(self) -> int:
        return self.attempts[-1].number if self.attempts else 0

    @property
    def max_attempts(self) -> int:
        return self.info.retry_attempts + 1

    def work(self) -> float:
        """The attempts' summed running time (retry waits left out)."""
        return sum(
            a.finished_at - a.started_at
            for a in self.attempts
            if a.finished_at is not None and a.finished_at > a.started_at
        )

    def duration(self, now: float | None = None) -> float | None:
        """Span from first start to final state (to `now` while it runs)."""
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else now
        return None if end is None else max(0.0, end - self.started_at)


@dataclass
class RunView:
    run_id: str = ""
    workflow: str = ""
    file: str | None = None
    status: str = "pending"
    started_at: float | None = None
    finished_at: float | None = None
    max_concurrency: int = 1
    executor: str = "local"
    tasks: dict[str, TaskView] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    error: str | None = None
    resumed_from: str | None = None
    running: int = 0  # slots in use: tasks running, and those holding one for a worker process
    retries: list[RetryScheduled] = field(default_factory=list)
    # the time of the newest event, for a view replayed from the store (the live fold does
    # not keep it: nothing live needs it)
    last_event_at: float | None = None

    @classmethod
    def from_events(cls, events: Any) -> RunView:
        view = cls()
        for e in events:
            view.apply(e)
        return view

    def apply(self, e: Event) -> list[str]:
        """Fold one event into the view; return the ids of the tasks it changed."""
        match e:
            case TaskStateChanged():
                return self._state(e)
            case TaskLogs():
                return self._logs(e)
            case TaskProgress():
                t = self.tasks.get(e.task_id)
                if t is None:
                    return []
                t.progress = (e.done, e.total, e.message)
                return [e.task_id]
            case RetryScheduled():
                self.retries.append(e)
                t = self.tasks.get(e.task_id)
                if t is not None:
                    t.next_retry_at = e.at + e.delay_s
                    t.retry_delay_s = e.delay_s
                return [e.task_id]
            case ContextWritten():
                return self._written(e)
            case TasksAdded():
                return self._added(e)
            case RunStarted():
                return self._started(e)
            case RunFinished():
                return self._finished(e)
        return []

    def _started(self, e: RunStarted) -> list[str]:
        self.run_id = e.run_id
        self.workflow = e.workflow
        self.file = e.file
        self.status = "running"
        self.started_at = e.at
        self.max_concurrency = e.max_concurrency
        self.executor = e.executor
        self.resumed_from = e.resumed_from
        self.tasks = {t.id: TaskView(t) for t in e.tasks}
        self.order = [t.id for t in e.tasks]
        self.context = dict(e.initial_context)
        return list(self.tasks)

    def _state(self, e: TaskStateChanged) -> list[str]:
        t = self.tasks.get(e.task_id)
        if t is None:
            return []
        prev = t.state
        state = e.state
        holds_slot = t.info.map_over is None or t.info.parent is not None
        if t.worker_wait_since is not None and state != "pending":
            t.worker_wait_s += max(0.0, e.at - t.worker_wait_since)
            t.worker_wait_since = None
            if holds_slot:
                self.running -= 1  # its slot is counted below as it runs (or is given back)
        if state == "pending" and e.reason == WAITS_FOR_WORKER and t.worker_wait_since is None:
            t.worker_wait_since = e.at
            if holds_slot:
                self.running += 1  # waiting for a worker process, it holds a slot already
        if state == "running":
            if e.attempt > 0 and (not t.attempts or t.attempts[-1].number != e.attempt):
                t.attempts.append(AttemptView(e.attempt, e.at))
            if t.started_at is None:
                t.started_at = e.at
            t.next_retry_at = None
            if prev != "running":
                self.running += 1 if t.info.map_over is None or t.info.parent else 0
        else:
            if prev == "running" and (t.info.map_over is None or t.info.parent):
                self.running -= 1
            last = t.attempts[-1] if t.attempts else None
            if last is not None and last.finished_at is None and e.attempt == last.number:
                last.finished_at = e.at
                if state in ("retrying", "failed"):
                    # (runs recorded before events said `timed_out` said it in the reason)
                    timed_out = e.timed_out or e.reason == "timed out"
                    last.status = "timed_out" if timed_out else "failed"
                else:
                    last.status = state
                last.error = e.error
                last.traceback = e.traceback
            if state in FINAL_STATES:
                t.finished_at = e.at
                t.error = e.error if state != "completed" else None
                t.traceback = e.traceback if state != "completed" else None
                t.next_retry_at = None
        t.state = state
        t.reason = e.reason
        t.via_fallback = t.via_fallback or e.via_fallback
        return [e.task_id]

    def _logs(self, e: TaskLogs) -> list[str]:
        changed: dict[str, None] = {}
        for line in e.lines:
            t = self.tasks.get(line.task_id)
            if t is not None:
                t.log_lines += 1
                changed[line.task_id] = None
        return list(changed)

    def _written(self, e: ContextWritten) -> list[str]:
        t = self.tasks.get(e.task_id)
        if t is not None:
            t.written_keys = list(e.values)
        return [e.task_id]

    def _added(self, e: TasksAdded) -> list[str]:
        parent = self.tasks.get(e.parent)
        ids = []
        for info in e.tasks:
            self.tasks[info.id] = TaskView(info)
            ids.append(info.id)
        if parent is not None:
            parent.instances = ids
            at = self.order.index(e.parent) + 1 if e.parent in self.order else len(self.order)
            self.order[at:at] = ids
            return [e.parent, *ids]
        return ids

    def _finished(self, e: RunFinished) -> list[str]:
        self.status = e.status
        self.finished_at = e.at
        self.report = e.report or None
        self.context = e.context
        self.error = e.error
        self.running = 0
        if e.status != "interrupted":
            return []
        # the process running it died (as the store found it): what ran was cut short
        cut = []
        for t in self.tasks.values():
            if t.state in ("running", "retrying"):
                t.state = "interrupted"
                t.next_retry_at = None
                for a in t.attempts:
                    if a.finished_at is None:
                        a.status = "interrupted"
                cut.append(t.id)
        return cut

    # -- figures -------------------------------------------------------------------------------

    def compute_report(self, finished_at: float | None = None) -> Report:
        for t in self.tasks.values():
            if t.instances:
                works = [self.tasks[i].work() for i in t.instances if i in self.tasks]
                t.path_weight = max(works, default=0.0)
        # a TaskView has every attribute compute_report reads (id, status, dependencies,
        # attempts, started_at, finished_at, error, via_fallback): no copies needed
        return compute_report(
            self.tasks.values(),  # type: ignore[arg-type]
            self.max_concurrency,
            self.started_at,
            finished_at if finished_at is not None else self.finished_at,
            order=self.order,
        )

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tasks.values():
            out[t.state] = out.get(t.state, 0) + 1
        return out
