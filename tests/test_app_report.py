"""The end of a run in the app (Pilot): the failure in plain sight (cursor, Details with the
traceback, the error inline in the task's log, the report's error lines) and the Report
panel opening by itself unless the user chose another panel during the run."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from rich.console import Console
from test_app import FAILING, GATED, app_for, run_to_end, until, write_flow
from textual.widgets import TabbedContent

from tui_flow.ui.widgets.details import details_renderable

SIZE = (140, 40)
SMALL = (80, 24)

RETRIED = """
from tui_flow import task, Context

def parse(row):
    return int(row)

@task
async def fetch(context: Context) -> None:
    context.log("fetching")

@task(dependencies=[fetch], retry_attempts=1)
def transform(context: Context) -> None:
    print("transforming")
    parse("x")
"""


def text_of(renderable: object, width: int = 200) -> str:
    console = Console(width=width, no_color=True, file=io.StringIO(), record=True)
    console.print(renderable)
    return console.export_text()


async def test_a_failure_is_in_plain_sight_when_the_run_ends(tmp_path: Path) -> None:
    path = write_flow(tmp_path, RETRIED)
    app = app_for(path)
    async with app.run_test(size=SIZE) as pilot:
        await run_to_end(pilot, app)
        await until(pilot, lambda: app.tree.selected_id == "transform", "the cursor on it")
        # Details: the error, the user's frames (file:line, source), then the whole traceback
        view = app.session.view
        details = text_of(details_renderable(view.tasks["transform"], view, app.clock()))
        assert "ValueError: invalid literal for int()" in details
        mine = details.index("your code (most recent call last):")
        assert details.index("full traceback:") > mine
        assert f"{path}:14 in transform" in details and f"{path}:5 in parse" in details
        assert "return int(row)" in details
        # the task's log: each attempt's error inline, after its lines
        lines = [e for e in app.session.lines_of("transform")]
        texts = [e[2] for e in lines]
        first = texts.index(
            "✖ attempt 1/2 failed: ValueError: invalid literal for int() with base 10: 'x'"
        )
        assert texts[first - 1] == "transforming"
        assert any(t.startswith(f"    at {path}:5 in parse") for t in texts[first:])
        assert "✖ attempt 2/2 failed" in "\n".join(texts[first + 1 :])
        # the report opened by itself; its error is given the whole width below the table
        assert app.query_one(TabbedContent).active == "tab-report"
        report = app.query_one("#report").text().replace("\n", " ")  # (wrapped to its width)
        assert "transform: ValueError: invalid literal for int() with base 10: 'x'" in report


async def test_the_report_opens_at_80x24_and_is_readable(tmp_path: Path) -> None:
    app = app_for(write_flow(tmp_path, FAILING))
    async with app.run_test(size=SMALL) as pilot:
        await run_to_end(pilot, app)
        assert app.query_one(TabbedContent).active == "tab-report"
        assert app.tree.selected_id == "check"
        # the error reads on one line, not five characters a line down a narrow column
        text = app.query_one("#report").text()
        assert "check: ValueError: row 12 has no price" in text.replace("\n", " ")
        assert "speedup" in text and "possible" in text
        # whatever the pane's width: task rows cut to what fits, no line wider
        panel = app.query_one("#report")
        width = panel.scrollable_content_region.width
        narrow = any(line.startswith("speedup: ") for line in text.splitlines())
        assert narrow == (width < 70)  # under 70 columns, each figure on its own lines
        assert max(len(line) for line in text.splitlines()) <= width
        assert panel.virtual_size.width <= width  # nothing to scroll sideways to


async def test_a_panel_chosen_during_the_run_stays(tmp_path: Path) -> None:
    path = write_flow(tmp_path, GATED)
    app = app_for(path)
    async with app.run_test(size=SIZE) as pilot:
        gate = app.workflow.tasks["slow"].fn.__globals__["gate"]
        await pilot.press("r")
        await until(pilot, lambda: app.session.view.tasks["slow"].state == "running", "slow")
        await pilot.press("2")  # the user looks at the timeline
        gate.set()
        await asyncio.wait_for(app.execution.wait(), 10)
        await until(pilot, lambda: app.last_result is not None, "the end to be shown")
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "tab-timeline"
        assert "completed" in app.query_one("#report").text()  # the report is there when wanted
