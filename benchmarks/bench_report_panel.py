"""Opening each panel of the app on a finished run of N tasks (default 10,000), headless.

    PYTHONPATH=. python benchmarks/bench_report_panel.py [--tasks 10000] [--repeat 5]

The run is replayed from synthetic events (each task: running, one log line, completed; one
in 50 fails with an error; chains of 7 dependencies), so only the app's drawing is measured,
not the engine. Measured, per panel (Logs, Timeline, Retries, Report, the keys 1-4), from
the key press (posted to the app) through the app handling it and settling (`pilot.pause()`)
to the whole screen painted (a full render of the compositor), median and max over
`--repeat` rounds. (Pilot's own `press` would add the tab underline's animation, which is
cosmetic: the panel is there before it ends.) Also: building the report on the run's end
(compute_report and the Report panel's show, which every finished run pays). Target: every
panel < 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual import events as events_  # noqa: E402
from textual.widgets import TabbedContent  # noqa: E402

from tui_flow.engine.events import (  # noqa: E402
    LogLine,
    RunFinished,
    RunStarted,
    TaskInfo,
    TaskLogs,
    TaskStateChanged,
)
from tui_flow.ui.app import make_app  # noqa: E402
from tui_flow.ui.widgets.report import ReportPanel  # noqa: E402

FLOW = """
from tui_flow import Workflow, task

tasks = []
for i in range({n}):
    deps = [tasks[i - 1].id] if i % 7 else []

    def body(context, i=i):
        pass

    tasks.append(task(id=f"t{{i:05d}}", dependencies=deps)(body))

workflow = Workflow("many", tasks=tasks, max_concurrency=16)
"""


def events(n: int) -> list[Any]:
    ids = [f"t{i:05d}" for i in range(n)]
    infos = [TaskInfo(id=t, dependencies=(ids[i - 1],) if i % 7 else ()) for i, t in enumerate(ids)]
    out: list[Any] = [
        RunStarted(run_id="r", at=0.0, workflow="many", max_concurrency=16, tasks=infos)
    ]
    at = 0.0
    for i, t in enumerate(ids):
        at += 0.001
        out.append(TaskStateChanged(run_id="r", at=at, task_id=t, state="running", attempt=1))
        out.append(
            TaskLogs(
                run_id="r",
                at=at,
                lines=[LogLine(task_id=t, attempt=1, at=at, level="info", text=f"task {i} done")],
            )
        )
        if i % 50 == 49:
            out.append(
                TaskStateChanged(
                    run_id="r",
                    at=at + 0.01,
                    task_id=t,
                    state="failed",
                    attempt=1,
                    error=f"ValueError: row {i} has no price",
                )
            )
        else:
            out.append(
                TaskStateChanged(run_id="r", at=at + 0.01, task_id=t, state="completed", attempt=1)
            )
    out.append(RunFinished(run_id="r", at=at + 0.02, status="failed", report={}))
    return out


async def measure(path: Path, n: int, repeat: int) -> dict[str, list[float]]:
    app = make_app(path, no_store=True, watch_files=False)
    times: dict[str, list[float]] = {}
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        app.animation_level = "none"  # (the tab underline's slide is cosmetic)
        evs = events(n)
        app.replay(evs)
        await pilot.pause()
        compositor = app.screen._compositor
        tabs = app.query_one(TabbedContent)
        for _ in range(repeat):
            gc.collect()
            t0 = time.perf_counter()
            app._show_report()
            times.setdefault("build the report (compute + show)", []).append(
                time.perf_counter() - t0
            )
            for key, name in (("1", "Logs"), ("2", "Timeline"), ("3", "Retries"), ("4", "Report")):
                gc.collect()
                t0 = time.perf_counter()
                app.post_message(events_.Key(key, key))  # (Pilot's press also waits for the
                await pilot.pause()  # tab underline's animation: cosmetic, not the panel)
                compositor.render_update(full=True)
                times.setdefault(f"open {name}", []).append(time.perf_counter() - t0)
                assert tabs.active == f"tab-{name.lower()}", tabs.active
        panel = app.query_one(ReportPanel)
        assert panel.virtual_size.height > n, "every task has its row"
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "many.py"
        path.write_text(FLOW.format(n=args.tasks))
        times = asyncio.run(measure(path, args.tasks, args.repeat))
    print(f"{args.tasks:,} tasks, {args.repeat} rounds (ms): median / max")
    for name, values in times.items():
        ms = [v * 1000 for v in values]
        print(f"  {name:<36} {statistics.median(ms):8.1f} / {max(ms):8.1f}")


if __name__ == "__main__":
    main()
