"""The app's pieces on their own: tree layout and labels, the bounded log view with follow
mode, the reload diff."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

from textual.app import App, ComposeResult
from textual.geometry import Region

from tui_flow.engine.events import RetryScheduled, RunStarted, TaskInfo, TaskStateChanged
from tui_flow.engine.state import RunView
from tui_flow.loader import load
from tui_flow.ui.reload import diff_workflows, load_file
from tui_flow.ui.widgets.dag_tree import DagTree, progress_bar, task_label, tree_parents
from tui_flow.ui.widgets.log_view import LogView


def test_tree_parent_is_the_only_dependency_and_a_fan_in_sits_at_the_top() -> None:
    order = ["a", "b", "c", "d"]
    deps = {"b": ["a"], "c": ["a"], "d": ["c", "b"]}
    assert tree_parents(order, deps) == {"a": None, "b": "a", "c": "a", "d": None}


def run_view() -> RunView:
    view = RunView()
    view.apply(
        RunStarted(
            run_id="r",
            at=100.0,
            workflow="w",
            max_concurrency=2,
            tasks=[
                TaskInfo(id="a"),
                TaskInfo(id="b", retry_attempts=3, retry_delay_ms=1500),
                TaskInfo(id="c", dependencies=("a", "b")),
            ],
        )
    )
    return view


def test_labels_say_status_in_words_and_what_a_task_waits_on() -> None:
    view = run_view()
    view.apply(TaskStateChanged(run_id="r", at=100.0, task_id="a", state="running", attempt=1))
    view.apply(TaskStateChanged(run_id="r", at=100.0, task_id="b", state="running", attempt=1))
    view.apply(
        RetryScheduled(
            run_id="r",
            at=101.0,
            task_id="b",
            attempt=1,
            next_attempt=2,
            max_attempts=4,
            delay_s=1.5,
            error="boom",
        )
    )
    view.apply(
        TaskStateChanged(
            run_id="r", at=101.0, task_id="b", state="retrying", attempt=1, max_attempts=4
        )
    )
    a = task_label(view.tasks["a"], view, 102.5).plain
    assert "running" in a and "2.50 s" in a  # grows with the clock
    b = task_label(view.tasks["b"], view, 101.0).plain
    assert b.startswith("↻ b  retrying") and "attempt 2/4, next in 1.50 s" in b
    c = task_label(view.tasks["c"], view, 101.0, tree_parent="b").plain
    assert "○ c  pending" in c and "waits on a, b" in c
    view.apply(TaskStateChanged(run_id="r", at=103.0, task_id="a", state="failed", error="E: x"))
    assert "✖ a  failed" in task_label(view.tasks["a"], view, 104.0).plain
    view.tasks["a"].progress = None
    assert progress_bar(1, 4).plain.endswith(" 25%")


def on_screen(widget: DagTree) -> str:
    """The widget's lines as the compositor draws them."""
    return "\n".join(s.text for s in widget.render_lines(Region(0, 0, *widget.size)))


class TreeApp(App[None]):
    def compose(self) -> ComposeResult:
        yield DagTree(id="tree")


async def test_tree_nodes_off_screen_show_their_new_state_when_scrolled_into_view() -> None:
    view = RunView()
    ids = [f"t{i:02d}" for i in range(60)]
    view.apply(
        RunStarted(
            run_id="r",
            at=100.0,
            workflow="w",
            max_concurrency=2,
            tasks=[TaskInfo(id=i) for i in ids],
        )
    )
    app = TreeApp()
    async with app.run_test(size=(60, 12)) as pilot:
        tree = app.query_one(DagTree)
        tree.build(view, 100.0)
        await pilot.pause()
        for i in ids:
            view.apply(TaskStateChanged(run_id="r", at=101.0, task_id=i, state="completed"))
        tree.relabel(view, ids, 101.0)
        await pilot.pause()
        assert "t00  completed" in on_screen(tree)
        assert "completed" in tree.label_of("t59").plain
        tree.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        shot = on_screen(tree)
        assert "t59  completed" in shot and "pending" not in shot


class LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LogView(max_lines=100, id="log")


