"""Waits and cancels that say what happens: a process task waiting for a worker process says
so (not "waits for a free slot"), and `x` on a thread body, which cannot be stopped, leaves it
running, saying so, until its body returns; then it is cancelled."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from test_app import SIZE, app_for, until, write_flow

from tui_flow import Context, Workflow, load, task
from tui_flow.engine import Execution, TaskStateChanged, run
from tui_flow.engine.events import CANCEL_WAITS_FOR_THREAD, WAITS_FOR_WORKER
from tui_flow.engine.runners import get_process_pool

PROCESSES = """
from tui_flow import task, Context, Workflow

def body(context: Context) -> None:
    sum(range(1000))

workflow = Workflow(
    "procs",
    [task(id=f"p{{i}}", runner="process")(body) for i in range({n})],
    max_concurrency={n},
)
"""


async def test_a_process_task_waiting_for_a_worker_says_so(tmp_path: Path) -> None:
    n = get_process_pool().size + 2  # more slots than worker processes: some must wait
    flow = tmp_path / "procs.py"
    flow.write_text(PROCESSES.format(n=n))
    events: list[TaskStateChanged] = []
    result = await asyncio.wait_for(
        run(
            load(flow).workflow(),
            subscribers=[lambda e: isinstance(e, TaskStateChanged) and events.append(e)],
        ),
        60,
    )
    assert result.ok
    waited = [e.task_id for e in events if e.state == "pending" and e.reason == WAITS_FOR_WORKER]
    assert len(waited) >= 2  # at least the two beyond the pool's size
    for tid in waited:  # each wait ends with its body running, and the view counts it
        states = [e.state for e in events if e.task_id == tid]
        assert states[states.index("pending") + 1] == "running"
    assert all(result.view.tasks[t].worker_wait_s >= 0 for t in waited)
    assert result.report.breakdown.total() == pytest.approx(result.report.wall_s)


def gated_workflow() -> tuple[Workflow, threading.Event, threading.Event]:
    started, gate = threading.Event(), threading.Event()

    @task
    def slow(context: Context) -> None:  # a sync body: it runs in a thread
        started.set()
        gate.wait(30)
        print("still printing after x")
        context.set("slow", 1)

    @task(dependencies=[slow])
    async def after(context: Context) -> None:
        context.log("after")

    return Workflow("gated", [slow, after]), started, gate


async def test_cancelling_a_thread_body_waits_for_it_to_return() -> None:
    wf, started, gate = gated_workflow()
    events: list[TaskStateChanged] = []
    ex = Execution(wf, subscribers=[lambda e: isinstance(e, TaskStateChanged) and events.append(e)])
    ex.start()
    await asyncio.wait_for(asyncio.to_thread(started.wait, 10), 15)
    assert ex.cancel_task("slow")
    # still running, and saying why: the thread cannot be stopped
    assert ex.view.tasks["slow"].state == "running"
    assert ex.view.tasks["slow"].reason == CANCEL_WAITS_FOR_THREAD
    assert ex.cancel_task("slow")  # asked twice: said once
    assert [e.reason for e in events if e.task_id == "slow"].count(CANCEL_WAITS_FOR_THREAD) == 1
    gate.set()
    result = await asyncio.wait_for(ex.wait(), 15)
    slow = result.tasks["slow"]
    assert slow.status == "cancelled"
    assert result.view.tasks["slow"].reason == "cancelled by user (its body ran to its end)"
    assert "slow" not in result.context  # what it did is dropped
    assert result.tasks["after"].status in ("skipped", "cancelled")


THREADED = """
import threading
from tui_flow import task, Context

gate = threading.Event()
started = threading.Event()

@task
def slow(context: Context) -> None:
    started.set()
    gate.wait(30)
    print("done waiting")

@task(dependencies=[slow])
async def after(context: Context) -> None:
    context.log("after")
