"""The Textual app driven with Pilot: runs, logs, search, retries, failures, cancel, reload,
history, re-runs, and an error inside the app that must not kill it."""

from __future__ import annotations

import asyncio
import io
import textwrap
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from tui_flow.runs import downstream, plan_reuse
from tui_flow.ui.app import TuiFlowApp, make_app
from tui_flow.ui.summary import summary_lines
from tui_flow.ui.widgets.history import HistoryScreen
from tui_flow.ui.widgets.retries import RetriesTable

SIZE = (140, 40)

BASIC = """
import asyncio
from tui_flow import task, Context, Workflow

@task
async def extract(context: Context) -> None:
    for i in range(30):
        context.log(f"extract row {i}")
    context.set("rows", 30)

@task(dependencies=[extract])
def clean(context: Context) -> None:
    for i in range(5):
        print(f"clean row {i}")
    context.set("clean", True)

@task(dependencies=[extract])
async def enrich(context: Context) -> None:
    context.progress(1, 2, "half")
    context.log("enrich done")

@task(dependencies=[clean, enrich])
async def publish(context: Context) -> None:
    context.log("published")

workflow = Workflow("basic", tasks=[extract, clean, enrich, publish], max_concurrency=2)
"""

FLAKY = """
from tui_flow import task, Context, Workflow

calls = {"n": 0}

@task(retry_attempts=3, retry_delay_ms=0)
async def flaky(context: Context) -> None:
    calls["n"] += 1
    if calls["n"] < 3:
        raise ConnectionError(f"api down (call {calls['n']})")
    context.log("api answered")

@task(dependencies=[flaky])
async def after(context: Context) -> None:
    context.log("after")
"""

FAILING = """
from pathlib import Path
from tui_flow import task, Context, Workflow

FLAG = Path(__file__).with_name("fixed.txt")

@task
async def load(context: Context) -> None:
    context.set("loaded", 1)

@task(dependencies=[load])
async def check(context: Context) -> None:
    if not FLAG.exists():
        raise ValueError("row 12 has no price")
    context.log("check ok")

@task(dependencies=[check])
async def report(context: Context) -> None:
    context.log(f"report on {context.get('loaded')}")

@task(dependencies=[load])
async def side(context: Context) -> None:
    context.log("side")
"""

GATED = """
import asyncio
import threading
from tui_flow import task, Context, Workflow

gate = threading.Event()

@task
def slow(context: Context) -> None:
    gate.wait(30)

@task(dependencies=[slow])
async def next_one(context: Context) -> None:
    context.log("next")
"""

FOREVER = """
import asyncio
from tui_flow import task, Context, Workflow

@task
async def forever(context: Context) -> None:
    context.log("waiting forever")
    await asyncio.Event().wait()

@task(dependencies=[forever])
async def never(context: Context) -> None:
    pass

@task
async def quick(context: Context) -> None:
    context.log("quick")
"""


def write_flow(tmp_path: Path, source: str, name: str = "flow.py") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(source))
    return p


def app_for(path: Path, **kw: Any) -> TuiFlowApp:
    kw.setdefault("no_store", True)
    kw.setdefault("watch_files", False)
    return make_app(path, **kw)


async def until(pilot: Any, cond: Any, what: str, rounds: int = 500) -> None:
    """Let the app work (Pilot pauses) until `cond()` holds."""
    for _ in range(rounds):
        if cond():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def run_to_end(pilot: Any, app: TuiFlowApp) -> None:
    await pilot.press("r")
    assert app.execution is not None
    await asyncio.wait_for(app.execution.wait(), 20)
    await until(pilot, lambda: app.last_result is not None, "the run's end to be shown")
    await pilot.pause()


def plain(app: TuiFlowApp, selector: str) -> str:
    """What a Static shows, as plain text."""
    console = Console(width=200, no_color=True, file=io.StringIO(), record=True)
    console.print(app.query_one(selector, Static).content)
    return console.export_text()


def labels(app: TuiFlowApp) -> dict[str, str]:
    return {tid: str(app.tree.label_of(tid)) for tid in app.tree.nodes_by_id}


async def test_idle_screen_shows_every_task_once(tmp_path: Path) -> None:
    app = app_for(write_flow(tmp_path, BASIC))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        lab = labels(app)
        assert sorted(lab) == ["clean", "enrich", "extract", "publish"]
        assert all("pending" in v for v in lab.values())
        # publish (a fan-in) hangs under neither of its dependencies and names both
        assert app.tree.parents["publish"] is None
        assert "after: " in lab["publish"]
        assert "clean" in lab["publish"] and "enrich" in lab["publish"]
        header = plain(app, "#header")
        assert "basic" in header and "no run yet" in header and "slots 0/2" in header