async def test_log_view_is_bounded_and_holds_the_reading_place() -> None:
    app = LogApp()
    async with app.run_test(size=(60, 12)) as pilot:
        view = app.query_one(LogView)
        view.write([("t", "info", f"line {i}") for i in range(150)])
        await pilot.pause()
        assert len(view.entries) == 100 and view.entries[0][2] == "line 50"
        assert view.following and view.is_vertical_scroll_end
        # scroll up: follow pauses, and the line at the top stays the same as lines arrive
        view.scroll_to(y=40, animate=False, immediate=True)
        await pilot.pause()
        assert not view.following
        top = view.entries[int(view.scroll_y)][2]
        view.write([("t", "info", f"new {i}") for i in range(20)])
        await pilot.pause()
        assert view.entries[int(view.scroll_y)][2] == top
        assert view.new_while_paused == 20
        view.follow()
        await pilot.pause()
        assert view.following and view.new_while_paused == 0
        assert view.is_vertical_scroll_end


async def test_log_view_shows_new_lines_when_full_and_following() -> None:
    """Once the view holds max_lines, new lines no longer move the scroll position: the
    screen must still show them."""
    app = LogApp()
    async with app.run_test(size=(60, 12)) as pilot:
        view = app.query_one(LogView)
        view.write([("t", "info", f"line_{i}") for i in range(150)])
        await pilot.pause()
        assert "line_149" in app.export_screenshot()
        view.write([("t", "info", f"fresh_{i}") for i in range(3)])
        await pilot.pause()
        shot = app.export_screenshot()
        assert "fresh_2" in shot and "line_149" not in shot.split("fresh_0")[-1]


async def test_log_view_timestamps_show_each_lines_time_and_go_away() -> None:
    at = time.mktime((2026, 12, 2, 12, 0, 1, 0, 0, -1)) + 0.12
    app = LogApp()
    async with app.run_test(size=(80, 12)) as pilot:
        view = app.query_one(LogView)
        view.write([("t", "info", "with a time", "", at), ("t", "info", "without one")])
        await pilot.pause()
        assert "12:00:01" not in app.export_screenshot()
        view.set_timestamps(True)
        await pilot.pause()
        shot = app.export_screenshot()
        assert "12:00:01.120" in shot
        t = "t".ljust(view.prefix_width)
        assert view.text().splitlines() == [
            f"12:00:01.120 {t} │ with a time",
            f"             {t} │ without one",
        ]
        view.set_timestamps(False)
        await pilot.pause()
        assert "12:00:01" not in app.export_screenshot()
        assert view.text().splitlines()[0] == f"{t} │ with a time"


def test_reload_diff_and_error(tmp_path: Path) -> None:
    src = textwrap.dedent(
        """
        from tui_flow import task

        @task
        def a(context):
            pass

        @task(dependencies=[a])
        def b(context):
            return 1
        """
    )
    p = tmp_path / "f.py"
    p.write_text(src)
    old = load(p).workflow()
    # a new task above the others shifts their lines: they are not "changed"
    p.write_text(
        src.replace("@task\ndef a", "@task\ndef z(context):\n    pass\n\n@task\ndef a").replace(
            "return 1", "return 2"
        )
    )
    new = load_file(p).loaded.workflow()
    diff = diff_workflows(old, new)
    assert diff.added == ["z"] and diff.changed == ["b"] and diff.removed == []
    assert diff.summary() == "+1 added (z)  ~1 changed (b)"
    p.write_text(src + "\nx = (\n")
    result = load_file(p)
    assert result.loaded is None and "f.py:" in result.error


def test_the_header_names_the_dask_cluster_when_there_is_one() -> None:
    from tui_flow.engine.state import RunView
    from tui_flow.ui.widgets.header import header_text

    view = RunView(workflow="w", status="idle", max_concurrency=4)
    cluster = "dask tcp://10.0.0.5:8786 · 8 workers, 16 threads"
    assert cluster in header_text(view, "w.py", 0.0, executor=cluster).plain
    assert "dask" not in header_text(view, "w.py", 0.0).plain


async def test_log_lines_keep_their_whole_width_when_the_task_column_comes_later() -> None:
    app = LogApp()
    async with app.run_test(size=(200, 12)) as pilot:
        view = app.query_one(LogView)
        view.set_prefix(False)
        long = "the end of this line must stay on screen " + "x" * 60 + "_END"
        view.write([("process_partition_1", "info", long)])
        view.set_prefix(True, ["process_partition_1"])
        await pilot.pause()
        assert view.virtual_size.width >= len(long) + view._pad()
        assert "_END" in app.export_screenshot()
