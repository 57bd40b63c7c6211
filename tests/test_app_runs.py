"""Runs stay on screen: a reload marks a finished run stale instead of erasing it; from a past
run `b` goes back to the live one (and history's entry for the live run is the live view);
the footer's keys follow the run even without terminal focus; ctrl+c cancels, then quits."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

from textual.widgets._footer import FooterKey

from tui_flow.ui.app import TuiFlowApp, make_app
from tui_flow.ui.widgets.header import RunHeader

SIZE = (140, 40)

TWO = """
from tui_flow import task, Context, Workflow

@task
def a(context: Context) -> None:
    context.log("a ran")

@task(dependencies=[a])
def b(context: Context) -> None:
    context.log("b ran")
"""

FOREVER = """
import asyncio
from tui_flow import task, Context, Workflow

@task
async def forever(context: Context) -> None:
    await asyncio.Event().wait()
"""


def app_for(tmp_path: Path, source: str, **kw: Any) -> tuple[TuiFlowApp, Path]:
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent(source))
    kw.setdefault("no_store", True)
    return make_app(path, watch_files=False, **kw), path


async def until(pilot: Any, cond: Any, what: str) -> None:
    for _ in range(500):
        if cond():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def run_to_end(pilot: Any, app: TuiFlowApp) -> None:
    assert app.start_run()
    assert app.execution is not None
    await asyncio.wait_for(app.execution.wait(), 20)
    await until(pilot, lambda: app.session.view.status == "completed", "the end on screen")
    await pilot.pause()


def header(app: TuiFlowApp) -> str:
    return app.query_one(RunHeader)._last


async def test_a_reload_after_a_run_marks_it_stale_and_keeps_it(tmp_path: Path) -> None:
    app, path = app_for(tmp_path, TWO)
    async with app.run_test(size=SIZE) as pilot:
        await run_to_end(pilot, app)
        path.write_text(
            textwrap.dedent(TWO)
            + "\n@task(dependencies=[b])\ndef c(context: Context) -> None:\n    pass\n"
        )
        await app.reload()
        await pilot.pause()
        assert app.stale and app.session.view.status == "completed"
        assert list(app.tree.nodes_by_id) == ["a", "b"]  # tree, header and logs kept
        assert "completed" in app.tree.label_of("b").plain
        assert "completed" in header(app) and "stale: file changed, r to run" in header(app)
        assert "b ran" in app.log_view.text()
        await pilot.press("r")
        await asyncio.wait_for(app.execution.wait(), 20)
        await until(pilot, lambda: app.session.view.status == "completed", "the new run")
        assert list(app.tree.nodes_by_id) == ["a", "b", "c"] and not app.stale
        assert "stale" not in header(app)


async def test_back_to_the_live_run_from_a_past_one(tmp_path: Path) -> None:
    app, _ = app_for(tmp_path, TWO, db=str(tmp_path / "runs.db"), no_store=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, app.store_ready.is_set, "the store")
        await run_to_end(pilot, app)
        first = app.session.view.run_id
        await run_to_end(pilot, app)
        latest = app.session.view.run_id
        live = app.session
        keys = {k.action: k for k in app.query(FooterKey)}
        assert "back_to_live" not in keys  # no past run shown: no such key
        app.open_past_run(first)
        await until(pilot, lambda: app.past_run == first, "the past run")
        await pilot.pause()
        assert f"run {first} (past)" in header(app)
        keys = {k.action: k for k in app.query(FooterKey)}
        assert "back_to_live" in keys and not keys["back_to_live"].disabled
        await pilot.press("b")
        await pilot.pause()
        assert app.session is live and app.past_run is None
        assert f"run {latest}" in header(app) and "(past)" not in header(app)
        # choosing the latest run from history shows it live, not a frozen "(past)" copy
        app.open_past_run(latest)
        await pilot.pause()
        await app.workers.wait_for_complete()
        assert app.session is live and app.past_run is None


async def test_footer_keys_follow_the_run_without_terminal_focus(tmp_path: Path) -> None:
    app, _ = app_for(tmp_path, FOREVER)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.app_focus = False  # a presenter's window without focus: the keys still follow
        keys = {k.action: k for k in app.query(FooterKey)}
        assert keys["cancel"].disabled
        app.start_run()
        await until(pilot, lambda: not keys["cancel"].disabled, "c Cancel to light up")
        assert keys["run"].disabled
        app.execution.cancel()
        await asyncio.wait_for(app.execution.wait(), 10)


async def test_ctrl_c_cancels_the_run_then_quits(tmp_path: Path) -> None:
    app, _ = app_for(tmp_path, FOREVER)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await until(pilot, lambda: app.session.view.tasks["forever"].state == "running", "running")
        await pilot.press("ctrl+c")
        await asyncio.wait_for(app.execution.wait(), 10)
        await until(pilot, lambda: app.session.view.status == "cancelled", "the cancel")
        assert app.is_running  # the app stays: the run is cancelled, on screen
        await pilot.press("ctrl+c")
        await until(pilot, lambda: not app.is_running, "the app to quit")
    assert app.return_value == 130
