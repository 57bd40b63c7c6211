"""The Python API: `tui_flow.run_sync` where a loop is already running (a notebook cell) runs
on a worker thread; runs started from Python may be recorded in the store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

import tui_flow
from tui_flow import Context, Workflow, task
from tui_flow.store import RunStore


def workflow(seen: list[str]) -> Workflow:
    @task()
    async def a(context: Context) -> None:
        seen.append(threading.current_thread().name)
        context.set("a", 1)

    @task(dependencies=[a])
    def b(context: Context) -> None:
        context.set("b", context.get("a") + 1)

    return Workflow("api", [a, b])


def test_run_sync_without_a_loop_runs_here() -> None:
    seen: list[str] = []
    result = tui_flow.run_sync(workflow(seen))
    assert result.status == "completed" and result.context == {"a": 1, "b": 2}
    assert seen == [threading.current_thread().name]


async def test_run_sync_inside_a_running_loop_runs_on_a_worker_thread() -> None:
    """As in a Jupyter cell: no "cannot be called from a running event loop", no coroutine
    left un-awaited."""
    seen: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a never-awaited coroutine would be an error here
        result = tui_flow.run_sync(workflow(seen), {"x": 0})
    assert result.status == "completed" and result.context == {"x": 0, "a": 1, "b": 2}
    assert seen == ["tui-flow run_sync"]
    await asyncio.sleep(0)  # ok: one turn of this loop, which must still run


async def test_run_sync_inside_a_loop_raises_what_the_run_raises(tmp_path: Path) -> None:
    with pytest.raises(tui_flow.LoadError):
        tui_flow.run_sync(tmp_path / "missing.py")


CTRL_C = """
import asyncio, os, signal, sys
import tui_flow
from tui_flow import Context, Workflow, task

@task()
async def waits(context: Context) -> None:
    os.kill(os.getpid(), signal.SIGINT)  # the notebook's "interrupt the kernel"
    await asyncio.Event().wait()  # the body's workload: until cancelled

async def cell() -> None:
    try:
        tui_flow.run_sync(Workflow("w", [waits]), db=sys.argv[1])
    except KeyboardInterrupt:
        print("KeyboardInterrupt")

loop = asyncio.new_event_loop()  # a kernel's loop: SIGINT raises KeyboardInterrupt
loop.run_until_complete(cell())
"""


def test_ctrl_c_cancels_the_run_on_the_worker_thread(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    script = tmp_path / "cell.py"
    script.write_text(CTRL_C)
    out = subprocess.run(
        [sys.executable, str(script), str(db)], capture_output=True, text=True, timeout=60
    )
    assert out.stdout == "KeyboardInterrupt\n", out.stderr

    async def status() -> str:
        async with await RunStore.open(db) as store:
            return (await store.list_runs())[0].status

    assert asyncio.run(status()) == "cancelled"  # wound down and recorded before raising


def test_runs_from_python_may_be_recorded(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    first = tui_flow.run_sync(workflow([]), db=db)

    async def more() -> list[str]:
        second = await tui_flow.run(workflow([]), db=str(db))
        async with await RunStore.open(db) as store:
            third = await tui_flow.run(workflow([]), store=store)  # left open
            assert store.path == db
            runs = await store.list_runs()
            assert await store.run_context(first.run_id) == {"a": 1, "b": 2}
            assert (await store.get_run(third.run_id)).status == "completed"
        assert {second.run_id, third.run_id} <= {r.run_id for r in runs}
        return [r.run_id for r in runs]

    ids = asyncio.run(more())
    assert len(ids) == 3 and first.run_id in ids
    assert tui_flow.run_sync(workflow([])).run_id  # not recorded unless asked

    os.environ["TUI_FLOW_DB"] = str(tmp_path / "env.db")
    try:
        rec = tui_flow.run_sync(workflow([]), store=True)
    finally:
        del os.environ["TUI_FLOW_DB"]

    async def check() -> None:
        async with await RunStore.open(tmp_path / "env.db") as store:
            assert [r.run_id for r in await store.list_runs()] == [rec.run_id]

    asyncio.run(check())


async def test_an_open_store_cannot_cross_to_the_worker_thread(tmp_path: Path) -> None:
    async with await RunStore.open(tmp_path / "runs.db") as store:
        with pytest.raises(TypeError, match=r"await tui_flow\.run"):
            tui_flow.run_sync(workflow([]), store=store)


async def test_the_engine_run_sync_refuses_inside_a_loop_without_a_stray_coroutine() -> None:
    from tui_flow.engine.scheduler import run_sync

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match=r"await tui_flow\.run"):
            run_sync(workflow([]))
