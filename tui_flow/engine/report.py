"""The efficiency report: one function from recorded task timings, used by every view (the
app, the console, `run --json`, `show`, the store and `compare` all read these figures).

Figures, named as the views print them:
- wall time: run start to run end
- total task time (work): the sum of every attempt's running time, each retry's attempt
  included (what one slot would need to run it all)
- critical path: the dependency chain with the most work (a task weighs its attempts'
  running time; a map_over task its longest instance, since its instances may all run at once)
- possible speedup: what this graph allows at the run's concurrency cap,
  min(max concurrency, total task time / critical path): never below 1x
- speedup: total task time / wall time, shown against the possible one
  ("1.57x of 1.59x possible, 99%": `of_possible`)
- slot utilisation: total task time / (wall time x max concurrency), a separate figure (a graph
  that allows 1.6x cannot keep 4 slots busy, however well it runs)
- time waiting on retries: summed gaps between a task's attempts, over all tasks
- the wall-time breakdown: the chain of tasks that ended the run, walked back from the last
  one to end through what each waited for (its last dependency, or the task whose end freed
  the slot it took when every slot was held), split into running, waiting between attempts,
  waiting for a worker process (start-up or a full pool), waiting for a slot (or the
  scheduler) and the rest; its lines sum to the wall time
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
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
    path_weight: float | None = None  # critical-path weight when not the work (map_over)
    instances: Sequence[str] = ()  # a map_over task's instances
    parent: str | None = None  # an instance's map_over task
    worker_wait_s: float = 0.0  # time it held a slot waiting for a worker process

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
class Breakdown:
    """Where the wall time went, along the chain of tasks that ended the run (sums to it)."""

    running_s: float = 0.0  # the chain's bodies running
    retry_wait_s: float = 0.0  # the chain's tasks waiting between attempts
    worker_wait_s: float = 0.0  # the chain's tasks holding a slot, waiting for a worker process
    slot_wait_s: float = 0.0  # ready (or not yet started) but waiting for a slot or the engine
    other_s: float = 0.0  # before/after the chain: engine start-up, ending the run

    LINES = (
        ("running_s", "running"),
        ("retry_wait_s", "retry waits"),
        ("worker_wait_s", "worker start-up"),
        ("slot_wait_s", "slot waits"),
        ("other_s", "other"),
    )

    def total(self) -> float:
        return (
            self.running_s
            + self.retry_wait_s
            + self.worker_wait_s
            + self.slot_wait_s
            + (self.other_s)
        )

    def lines(self) -> list[tuple[str, float]]:
        """(label, seconds) for each line, in a fixed order."""
        return [(name, getattr(self, key)) for key, name in self.LINES]


@dataclass
class Report:
    wall_s: float
    total_task_s: float
    speedup: float
    possible_speedup: float
    of_possible: float
    slot_utilisation: float
    max_concurrency: int
    critical_path: list[str]
    critical_path_s: float
    graph_speedup: float
    retry_wait_s: float
    breakdown: Breakdown
    tasks: list[TaskRow]

    @classmethod
    def empty(cls, max_concurrency: int) -> Report:
        """The report of a run that has no figures (it ended before anything was timed)."""
        return cls(
            0.0, 0.0, 0.0, 1.0, 0.0, 0.0, max_concurrency, [], 0.0, 1.0, 0.0, Breakdown(), []
        )

    def slowest(self, n: int = 5) -> list[TaskRow]:
        return sorted(self.tasks, key=lambda r: (-r.duration_s, r.id))[:n]

    def speedup_line(self) -> str:
        """ "1.57x of 1.59x possible (99%)": the one way every view says it."""
        return (
            f"{self.speedup:.2f}x of {self.possible_speedup:.2f}x possible ({self.of_possible:.0%})"
        )

    def summary(self) -> dict[str, Any]:
        """The headline figures (the `report` object of `tui-flow run --json`)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "tasks"}
        out["critical_path"] = list(self.critical_path)
        out["breakdown"] = dataclasses.asdict(self.breakdown)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything, per-task rows included, as JSON-ready data."""
        return {**self.summary(), "tasks": [dataclasses.asdict(r) for r in self.tasks]}


def note(t: Any) -> str | None:
    """A row's error / note: a task view's `note` (why it was skipped, too), else its error."""
    return getattr(t, "note", t.error)


def possible_speedup(total_s: float, critical_path_s: float, max_concurrency: int) -> float:
    """What a graph allows: min(concurrency, total / critical path); 1x at the least."""
    graph = total_s / critical_path_s if critical_path_s > 0 else 1.0
    return max(1.0, min(float(max(1, max_concurrency)), graph))


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
    work: dict[str, float] = {}
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
        # on the critical path a task weighs its work (its retry waits are not work, and
        # counting them could put the path above the total: a "possible" speedup below 1x);
        # a map_over task weighs its longest instance: its instances could all run at once
        weight = getattr(t, "path_weight", None)
        work[t.id] = run_s if weight is None else weight
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
    path, path_s = longest_path({k: v.dependencies for k, v in tasks.items()}, work, order)
    speedup = total / wall if wall > 0 else 0.0
    cap = max(1, max_concurrency)
    possible = possible_speedup(total, path_s, cap)
    breakdown = (
        wall_breakdown(tasks, work, begin, stop, cap)
        if begin is not None and stop is not None
        else Breakdown()
    )
    return Report(
        wall_s=wall,
        total_task_s=total,
        speedup=speedup,
        possible_speedup=possible,
        of_possible=speedup / possible,
        slot_utilisation=total / (wall * cap) if wall > 0 else 0.0,
        max_concurrency=max_concurrency,
        critical_path=path,
        critical_path_s=path_s,
        graph_speedup=total / path_s if path_s > 0 else 1.0,
        retry_wait_s=retry_wait,
        breakdown=breakdown,
        tasks=rows,
    )


def wall_breakdown(
    tasks: Mapping[str, TaskTiming],
    work: Mapping[str, float],
    begin: float,
    stop: float,
    max_concurrency: int = 0,
) -> Breakdown:
    """Walk back from the task that ended last through, each time, what it waited for: the
    dependency that ended last before it started or, when it waited for a slot while every
    slot was held, the task whose end freed the slot it took. Each stretch of [begin, stop]
    goes to one line, so they sum to the wall time."""
    out = Breakdown()
    if stop <= begin:
        return out
    timed = {
        k: (s, e)
        for k, t in tasks.items()
        if (s := t.started_at) is not None and (e := t.finished_at) is not None
    }
    # what holds a slot (a map_over task does not: its instances do), from when it took it
    # (before its start when it waited for a worker process) to its end
    holders = [k for k in timed if not tasks[k].instances]
    took = sorted(max(begin, timed[k][0] - tasks[k].worker_wait_s) for k in holders)
    ended = sorted((timed[k][1], k) for k in holders)
    ends = [e for e, _ in ended]

    def slots_full(at: float) -> bool:
        held = bisect.bisect_left(took, at) - bisect.bisect_right(ends, at)
        return max_concurrency > 0 and held >= max_concurrency

    def last_ended(ids: Iterable[str], before: float) -> str | None:
        best: str | None = None
        best_end = begin
        for i in ids:
            se = timed.get(i)
            if se is not None and se[1] <= before + 1e-9 and (best is None or se[1] > best_end):
                best, best_end = i, se[1]
        return best

    def freed_slot(at: float, after: float, skip: set[str]) -> str | None:
        """The slot holder that ended last at or before `at` (and after `after`)."""
        i = bisect.bisect_right(ends, at + 1e-9) - 1
        for j in range(i, max(-1, i - 8), -1):
            end, k = ended[j]
            if end <= after:
                return None
            if k not in skip:
                return k
        return None

    cursor = stop
    # the chain's end: a top-level task (an instance ends before its map_over task does)
    cur = last_ended((k for k in timed if tasks[k].parent is None), stop) or last_ended(timed, stop)
    seen: set[str] = set()
    while cur is not None and cur not in seen and cursor > begin:
        seen.add(cur)
        t = tasks[cur]
        start, end = timed[cur]
        end = min(max(end, begin), cursor)
        out.other_s += cursor - end
        cursor = end
        if t.instances:  # a map_over task: its last instance to end is what it waited for
            inst = last_ended(t.instances, cursor)
            if inst is not None:
                cur = inst
                continue
        start = min(max(start, begin), cursor)
        span = cursor - start
        running = min(span, work.get(cur, 0.0))
        out.running_s += running
        parent = tasks.get(t.parent) if t.parent is not None else None
        deps = parent.dependencies if parent is not None else t.dependencies
        pred = last_ended(deps, start)
        ready = max(timed[pred][1] if pred is not None else begin, begin)
        gap = max(0.0, start - ready)
        # a task's wait for a worker process comes before its first attempt, then its retries
        worker = min(gap, t.worker_wait_s)
        out.worker_wait_s += worker
        between = span - running
        worker_between = min(between, t.worker_wait_s - worker)
        out.worker_wait_s += worker_between
        out.retry_wait_s += between - worker_between
        took_slot = start - worker
        freer = freed_slot(took_slot, ready, seen) if took_slot - ready > 1e-6 else None
        # every slot was held until that task ended: it waited for that task's slot
        if freer is not None and slots_full(timed[freer][1] - 1e-6):
            freed_at = min(timed[freer][1], took_slot)
            out.slot_wait_s += took_slot - freed_at
            cursor = freed_at
            cur = freer
            continue
        out.slot_wait_s += gap - worker
        cursor = start - gap
        cur = pred
    out.other_s += max(0.0, cursor - begin)
    return out
