"""Test fixture: a scripted run of a small demo workflow (`demo` in `demo_flow.py`), event
by event, on a fixed clock. It is not `flows/catalog.py`: it is its own, smaller workflow.

The screenshots (`scripts/screenshots.py`) and the snapshot tests show the app on these
events, so their images do not change from one run to the next. `DEMO_FLOW` is a real,
runnable workflow with the same tasks (`tui-flow demo_flow.py` runs it for real).
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
    TasksAdded,
    TaskStateChanged,
)
from tui_flow.engine.state import RunView
from tui_flow.ui.session import task_infos
from tui_flow.workflow import Workflow

DEMO_FLOW = '''\
"""The demo behind the app's screenshots: generate, partition, price, enrich, validate, publish."""

import asyncio
import random

from tui_flow import Context, Workflow, task


@task
async def generate_data(context: Context) -> None:
    """Make the product rows."""
    for i in range(4):
        context.log(f"generated batch {i + 1}/4 (500 products)")
        await asyncio.sleep(0.2)  # the demo's workload (ok)
    context.set("products", list(range(2000)))


@task(dependencies=[generate_data])
async def partition_data(context: Context) -> None:
    """Split the products into four partitions."""
    await asyncio.sleep(0.6)  # the demo's workload (ok)
    context.set("partitions", [0, 1, 2, 3])


@task(dependencies=[generate_data], retry_attempts=3, retry_delay_ms=1000)
async def fetch_prices(context: Context) -> None:
    """Ask the (flaky) price service."""
    context.log("GET /prices?since=yesterday")
    await asyncio.sleep(0.5)  # the demo's workload (ok)
    if random.random() < 0.5:
        raise ConnectionError("price API timed out")
    context.set("prices", {"count": 2000})


@task(dependencies=[partition_data], map_over="partitions")
async def enrich(context: Context) -> dict:
    """Add categories to one partition."""
    for step in range(5):
        context.progress(step + 1, 5)
        await asyncio.sleep(0.1)  # the demo's workload (ok)
    context.log(f"partition {context.item}: 500 rows enriched")
    return {"partition": context.item}


@task(dependencies=[partition_data])
def validate(context: Context) -> None:
    """Check every row has a name and a category."""
    import time

    time.sleep(0.6)  # the demo's workload (ok)
    print("2000 rows valid")
    context.set("valid", True)


@task(dependencies=[enrich, fetch_prices, validate])
async def join_prices(context: Context) -> None:
    """Put prices on the enriched rows."""
    await asyncio.sleep(0.6)  # the demo's workload (ok)
    context.set("priced", {"rows": 2000})


@task(dependencies=[join_prices])
async def publish(context: Context) -> None:
    """Write the priced products out."""
    await asyncio.sleep(0.4)  # the demo's workload (ok)
    context.log("products.json written (2000 rows)")


