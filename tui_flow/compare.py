"""Run a workflow at several concurrencies and compare wall times (`tui-flow compare FILE`).

    tui-flow compare flows/parallel_tasks.flow --concurrency 1,2,4 --set records=100000

Each setting runs the whole workflow (`--repeat N` times, interleaved, the median is shown),
without the store. The table shows, per concurrency:

- wall time (median of the repeats),
- speedup: wall time at concurrency 1 / wall time here,
- possible: the best speedup this concurrency allows, min(concurrency, total task time /
  critical path), from the report of the median run at concurrency 1: the same definitions as
  every run's report (engine/report.py: `possible_speedup`),
- of possible: speedup / possible,
- slot utilisation: speedup / concurrency.

Concurrency 1 is always measured: it is the baseline.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .engine.report import possible_speedup
from .engine.result import SCHEMA_VERSION
from .workflow import Workflow


@dataclass
class Setting:
    """The runs at one concurrency."""

    concurrency: int
    walls_s: list[float] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    speedup: float = 0.0
    bound: float = 0.0

    @property
    def wall_s(self) -> float:
        return statistics.median(self.walls_s) if self.walls_s else 0.0

    @property
    def status(self) -> str:
        bad = [s for s in self.statuses if s != "completed"]
        return bad[0] if bad else "completed"

    @property
    def of_possible(self) -> float:
        return self.speedup / self.bound if self.bound > 0 else 0.0

    @property
    def slot_utilisation(self) -> float:
        return self.speedup / self.concurrency

    def to_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "wall_s": self.wall_s,
            "walls_s": self.walls_s,
            "speedup": self.speedup,
            "bound": self.bound,
            "of_possible": self.of_possible,
            "slot_utilisation": self.slot_utilisation,
            "status": self.status,
        }


@dataclass
class Comparison:
    workflow: str
    context: dict[str, Any]
    repeat: int
    settings: list[Setting]
    total_task_s: float = 0.0  # at concurrency 1 (median run)
    critical_path: list[str] = field(default_factory=list)
    critical_path_s: float = 0.0
    best_speedup: float = 0.0  # total task time / critical path (no slot cap)

    @property
    def ok(self) -> bool:
        return all(s.status == "completed" for s in self.settings)

    def to_json(self) -> dict[str, Any]:
        """The object `tui-flow compare --json` prints (`documents.CompareDocument`)."""
        return {
            "schema": SCHEMA_VERSION,
            "workflow": self.workflow,
            "context": self.context,
            "repeat": self.repeat,
            "baseline_concurrency": 1,
            "total_task_s": self.total_task_s,
            "critical_path": self.critical_path,
            "critical_path_s": self.critical_path_s,
            "best_speedup": self.best_speedup,
            "settings": [s.to_json() for s in self.settings],
        }


async def measure(
    workflow: Workflow,
    context: Mapping[str, Any],
    concurrencies: Sequence[int],
    repeat: int = 1,
    on_run: Callable[[int, int, Any], None] | None = None,
) -> Comparison:
    """Run `workflow` `repeat` times at each concurrency (1 first, interleaved) and compare."""
    from .engine import Execution
    from .engine.runners import get_process_pool

    levels = sorted({1, *concurrencies})
    settings = {c: Setting(c) for c in levels}
    baseline: list[tuple[float, Any]] = []
    if any(t.runner == "process" for t in workflow.tasks.values()):
        await get_process_pool().warm(max(levels))  # worker start-up is not the workload
    for i in range(repeat):
        for c in levels:
            execution = Execution(workflow, dict(context), max_concurrency=c)
            execution.start()
            result = await execution.wait()
            settings[c].walls_s.append(result.finished_at - result.started_at)
            settings[c].statuses.append(result.status)
            if c == 1:
                baseline.append((result.finished_at - result.started_at, result))
            if on_run is not None:
                on_run(c, i + 1, result)
    base_wall = statistics.median(w for w, _ in baseline)
    median_run = min(baseline, key=lambda b: abs(b[0] - base_wall))[1]
    report = median_run.report
    total, path, length = report.total_task_s, report.critical_path, report.critical_path_s
    best = report.graph_speedup
    for s in settings.values():
        s.speedup = base_wall / s.wall_s if s.wall_s > 0 else 0.0
        s.bound = possible_speedup(total, length, s.concurrency)
    return Comparison(
        workflow=workflow.name,
        context=dict(context),
        repeat=repeat,
        settings=list(settings.values()),
        total_task_s=total,
        critical_path=path,
        critical_path_s=length,
        best_speedup=best,
    )
