"""Test fixture: a run of `flows/catalog.py` as events, on a fixed clock, so that the snapshot
tests and `scripts/screenshots.py` show the catalog as a user sees it, the same every time.

Two runs: `completed` (partition 2 fails once and succeeds on its retry) and `failed`
(partition 2 fails all four attempts: what needs it is skipped; cleanup, all_done, runs).
Times and log lines are those of a real run of the catalog (`tui-flow run flows/catalog.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui_flow.engine.events import (
    ContextWritten,
    LogLine,
    RetryScheduled,
    RunFinished,
    RunStarted,
    TaskLogs,
    TaskProgress,
    TaskStateChanged,
)
from tui_flow.engine.state import RunView
from tui_flow.ui.session import task_infos
from tui_flow.workflow import Workflow

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "flows" / "catalog.py"
T0 = 1_754_000_000.0
RUN_IDS = {"completed": "7c41d2a9e5f0", "failed": "b2e86f0d13c7"}
ERROR = "TimeoutError: the inventory service did not answer in 0.5 s"

Attempt = tuple[float, float, str | None]  # start, end (seconds from the run's start), error


def attempts(outcome: str) -> dict[str, list[Attempt]]:
    out: dict[str, list[Attempt]] = {
        "generate_data": [(0.01, 0.61, None)],
        "partition_data": [(0.62, 0.71, None)],
        "process_partition_1": [(0.72, 3.55, None)],
        "process_partition_2": [(0.72, 1.30, ERROR), (2.31, 4.63, None)],
        "process_partition_3": [(0.73, 2.38, None)],
        "combine_results": [(4.64, 4.65, None)],
        "generate_report": [(4.66, 4.67, None)],
        "send_notifications": [(4.66, 4.68, None)],
        "cleanup": [(4.69, 4.70, None)],
    }
    if outcome == "failed":
        out["process_partition_2"] = [
            (0.72, 1.30, ERROR),
            (2.31, 2.89, ERROR),
            (3.90, 4.48, ERROR),
            (5.49, 6.07, ERROR),
        ]
        for tid in ("combine_results", "generate_report", "send_notifications"):
            del out[tid]
        out["cleanup"] = [(6.08, 6.09, None)]
    return out


def end_of(outcome: str) -> float:
    return 4.71 if outcome == "completed" else 6.10


CATEGORIES = [
    (1, 511764, "26,251,499.17"),
    (2, 502194, "25,698,843.49"),
    (3, 499868, "25,350,047.37"),
    (4, 489783, "24,778,351.27"),
    (5, 502177, "25,257,529.24"),
]


def logs(outcome: str) -> dict[str, list[tuple[float, str, str]]]:
    out: dict[str, list[tuple[float, str, str]]] = {
        "generate_data": [
            (0.02, "info", "catalog: generating 10000 products (seed 42)"),
            (0.60, "info", "generated 10000 products across 10 categories"),
        ],
        "partition_data": [(0.70, "info", "partitioned into 3 chunks: 3333, 3333, 3334 products")],
        "process_partition_1": [
            (0.73, "info", "processing partition 1: 3333 products"),
            (3.54, "info", "partition 1 complete: 3333 products in 2830 ms (simulated)"),
        ],
        "process_partition_2": [(0.73, "info", "processing partition 2: 3333 products")],
        "process_partition_3": [
            (0.74, "info", "processing partition 3: 3334 products"),
            (2.37, "info", "partition 3 complete: 3334 products in 1648 ms (simulated)"),
        ],
        "cleanup": [
            (
                end_of(outcome) - 0.02,
                "info",
                "cleaning up 6 temporary keys: partition_1, partition_2, partition_3, stats_1, …",
            )
        ],
    }
    tries = attempts(outcome)["process_partition_2"]
    for start, end, error in tries:
        if start > 1:
            out["process_partition_2"].append(
                (start + 0.01, "info", "processing partition 2: 3333 products")
            )
        if error:
            out["process_partition_2"].append((end, "error", error))
        else:
            out["process_partition_2"].append(
                (end - 0.01, "info", "partition 2 complete: 3333 products in 2323 ms (simulated)")
            )
    if outcome == "completed":
        out["combine_results"] = [
            (4.64, "info", "catalog: combining results from parallel processing"),
            (4.65, "info", "results combined: 10 categories"),
        ]
        out["generate_report"] = [
            (
                4.66,
                "info",
                f"Category {n}: 1000 products, {stock} total stock, ${value} total value",
            )
            for n, stock, value in CATEGORIES
        ]
        out["send_notifications"] = [
            (
                4.67,
                "info",
                "catalog: processing complete: 10000 products, total value $252,835,597.05",
            )
        ]
    return out


def scripted_events(
    workflow: Workflow, outcome: str = "completed", until: float | None = None
) -> list[Any]:
    """The catalog run's events up to `until` seconds after its start (all if None)."""
    run_id = RUN_IDS[outcome]
    events: list[tuple[float, int, Any]] = []

    def add(s: float, event: Any) -> None:
        events.append((s, len(events), event))

    def at(s: float) -> float:
        return T0 + s

    infos = {i.id: i for i in task_infos(workflow)}
    add(
        0,
        RunStarted(
            run_id=run_id,
            at=at(0),
            workflow=workflow.name,
            file=workflow.file,
            max_concurrency=workflow.max_concurrency,
            tasks=list(infos.values()),
        ),
    )
    for tid, tries in attempts(outcome).items():
        most = infos[tid].retry_attempts + 1
        for n, (start, end, error) in enumerate(tries, 1):
            add(
                start,
                TaskStateChanged(
                    run_id=run_id,
                    at=at(start),
                    task_id=tid,
                    state="running",
                    attempt=n,
                    max_attempts=most,
                ),
            )
            if tid.startswith("process_partition"):
                for k in range(1, 10):
                    t = start + (end - start) * k / 10
                    add(
                        t,
                        TaskProgress(
                            run_id=run_id,
                            at=at(t),
                            task_id=tid,
                            done=k * 10,
                            total=100,
                            message=f"partition {tid[-1]}",
                        ),
                    )
            if error is None:
                add(
                    end,
                    ContextWritten(
                        run_id=run_id, at=at(end), task_id=tid, values={f"{tid}_done": True}
                    ),
                )
                add(
                    end,
                    TaskStateChanged(
                        run_id=run_id,
                        at=at(end),
                        task_id=tid,
                        state="completed",
                        attempt=n,
                        max_attempts=most,
                    ),
                )
            elif n < most:
                add(
                    end,
                    RetryScheduled(
                        run_id=run_id,
                        at=at(end),
                        task_id=tid,
                        attempt=n,
                        next_attempt=n + 1,
                        max_attempts=most,
                        delay_s=1.0,
                        error=error,
                    ),
                )
                add(
                    end,
                    TaskStateChanged(
                        run_id=run_id,
                        at=at(end),
                        task_id=tid,
                        state="retrying",
                        attempt=n,
                        max_attempts=most,
                        error=error,
                    ),
                )
            else:
                add(
                    end,
                    TaskStateChanged(
                        run_id=run_id,
                        at=at(end),
                        task_id=tid,
                        state="failed",
                        attempt=n,
                        max_attempts=most,
                        error=error,
                    ),
                )
    if outcome == "failed":
        s = 6.07
        for tid in ("combine_results", "generate_report", "send_notifications"):
            add(
                s,
                TaskStateChanged(
                    run_id=run_id, at=at(s), task_id=tid, state="skipped", reason="upstream failed"
                ),
            )
    for tid, lines in logs(outcome).items():
        for s, level, text in lines:
            line = LogLine(task_id=tid, attempt=1, at=at(s), level=level, text=text)
            add(s, TaskLogs(run_id=run_id, at=at(s), lines=[line]))
    events.sort(key=lambda e: (e[0], e[1]))
    out = [e for s, _, e in events if until is None or s <= until]
    end = end_of(outcome)
    if until is None or until >= end:
        view = RunView.from_events(out)
        report = view.compute_report(at(end))
        out.append(
            RunFinished(
                run_id=run_id, at=at(end), status=outcome, report=report.summary(), context={}
            )
        )
    return out