workflow = Workflow(
    "demo",
    tasks=[generate_data, partition_data, fetch_prices, enrich, validate, join_prices, publish],
    max_concurrency=3,
)
'''

T0 = 1_754_000_000.0
RUN_ID = "3f9a1c2e7b40"

# task -> attempts as (start, end, error or None), times in seconds from the run start
ATTEMPTS: dict[str, list[tuple[float, float, str | None]]] = {
    "generate_data": [(0.02, 0.84, None)],
    "partition_data": [(0.85, 1.46, None)],
    "fetch_prices": [
        (0.85, 1.37, "ConnectionError: price API timed out"),
        (2.38, 2.92, None),
    ],
    "enrich[0]": [(1.48, 2.02, None)],
    "enrich[1]": [(1.48, 2.06, None)],
    "enrich[2]": [(1.48, 2.10, None)],
    "enrich[3]": [(2.03, 2.60, None)],
    "validate": [(2.07, 2.70, None)],
    "join_prices": [(2.93, 3.55, None)],
    "publish": [(3.56, 3.98, None)],
}
LOGS: dict[str, list[tuple[float, str, str]]] = {
    "generate_data": [
        (0.02 + 0.2 * i, "info", f"generated batch {i + 1}/4 (500 products)") for i in range(4)
    ],
    "fetch_prices": [
        (0.86, "info", "GET /prices?since=yesterday"),
        (1.36, "error", "ConnectionError: price API timed out"),
        (2.39, "info", "GET /prices?since=yesterday"),
        (2.91, "info", "2000 prices"),
    ],
    "partition_data": [(1.45, "info", "4 partitions of 500 rows")],
    "enrich[0]": [(2.01, "info", "partition 0: 500 rows enriched")],
    "enrich[1]": [(2.05, "info", "partition 1: 500 rows enriched")],
    "enrich[2]": [(2.09, "info", "partition 2: 500 rows enriched")],
    "enrich[3]": [(2.59, "info", "partition 3: 500 rows enriched")],
    "validate": [(2.69, "info", "2000 rows valid")],
    "join_prices": [(3.54, "info", "joined 2000 rows with 2000 prices")],
    "publish": [(3.97, "info", "products.json written (2000 rows)")],
}
WRITES: dict[str, dict[str, Any]] = {
    "generate_data": {"products": "2000 rows"},
    "partition_data": {"partitions": [0, 1, 2, 3]},
    "fetch_prices": {"prices": {"count": 2000}},
    "enrich": {"enrich": [{"partition": i} for i in range(4)]},
    "validate": {"valid": True},
    "join_prices": {"priced": {"rows": 2000}},
}
END = 3.99


def write_demo_flow(folder: str | Path, name: str = "demo_flow.py") -> Path:
    path = Path(folder) / name
    path.write_text(DEMO_FLOW)
    return path


def scripted_events(workflow: Workflow, until: float | None = None) -> list[Any]:
    """The demo run's events up to `until` seconds after its start (all of them if None)."""
    events: list[tuple[float, int, Any]] = []
    seq = 0

    def add(at: float, event: Any) -> None:
        nonlocal seq
        seq += 1
        events.append((at, seq, event))

    def at(s: float) -> float:
        return T0 + s

    infos = task_infos(workflow)
    by_id = {i.id: i for i in infos}
    add(
        0,
        RunStarted(
            run_id=RUN_ID,
            at=at(0),
            workflow=workflow.name,
            file=workflow.file,
            max_concurrency=workflow.max_concurrency,
            tasks=infos,
        ),
    )
    # the map_over task and its instances
    add(1.47, TaskStateChanged(run_id=RUN_ID, at=at(1.47), task_id="enrich", state="running"))
    instances = [
        by_id["enrich"].model_copy(
            update={"id": f"enrich[{i}]", "dependencies": (), "map_over": None, "parent": "enrich"}
        )
        for i in range(4)
    ]
    add(1.47, TasksAdded(run_id=RUN_ID, at=at(1.47), parent="enrich", tasks=instances))
    for tid, attempts in ATTEMPTS.items():
        info = by_id.get(tid) or by_id["enrich"]
        max_attempts = info.retry_attempts + 1
        for n, (start, end, error) in enumerate(attempts, 1):
            add(
                start,
                TaskStateChanged(
                    run_id=RUN_ID,
                    at=at(start),
                    task_id=tid,
                    state="running",
                    attempt=n,
                    max_attempts=max_attempts,
                ),
            )
            if tid.startswith("enrich["):
                for k in range(1, 6):
                    t = start + (end - start) * k / 6
                    add(t, TaskProgress(run_id=RUN_ID, at=at(t), task_id=tid, done=k, total=5))
            if error is not None:
                delay = 1.0
                add(
                    end,
                    RetryScheduled(
                        run_id=RUN_ID,
                        at=at(end),
                        task_id=tid,
                        attempt=n,
                        next_attempt=n + 1,
                        max_attempts=max_attempts,
                        delay_s=delay,
                        error=error,
                    ),
                )
                add(
                    end,
                    TaskStateChanged(
                        run_id=RUN_ID,
                        at=at(end),
                        task_id=tid,
                        state="retrying",
                        attempt=n,
                        max_attempts=max_attempts,
                        error=error,
                    ),
                )
            else:
                if tid in WRITES:
                    add(
                        end,
                        ContextWritten(run_id=RUN_ID, at=at(end), task_id=tid, values=WRITES[tid]),
                    )
                add(
                    end,
                    TaskStateChanged(
                        run_id=RUN_ID,
                        at=at(end),
                        task_id=tid,
                        state="completed",
                        attempt=n,
                        max_attempts=max_attempts,
                    ),
                )
    add(2.61, ContextWritten(run_id=RUN_ID, at=at(2.61), task_id="enrich", values=WRITES["enrich"]))
    add(2.61, TaskStateChanged(run_id=RUN_ID, at=at(2.61), task_id="enrich", state="completed"))
    for tid, lines in LOGS.items():
        for s, level, text in lines:
            line = LogLine(task_id=tid, attempt=1, at=at(s), level=level, text=text)
            add(s, TaskLogs(run_id=RUN_ID, at=at(s), lines=[line]))
    events.sort(key=lambda e: (e[0], e[1]))
    out = [e for s, _, e in events if until is None or s <= until]
    if until is None or until >= END:
        view = RunView.from_events(out)
        report = view.compute_report(at(END))
        out.append(
            RunFinished(
                run_id=RUN_ID,
                at=at(END),
                status="completed",
                report=report.summary(),
                context={},
            )
        )
    return out
