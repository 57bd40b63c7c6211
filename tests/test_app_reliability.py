"""The app's side of "every run ends and nothing is lost": bodies that raise anything, a run
started the moment the app opens (recorded from its start), a termination signal."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
from pathlib import Path

import pytest

from tui_flow.store.sqlite import RunStore
from tui_flow.ui.app import make_app

SIZE = (120, 35)

RAISES = """
from tui_flow import task

@task
async def first(ctx):
    raise {exc}

@task
def second(ctx):
    raise {exc}

@task(dependencies=[first, second], trigger_rule="all_done")
async def cleanup(ctx):
    ctx.log("cleaned up")
"""


def flow(tmp_path: Path, source: str) -> Path:
    p = tmp_path / "flow.py"
    p.write_text(textwrap.dedent(source))
    return p


async def until(pilot, cond, what: str, rounds: int = 1000) -> None:
    for _ in range(rounds):
        if cond():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize(
    "exc", ["KeyboardInterrupt", "SystemExit(3)", "TimeoutError('api')", "GeneratorExit"]
)
async def test_a_body_raising_anything_fails_its_task_and_the_app_lives(tmp_path, exc):
    app = make_app(flow(tmp_path, RAISES.format(exc=exc)), no_store=True, watch_files=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await until(pilot, lambda: app.last_result is not None, "the run's end")
        result = app.last_result
        assert result.status == "failed"
        assert result.tasks["first"].status == "failed" == result.tasks["second"].status
        assert result.tasks["cleanup"].status == "completed"
        await pilot.press("q")
    assert app.return_value == 1  # quit with q, after a failed run


async def test_a_run_started_as_the_app_opens_is_recorded_from_its_start(tmp_path):
    db = tmp_path / "runs.db"
    source = "from tui_flow import task\n\n@task\nasync def only(ctx):\n    ctx.log('hello')\n"
    app = make_app(flow(tmp_path, source), db=str(db), watch_files=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")  # before the store has had a chance to open
        await until(pilot, lambda: app.last_result is not None, "the run's end")
        run_id = app.last_result.run_id
    async with await RunStore.open(db) as store:
        run = await store.get_run(run_id)
        assert run is not None and run.status == "completed"
        assert [ln.text for ln in await store.task_logs(run_id, "only")] == ["hello"]
        events = await store.events(run_id)
        assert events[0].kind == "run_started" and events[-1].kind == "run_finished"


async def test_sigterm_cancels_the_run_and_closes_the_app(tmp_path):
    source = """
    import asyncio
    from tui_flow import task

    @task
    async def waits(ctx):
        await asyncio.Event().wait()
    """
    app = make_app(flow(tmp_path, source), no_store=True, watch_files=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await until(pilot, lambda: app.running, "the run to start")
        execution = app.execution
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the app: no process dies here
        await asyncio.wait_for(execution.wait(), 10)
        await until(pilot, lambda: app._exit, "the app to exit", rounds=500)
    assert execution.is_done and app.return_value == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is not app._interrupts._on_signal