async def test_run_reaches_final_states_and_report(tmp_path: Path) -> None:
    app = app_for(write_flow(tmp_path, BASIC))
    async with app.run_test(size=SIZE) as pilot:
        await run_to_end(pilot, app)
        lab = labels(app)
        assert all("✔" in v and "completed" in v for v in lab.values()), lab
        assert app.last_result is not None and app.last_result.status == "completed"
        assert app.exit_code == 0
        header = plain(app, "#header")
        assert "completed" in header and "4/4 done" in header
        # every log line reached the merged view, with its task prefix
        text = app.log_view.text()
        assert "extract row 29" in text and "published" in text
        assert text.splitlines()[0].startswith("extract")
        report = app.query_one("#report").text()
        assert "speedup" in report and "critical path" in report
        assert "slowest tasks" in report
        await pilot.press("4")
        assert app.query_one("TabbedContent").active == "tab-report"
        await pilot.press("2")
        timeline = app.timeline
        assert timeline.rows == app.session.view.order
        assert timeline.critical and timeline.critical <= set(app.session.view.order)


async def test_select_task_filters_logs_and_copy(tmp_path: Path) -> None:
    app = app_for(write_flow(tmp_path, BASIC))
    async with app.run_test(size=SIZE) as pilot:
        await run_to_end(pilot, app)
        assert app.tree.select_task("clean")
        await pilot.pause()
        await pilot.press("l")
        await pilot.pause()
        entries = list(app.log_view.entries)
        assert [e[2] for e in entries] == [f"clean row {i}" for i in range(5)]
        assert all(e[0] == "clean" for e in entries)
        assert "task clean" in plain(app, "#log-status")
        details = plain(app, "#details-body")
        assert "clean" in details and "extract" in details and "wrote" in details
        # the filter follows the selection
        app.tree.select_task("enrich")
        await pilot.pause()
        assert [e[2] for e in app.log_view.entries] == ["enrich done"]
        await pilot.press("y")
        assert app.clipboard == "enrich done"
        await pilot.press("l")
        assert len(app.log_view.entries) == 37


async def test_search_next_and_previous(tmp_path: Path) -> None:
    app = app_for(write_flow(tmp_path, BASIC))
    async with app.run_test(size=SIZE) as pilot:
        await run_to_end(pilot, app)
        await pilot.press("slash")
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "log-search"
        await pilot.press(*"row 1", "enter")
        await pilot.pause()
        view = app.log_view
        # "row 1" is in: extract row 1, 10..19, clean row 1
        assert len(view.matches) == 12
        last = view.current_line
        assert last is not None and view.entries[last][2] == "clean row 1"
        assert not view.following
        await pilot.press("N")
        assert view.entries[view.current_line][2] == "extract row 19"
        await pilot.press("n")
        assert view.entries[view.current_line][2] == "clean row 1"
        await pilot.press("n")  # wraps to the first match
        assert view.entries[view.current_line][2] == "extract row 1"
        assert "search 'row 1': 1/12" in plain(app, "#log-status")
        assert "paused (f: follow)" in plain(app, "#log-status")
        await pilot.press("f")
        assert view.following


async def test_retries_panel(tmp_path: Path) -> None:
    app = app_for(write_flow(tmp_path, FLAKY))
    async with app.run_test(size=SIZE) as pilot:
        await run_to_end(pilot, app)
        table = app.query_one(RetriesTable)
        assert table.row_count == 2
        row = [str(c) for c in table.get_row_at(0)]
        assert row[1] == "flaky" and row[2] == "1/4 failed" and "api down (call 1)" in row[3]
        tab = app.query_one("TabbedContent").get_tab("tab-retries")
        assert "Retries (2)" in str(tab.label)
        assert "3 attempts" in labels(app)["flaky"]
        app.tree.select_task("flaky")
        await pilot.pause()
        details = plain(app, "#details-body")
        assert "attempt 1" in details and "api down (call 2)" in details and "attempt 3" in details


async def test_failing_task_skips_downstream_and_rerun_failed(tmp_path: Path) -> None:
    path = write_flow(tmp_path, FAILING)
    app = app_for(path)
    async with app.run_test(size=SIZE) as pilot:
        await run_to_end(pilot, app)
        lab = labels(app)
        assert (
            "✖" in lab["check"]
            and "failed" in lab["check"]
            and "row 12 has no price" in lab["check"]
        )
        assert (
            "⊘" in lab["report"]
            and "skipped" in lab["report"]
            and "upstream 'check' failed" in lab["report"]
        )
        assert "completed" in lab["side"]
        assert app.exit_code == 1
        lines = [str(x) for x in summary_lines(app.last_result.view, "flow.py")]
        assert "failed" in lines[0] and "check: ValueError: row 12 has no price" in lines[1]
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Re-run failed tasks" in titles
        # fix the cause, re-run only what failed: load and side are reused
        (tmp_path / "fixed.txt").write_text("ok")
        await pilot.press("R")
        await asyncio.wait_for(app.execution.wait(), 20)
        await until(pilot, lambda: app.last_result.status == "completed", "the re-run")
        view = app.session.view
        assert view.tasks["load"].reason == "reused from earlier run"
        assert view.tasks["side"].reason == "reused from earlier run"
        assert view.tasks["check"].attempts and view.tasks["report"].state == "completed"
        assert view.resumed_from == app.last_live.view.resumed_from
        assert "reused" in labels(app)["load"]