"""


async def test_x_on_a_thread_task_in_the_app_says_it_keeps_running(tmp_path: Path) -> None:
    app = app_for(write_flow(tmp_path, THREADED))
    async with app.run_test(size=SIZE) as pilot:
        module = app.workflow.tasks["slow"].fn.__globals__
        await pilot.press("r")
        await until(pilot, lambda: app.session.view.tasks["slow"].state == "running", "slow")
        await asyncio.wait_for(asyncio.to_thread(module["started"].wait, 10), 15)
        app.tree.select_task("slow")
        await pilot.press("x")
        await until(
            pilot,
            lambda: "runs until its body returns" in str(app.tree.label_of("slow")),
            "the label to say so",
        )
        label = str(app.tree.label_of("slow"))
        assert "running" in label and "cancelled" not in label
        assert any("cannot be stopped" in str(n.message) for n in app._notifications)
        module["gate"].set()
        await asyncio.wait_for(app.execution.wait(), 15)
        await until(pilot, lambda: "cancelled" in str(app.tree.label_of("slow")), "the cancel")
        assert app.session.view.tasks["slow"].state == "cancelled"


class SlowToStart:
    """A remote runner (as a Dask cluster) that is not started yet: it starts when the first
    attempt asks, once `ready` is set."""

    name = "fake"

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.started = False

    def describe(self) -> str:
        return "fake cluster"

    async def start(self) -> SlowToStart:
        await self.ready.wait()
        self.started = True
        return self

    async def run(self, job, on_message):  # type: ignore[no-untyped-def]
        return ("done", {}, None)

    async def close(self) -> None:
        pass


async def test_a_cluster_starting_is_worker_start_up_not_running() -> None:
    @task
    def crunch(context: Context) -> None:  # sync: it goes to the remote runner
        pass

    remote = SlowToStart()
    events: list[TaskStateChanged] = []
    ex = Execution(
        Workflow("w", [crunch]),
        remote=remote,
        subscribers=[lambda e: isinstance(e, TaskStateChanged) and events.append(e)],
    )
    said = asyncio.Event()
    ex.subscribe(lambda e: getattr(e, "reason", None) == WAITS_FOR_WORKER and said.set())
    ex.start()
    await asyncio.wait_for(said.wait(), 10)  # the attempt says what it waits for
    assert ex.view.tasks["crunch"].state == "pending"
    remote.ready.set()
    result = await asyncio.wait_for(ex.wait(), 10)
    assert result.ok
    assert [e.state for e in events] == ["pending", "running", "completed"]
    assert result.report.breakdown.worker_wait_s == pytest.approx(
        result.view.tasks["crunch"].worker_wait_s
    )


def test_the_timeline_shades_a_wait_for_a_worker_not_as_a_slot_wait() -> None:
    from tui_flow.engine.events import RunStarted, TaskInfo
    from tui_flow.engine.state import RunView
    from tui_flow.ui.widgets.timeline import WAIT, WORKER, bar_row

    S = TaskStateChanged
    events = [
        RunStarted(run_id="r", at=0, workflow="w", max_concurrency=2, tasks=[TaskInfo(id="p")]),
        S(run_id="r", at=0.0, task_id="p", state="pending", reason=WAITS_FOR_WORKER),
    ]
    view = RunView.from_events(events)
    waiting = bar_row(view.tasks["p"], view, 0.0, 10.0, 10, now=5.0, critical=False).plain
    assert waiting.count(WORKER) == 5 and WAIT not in waiting  # live: shaded up to now
    view = RunView.from_events(
        [
            *events,
            S(run_id="r", at=6.0, task_id="p", state="running", attempt=1),
            S(run_id="r", at=10.0, task_id="p", state="completed", attempt=1),
        ]
    )
    done = bar_row(view.tasks["p"], view, 0.0, 10.0, 10, now=10.0, critical=False).plain
    assert done.startswith(WORKER * 6) and WAIT not in done
