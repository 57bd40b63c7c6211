"""The responsive layout: panes stacked below 100 columns with Details behind `i`, header and
footer keeping what matters at every width, maximize (`m`, Esc undoes), hide the task view
(`h`), the right pane scrolled without moving the focus (`J`/`K`), Tab straight to the logs."""

from __future__ import annotations

import asyncio
import re
import textwrap
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from textual.widgets import TabbedContent
from textual.widgets._footer import FooterKey

from tui_flow.engine.events import RunStarted, TaskInfo, TaskStateChanged
from tui_flow.engine.state import RunView
from tui_flow.ui.app import TuiFlowApp, make_app
from tui_flow.ui.widgets.header import RunHeader, header_text
from tui_flow.ui.widgets.log_view import LogView

FLOW = """
from tui_flow import task, Context, Workflow

@task
def extract_the_customer_records(context: Context) -> None:
    for i in range(200):
        context.log(f"row {i} " + "x" * 150)

@task(dependencies=[extract_the_customer_records])
def clean_the_customer_records(context: Context) -> None:
    pass

@task(dependencies=[extract_the_customer_records])
def enrich(context: Context) -> None:
    pass

workflow = Workflow("a_rather_long_workflow_name", tasks=[
    extract_the_customer_records, clean_the_customer_records, enrich,
], max_concurrency=2)
"""


def app_for(tmp_path: Path) -> TuiFlowApp:
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent(FLOW))
    return make_app(path, no_store=True, watch_files=False)


async def run_to_end(pilot: Any, app: TuiFlowApp) -> None:
    await pilot.press("r")
    assert app.execution is not None
    await asyncio.wait_for(app.execution.wait(), 20)
    for _ in range(500):
        if app.last_result is not None:
            break
        await pilot.pause(0.01)
    await pilot.pause()


def finished_view() -> RunView:
    view = RunView()
    infos = [TaskInfo(id=f"t{i}") for i in range(30)]
    view.apply(
        RunStarted(
            run_id="abcdef123456", at=100.0, workflow="w" * 30, max_concurrency=4, tasks=infos
        )
    )
    for i in range(30):
        view.apply(TaskStateChanged(run_id="r", at=101.0, task_id=f"t{i}", state="running"))
    return view


@given(width=st.integers(76, 240), past=st.booleans())
def test_the_header_keeps_status_elapsed_done_and_slots_at_every_width(
    width: int, past: bool
) -> None:
    line = header_text(
        finished_view(), "some/long/path/to/flow.py", 107.5, width=width, past=past, executor="dask"
    )
    text = line.plain
    assert line.cell_len <= width
    for part in ("running", "elapsed 7.50 s", "0/30 done", "slots"):
        assert part in text, (width, text)