async def test_cancel_a_run(tmp_path: Path) -> None:
    app = app_for(write_flow(tmp_path, FOREVER))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await until(
            pilot, lambda: app.session.view.tasks["forever"].state == "running", "forever to run"
        )
        await until(pilot, lambda: "running" in labels(app)["forever"], "the running label")
        assert app.check_action("run", ()) is None  # shown disabled while running
        await pilot.press("c")
        await asyncio.wait_for(app.execution.wait(), 10)
        await until(pilot, lambda: app.last_result is not None, "the end")
        lab = labels(app)
        assert "■ forever  cancelled" in lab["forever"]
        assert "cancelled" in lab["never"]
        assert "completed" in lab["quick"]
        assert app.exit_code == 130


async def test_footer_dims_run_and_lights_cancel_in_place(tmp_path: Path) -> None:
    """A run starting or ending flips the footer's keys without rebuilding the footer."""
    app = app_for(write_flow(tmp_path, FOREVER))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        keys = {k.action: k for k in app.query(FooterKey)}
        assert not keys["run"].disabled and keys["cancel"].disabled
        await pilot.press("r")
        await until(pilot, lambda: keys["run"].disabled, "r to be dimmed")
        assert not keys["cancel"].disabled
        assert {k.action: k for k in app.query(FooterKey)} == keys  # the same widgets
        await pilot.press("c")
        await asyncio.wait_for(app.execution.wait(), 10)
        await until(pilot, lambda: not keys["run"].disabled, "r to be lit again")
        assert keys["cancel"].disabled
        assert all(k.is_attached for k in keys.values())


async def test_quit_during_a_run_cancels_it(tmp_path: Path) -> None:
    app = app_for(write_flow(tmp_path, FOREVER))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await until(pilot, lambda: app.session.view.tasks["forever"].state == "running", "running")
        await pilot.press("q")
        await asyncio.wait_for(app.execution.wait(), 10)
    assert app.return_value == 130
    assert app.execution.is_done


HOT = """
from tui_flow import task, Context, Workflow

@task
async def a(context: Context) -> None:
    context.log("a")

@task(dependencies=[a])
async def b(context: Context) -> None:
    context.log("b")
"""


async def test_hot_reload_add_break_fix(tmp_path: Path) -> None:
    path = write_flow(tmp_path, HOT)
    app = app_for(path, watch_files=True)
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.wait_for(app.watch_ready.wait(), 10)
        app.tree.select_task("b")
        await pilot.pause()
        # add a task
        path.write_text(
            textwrap.dedent(HOT)
            + textwrap.dedent("""
            @task(dependencies=[b])
            async def c(context: Context) -> None:
                context.log("c")
            """)
        )
        kind, diff = await asyncio.wait_for(app.reloads.get(), 10)
        assert kind == "ok" and diff.added == ["c"] and not diff.changed and not diff.removed
        await pilot.pause()
        assert list(app.tree.nodes_by_id) == ["a", "b", "c"]
        assert app.tree.selected_id == "b"  # the selection survived the rebuild
        # break it: the last good workflow stays, the error names file and line
        good = path.read_text()
        path.write_text(good + "\n@task(\ndef broken(:\n")
        kind, error = await asyncio.wait_for(app.reloads.get(), 10)
        assert kind == "error" and "flow.py:" in error
        await pilot.pause()
        box = app.query_one("#reload-error")
        assert box.has_class("visible") and box.display
        shown = plain(app, "#reload-error")
        assert "flow.py:" in shown and "syntax error" in shown
        assert list(app.tree.nodes_by_id) == ["a", "b", "c"]
        # fix it: the error goes, the change is applied
        path.write_text(good.replace('context.log("c")', 'context.log("c!")'))
        kind, diff = await asyncio.wait_for(app.reloads.get(), 10)
        assert kind == "ok" and diff.changed == ["c"]
        await pilot.pause()
        assert not app.query_one("#reload-error").has_class("visible")
        # the new version runs
        await run_to_end(pilot, app)
        assert "c!" in app.log_view.text()


