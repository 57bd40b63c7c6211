"""The efficiency report: one function from recorded task timings, used by every view.

Figures, named as the views print them:
- wall time: first task start (or run start) to run end
- total task time: the sum of every attempt's running time (what one worker would need)
- speedup: total task time / wall time
- efficiency: speedup / max concurrency (1.0 = every slot busy all the time)
- critical path: the dependency chain with the largest summed task duration
  (a task's duration is its span, first start to final end, retry waits included)
- best possible speedup: total task time / critical path length
- time waiting on retries: summed gaps between a task's attempts
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..workflow import longest_path

# Plain dataclasses, not pydantic models: a 10,000-task run builds 30,000 of these at its end.


@dataclass(slots=True)
class AttemptTiming:
    started_at: float
    finished_at: float | None = None


@dataclass(slots=True)
class TaskTiming:
    """A task's recorded times. `span_start`/`span_end` override the attempts' span (a
    map_over task runs no body itself: its span is that of its instances)."""

    id: str
    status: str
    dependencies: tuple[str, ...] = ()
    attempts: list[AttemptTiming] = field(default_factory=list)
    span_start: float | None = None
    span_end: float | None = None
    error: str | None = None
    via_fallback: bool = False
    path_weight: float | None = None  # critical-path weight when not the span (map_over)

    @property
    def started_at(self) -> float | None:
        if self.span_start is not None:
            return self.span_start
        return self.attempts[0].started_at if self.attempts else None

    @property
    def finished_at(self) -> float | None:
        if self.span_end is not None:
            return self.span_end
        ends = [a.finished_at for a in self.attempts if a.finished_at is not None]
        return max(ends) if ends else None


@dataclass(slots=True)
class TaskRow:
    id: str
    status: str
    attempts: int
    started_at: float | None
    finished_at: float | None
    duration_s: float  # span: first start to final end
    run_s: float  # summed running time of the attempts
    error: str | None = None
    via_fallback: bool = False


@dataclass
class Report:
    wall_s: float
    total_task_s: float
    speedup: float
    efficiency: float
    max_concurrency: int
    critical_path: list[str]
    critical_path_s: float
    max_speedup: float
    retry_wait_s: float
    tasks: list[TaskRow]

    @classmethod
    def empty(cls, max_concurrency: int) -> Report:
        """The report of a run that has no figures (it ended before anything was timed)."""
        return cls(0.0, 0.0, 0.0, 0.0, max_concurrency, [], 0.0, 0.0, 0.0, [])

    def slowest(self, n: int = 5) -> list[TaskRow]:
        return sorted(self.tasks, key=lambda r: (-r.duration_s, r.id))[:n]

    def summary(self) -> dict[str, Any]:
        """The headline figures (the `report` object of `tui-flow run --json`)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "tasks"}
        out["critical_path"] = list(self.critical_path)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything, per-task rows included, as JSON-ready data."""
        return {**self.summary(), "tasks": [dataclasses.asdict(r) for r in self.tasks]}


def note(t: Any) -> str | None:
    """A row's error / note: a task view's `note` (why it was skipped, too), else its error."""
    return getattr(t, "note", t.error)


def compute_report(
    timings: Iterable[TaskTiming],
    max_concurrency: int,
    started_at: float | None = None,
    finished_at: float | None = None,
    order: Sequence[str] | None = None,
) -> Report:
    """Build the report from task timings (live run, store or test alike)."""
    tasks = {t.id: t for t in timings}
    rows: list[TaskRow] = []
    total = 0.0
    retry_wait = 0.0
    durations: dict[str, float] = {}
    first_start: float | None = None
    last_end: float | None = None
    row = TaskRow
    for t in tasks.values():
        attempts = t.attempts
        run_s = 0.0
        for a in attempts:
            end_a = a.finished_at
            if end_a is not None and end_a > a.started_at:
                run_s += end_a - a.started_at
        start, end = t.started_at, t.finished_at
        span = end - start if start is not None and end is not None and end > start else 0.0
        total += run_s
        if len(attempts) > 1 and span > run_s:
            retry_wait += span - run_s
        # on the critical path a map_over task weighs its longest instance: its instances
        # could all run at once, so that (not its span) is what bounds the wall time
        weight = getattr(t, "path_weight", None)
        durations[t.id] = span if weight is None else weight
        if start is not None and (first_start is None or start < first_start):
            first_start = start
        if end is not None and (last_end is None or end > last_end):
            last_end = end
        rows.append(
            row(t.id, t.status, len(attempts), start, end, span, run_s, note(t), t.via_fallback)
        )
    begin = started_at if started_at is not None else first_start
    stop = finished_at if finished_at is not None else last_end
    wall = max(0.0, stop - begin) if begin is not None and stop is not None else 0.0
    path, path_s = longest_path({k: v.dependencies for k, v in tasks.items()}, durations, order)
    speedup = total / wall if wall > 0 else 0.0
    return Report(
        wall_s=wall,
        total_task_s=total,
        speedup=speedup,
        efficiency=speedup / max_concurrency if max_concurrency else 0.0,
        max_concurrency=max_concurrency,
        critical_path=path,
        critical_path_s=path_s,
        max_speedup=total / path_s if path_s > 0 else 0.0,
        retry_wait_s=retry_wait,
        tasks=rows,
    )