async def test_narrow_screen_stacks_the_panes_and_keeps_help_and_quit(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await run_to_end(pilot, app)
        assert app.screen.has_class("-narrow")
        left, tabs = app.query_one("#left"), app.query_one("#tabs")
        assert left.region.bottom <= tabs.region.y  # stacked
        assert tabs.region.width >= 78  # log lines get the full width
        await pilot.press("1")  # the report opened at the run's end: the logs
        log = app.query_one(LogView)
        log.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        first = log.render_lines(log.region.reset_offset)[0].text
        # a narrow view keeps the task column short: `extract_the_c… │ row 0 xxx`
        assert first.index("│") <= 15 and "row 0 " in first
        details = app.query_one("#details")
        assert not details.display
        await pilot.press("i")
        assert details.display and details.region.height >= 4
        header = app.query_one(RunHeader)._last
        for part in ("completed", "elapsed", "3/3 done", "slots"):
            assert part in header
        shown = {
            k.description for k in app.query(FooterKey) if k.region.width and k.region.right <= 80
        }
        assert {"Help", "Quit", "Run", "Cancel"} <= shown
        for row in app.tree.rows:  # statuses are never cut
            line = app.tree.label_of(row.data).plain
            assert "completed" in line
        tree_text = "\n".join(s.text for s in app.tree.render_lines(app.tree.region.reset_offset))
        assert "extract_the_customer_records  completed" in tree_text


async def test_wide_screen_side_by_side_with_a_bounded_task_view(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        assert app.screen.has_class("-wide")
        left, tabs = app.query_one("#left"), app.query_one("#tabs")
        assert left.region.y == tabs.region.y and left.region.width <= 72
        assert tabs.region.width >= 120
        assert app.query_one("#details").display
        labels = [str(t.label) for t in app.query_one(TabbedContent).query("ContentTab")]
        assert labels == ["1 Logs", "2 Timeline", "3 Retries", "4 Report"]


async def test_maximize_escape_hide_tasks_and_scroll_the_panel(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await run_to_end(pilot, app)
        assert app.focused is app.tree
        await pilot.press("m")
        assert app.screen.maximized is app.tree
        await pilot.press("escape")
        assert app.screen.maximized is None
        # J / K scroll the panel shown (the logs here) while the task view keeps the focus
        await pilot.press("1")  # the report opened by itself at the run's end
        app.set_focus(app.tree)
        log = app.query_one(LogView)
        log.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        await pilot.press("J", "J")
        await pilot.pause()
        assert log.scroll_y == 6 and app.focused is app.tree
        await pilot.press("K")
        await pilot.pause()
        assert log.scroll_y == 3
        log.focus()  # j / k scroll the focused panel, as they move in the task view
        await pilot.press("j", "j")
        await pilot.pause()
        assert log.scroll_y == 5
        await pilot.press("k")
        await pilot.pause()
        assert log.scroll_y == 4
        app.tree.focus()
        # Tab goes to the panels' content (Details, then the logs), never to the tab bar
        await pilot.press("tab")
        assert app.focused is app.query_one("#details")
        await pilot.press("tab")
        assert app.focused is log
        await pilot.press("m")
        assert app.screen.maximized is app.query_one("#tabs")
        await pilot.press("escape")
        assert app.screen.maximized is None
        await pilot.press("shift+tab", "shift+tab")
        assert app.focused is app.tree
        await pilot.press("h")
        await pilot.pause()
        assert not app.query_one("#left").display
        assert app.focused is log
        assert app.query_one("#tabs").region.width >= 138
        await pilot.press("h")
        await pilot.pause()
        assert app.query_one("#left").display


async def test_w_wraps_long_log_lines_under_their_text(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await run_to_end(pilot, app)
        await pilot.press("1")
        log = app.query_one(LogView)
        entries = len(log.entries)
        assert log.virtual_size.height == entries  # one row per line: long ones are cut
        await pilot.press("w")
        await pilot.pause()
        assert log.wrap and log.virtual_size.height > entries
        assert log.virtual_size.width <= log.size.width  # nothing to scroll sideways
        log.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        rows = [s.text for s in log.render_lines(log.region.reset_offset)]
        first = next(i for i, r in enumerate(rows) if "row 0 " in r)
        # the line goes on, indented under its text, on the rows after it
        pad = log._pad()
        assert rows[first + 1][:pad].strip() == "" and "x" in rows[first + 1][pad:]
        joined = "".join(r[pad:].rstrip() for r in rows[first : first + 3])
        assert "row 0 " + "x" * 100 in joined
        await pilot.press("w")
        await pilot.pause()
        assert not log.wrap and log.virtual_size.height == entries


async def test_T_shows_when_each_log_line_was_written(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await run_to_end(pilot, app)
        await pilot.press("1")
        log = app.query_one(LogView)
        assert not re.match(r"\d\d:\d\d:\d\d\.\d\d\d ", log.text())
        await pilot.press("T")
        await pilot.pause()
        lines = log.text().splitlines()
        assert lines and all(re.match(r"\d\d:\d\d:\d\d\.\d\d\d ", ln) for ln in lines)
        shot = app.export_screenshot()
        assert re.search(r"\d\d:\d\d:\d\d\.\d\d\d", shot)
        await pilot.press("T")
        await pilot.pause()
        assert not re.match(r"\d\d:\d\d:\d\d\.\d\d\d ", log.text())


async def test_the_footer_shows_only_keys_that_fit_beside_the_palette(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        keys = list(app.query(FooterKey))
        palette = next(k for k in keys if k.has_class("-command-palette"))
        others = [k for k in keys if k is not palette]
        assert [k.action for k in others[:4]] == ["run", "cancel", "help", "quit"]
        assert all(k.region.right <= palette.region.x for k in others)
        assert len(others) < len([b for b in app.BINDINGS if getattr(b, "show", True)])
        await pilot.resize_terminal(200, 40)
        await pilot.pause()
        await pilot.pause()
        wide = [k for k in app.query(FooterKey) if not k.has_class("-command-palette")]
        assert len(wide) > len(others)