async def test_reload_during_a_run_waits_for_its_end(tmp_path: Path) -> None:
    path = write_flow(tmp_path, GATED)
    app = app_for(path, watch_files=True)
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.wait_for(app.watch_ready.wait(), 10)
        gate = app.workflow.tasks["slow"].fn.__globals__["gate"]
        await pilot.press("r")
        await until(pilot, lambda: app.session.view.tasks["slow"].state == "running", "slow to run")
        path.write_text(
            textwrap.dedent(GATED)
            + "\n@task(dependencies=[next_one])\n"
            + "async def added(context: Context) -> None:\n    pass\n"
        )
        kind, diff = await asyncio.wait_for(app.reloads.get(), 10)
        assert kind == "deferred" and diff.added == ["added"]
        assert "added" not in app.tree.nodes_by_id  # the running version stays on screen
        gate.set()
        await asyncio.wait_for(app.execution.wait(), 10)
        await until(pilot, lambda: app.stale, "the reload to apply")
        assert app.last_result.status == "completed"
        assert set(app.last_result.tasks) == {"slow", "next_one"}
        # the finished run stays on screen, marked stale; the new version is what r runs
        assert "added" not in app.tree.nodes_by_id
        assert app.session.view.status == "completed"
        header = app.query_one("#header")._last  # type: ignore[attr-defined]
        assert "completed" in header and "stale: file changed, r to run" in header
        assert "added" in app.workflow.tasks
        app.workflow.tasks["slow"].fn.__globals__["gate"].set()  # the new module's gate
        await run_to_end(pilot, app)
        assert "added" in app.tree.nodes_by_id and not app.stale


async def test_history_opens_a_past_run(tmp_path: Path) -> None:
    app = app_for(write_flow(tmp_path, BASIC), db=str(tmp_path / "runs.db"), no_store=False)
    async with app.run_test(size=SIZE) as pilot:
        await run_to_end(pilot, app)
        first = app.last_result.run_id
        await run_to_end(pilot, app)
        assert len(await app.store.list_runs()) == 2
        await pilot.press("H")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), "the history screen")
        screen = app.screen
        table = screen.query_one("DataTable")
        assert table.row_count == 2
        await pilot.press("down", "enter")  # the older run
        await until(pilot, lambda: app.past_run == first, "the past run to open")
        await pilot.pause()
        assert app.session.view.run_id == first
        header = plain(app, "#header")
        assert f"run {first} (past)" in header
        assert all("completed" in v for v in labels(app).values())
        assert "extract row 0" in app.log_view.text()
        assert "speedup" in app.query_one("#report").text()


async def test_an_error_in_the_app_is_shown_and_the_app_lives(tmp_path: Path) -> None:
    app = app_for(write_flow(tmp_path, BASIC))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()

        def boom() -> str:
            raise RuntimeError("boom in the log view")

        app.log_view.text = boom  # type: ignore[method-assign]
        await pilot.press("y")
        await pilot.pause()
        assert app.is_running
        assert app.errors and "boom in the log view" in app.errors[0]
        assert any("boom" in n.message for n in app._notifications)
        await run_to_end(pilot, app)  # and it still works
        assert app.last_result.ok


async def test_palette_commands_and_workflow_switch(tmp_path: Path) -> None:
    two = BASIC + '\nother = Workflow("other", tasks=[extract, clean], max_concurrency=1)\n'
    app = app_for(write_flow(tmp_path, two))
    async with app.run_test(size=SIZE) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for t in (
            "Run",
            "Run with a different concurrency…",
            "Switch workflow: other",
            "Switch theme…",
        ):
            assert t in titles
        assert "Open a past run…" not in titles  # no store: hidden
        await pilot.press("W")
        await pilot.pause()
        assert app.workflow.name == "other" and list(app.tree.nodes_by_id) == ["extract", "clean"]


async def test_run_with_other_concurrency(tmp_path: Path) -> None:
    app = app_for(write_flow(tmp_path, BASIC))
    async with app.run_test(size=SIZE) as pilot:
        app.action_run_with_concurrency()
        await pilot.pause()
        await pilot.press("backspace", "1", "enter")
        await until(pilot, lambda: app.execution is not None, "the run")
        await asyncio.wait_for(app.execution.wait(), 20)
        await until(pilot, lambda: app.last_result is not None, "the end")
        assert app.session.view.max_concurrency == 1


def test_a_rerun_from_a_task_reuses_only_what_is_upstream_of_it(tmp_path: Path) -> None:
    from tui_flow.loader import load

    wf = load(write_flow(tmp_path, BASIC)).workflow()
    everything = list(wf.order)
    writes = {"extract": {"rows": 30}}
    again = downstream(wf, "clean")
    assert again == {"clean", "publish"}
    assert plan_reuse(wf, everything, writes, again) == {
        "extract": {"rows": 30},
        "enrich": {},
    }
    # a task that did not complete is not reused, and neither is anything after it
    assert plan_reuse(wf, ["clean", "enrich", "publish"], writes) == {}


def test_no_color_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = app_for(write_flow(tmp_path, BASIC))
    assert app.no_color
