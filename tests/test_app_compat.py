"""The app shows a cloaca workflow like a native one: the tree, retries, a skip's reason, the
Details panel and the report (driven with Pilot)."""

from __future__ import annotations

import asyncio
import io
import textwrap
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.widgets import Static

from tui_flow.ui.app import TuiFlowApp, make_app
from tui_flow.ui.widgets.retries import RetriesTable

SIZE = (140, 40)

CLOACA = """
import cloaca

calls = {"n": 0}

with cloaca.WorkflowBuilder("compat_demo") as builder:
    builder.description("a cloaca workflow in the app")

    @cloaca.task(id="fetch", retry_attempts=3, retry_delay_ms=0)
    def fetch(context):
        calls["n"] += 1
        if calls["n"] < 2:
            raise ConnectionError("api down")
        context.set("rows", [1, 2, 3])
        return context

    @cloaca.task(
        id="audit",
        dependencies=["fetch"],
        trigger_rules=cloaca.context_value("do_audit", "Equals", True),
    )
    def audit(context):
        return context

    @cloaca.task(id="publish", dependencies=["audit"])
    def publish(context):
        context.set("published", len(context.get("rows")))
        return context
"""


def plain(app: TuiFlowApp, selector: str) -> str:
    console = Console(width=200, no_color=True, file=io.StringIO(), record=True)
    console.print(app.query_one(selector, Static).content)
    return console.export_text()


async def until(pilot: Any, cond: Any, what: str, rounds: int = 500) -> None:
    for _ in range(rounds):
        if cond():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_the_app_shows_a_cloaca_workflow_tree_retries_skip_and_report(
    tmp_path: Path,
) -> None:
    path = tmp_path / "demo.py"
    path.write_text(textwrap.dedent(CLOACA))
    app = make_app(path, no_store=True, watch_files=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert sorted(app.tree.nodes_by_id) == ["audit", "fetch", "publish"]
        await pilot.press("r")
        assert app.execution is not None
        await asyncio.wait_for(app.execution.wait(), 20)
        await until(pilot, lambda: app.last_result is not None, "the run's end to be shown")
        await pilot.pause()
        labels = {tid: str(app.tree.label_of(tid)) for tid in app.tree.nodes_by_id}
        assert "completed" in labels["fetch"] and "2 attempts" in labels["fetch"]
        assert "skipped" in labels["audit"] and "do_audit is not set" in labels["audit"]
        # cloaca's default trigger rule: publish runs after a skipped dependency
        assert "completed" in labels["publish"]
        assert app.last_result.status == "completed" and app.exit_code == 0
        assert app.query_one(RetriesTable).row_count == 1
        app.tree.select_task("audit")
        await pilot.pause()
        details = plain(app, "#details-body")
        assert "runs if" in details and "do_audit == true" in details
        report = app.query_one("#report").text()
        assert "speedup" in report and "critical path" in report
        assert "do_audit is not set" in report
