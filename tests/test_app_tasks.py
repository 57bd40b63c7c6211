"""The task view (`DagTree`): virtualised rows at scale, capped indentation, fan-ins and
map_over instances placed where they read right, the flat list, the cursor following the run."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from textual.app import App, ComposeResult
from textual.geometry import Region

from tui_flow.engine.events import RunStarted, TaskInfo, TasksAdded, TaskStateChanged
from tui_flow.engine.state import RunView
from tui_flow.ui.app import make_app
from tui_flow.ui.widgets.dag_tree import MAX_INDENT, DagTree
from tui_flow.ui.widgets.task_rows import tree_layout


def started(infos: list[TaskInfo]) -> RunView:
    view = RunView()
    view.apply(RunStarted(run_id="r", at=100.0, workflow="w", max_concurrency=4, tasks=infos))
    return view


def chain(n: int) -> RunView:
    ids = [f"t{i}" for i in range(n)]
    return started(
        [TaskInfo(id=t, dependencies=(ids[i - 1],) if i else ()) for i, t in enumerate(ids)]
    )


def on_screen(widget: DagTree) -> list[str]:
    return [s.text for s in widget.render_lines(Region(0, 0, *widget.size))]


class TreeApp(App[None]):
    def compose(self) -> ComposeResult:
        yield DagTree(id="tree")


async def test_a_100000_step_chain_is_drawn_without_recursion_and_indentation_capped() -> None:
    view = chain(100_000)
    app = TreeApp()
    async with app.run_test(size=(60, 12)) as pilot:
        tree = app.query_one(DagTree)
        tree.build(view, 100.0)
        await pilot.pause()
        assert len(tree.rows) == 100_000
        tree.focus()
        await pilot.press("end")
        await pilot.pause()
        lines = on_screen(tree)
        last = next(line for line in reversed(lines) if line.strip())
        assert "t99999  pending" in last
        # the indentation stops growing: the label starts within the capped depth
        assert last.index("○") <= 2 * MAX_INDENT + 2
        await pilot.press("k")
        assert tree.selected_id == "t99998"


async def test_a_100000_task_fan_out_is_drawn_and_relabelled_by_the_visible_rows() -> None:
    root = TaskInfo(id="root")
    view = started([root] + [TaskInfo(id=f"f{i}", dependencies=("root",)) for i in range(100_000)])
    app = TreeApp()
    async with app.run_test(size=(60, 12)) as pilot:
        tree = app.query_one(DagTree)
        tree.build(view, 100.0)
        await pilot.pause()
        assert len(tree.rows) == 100_001 and tree.parents["f5"] == "root"
        view.apply(TaskStateChanged(run_id="r", at=101.0, task_id="root", state="completed"))
        shown = tree.relabel(view, ["root"], 101.0)
        assert shown <= tree.size.height  # only the rows on screen are repainted
        await pilot.pause()
        assert "root  completed" in "\n".join(on_screen(tree))


def test_a_fan_in_sits_at_the_top_and_a_task_after_a_map_over_is_not_an_instance() -> None:
    view = started(
        [
            TaskInfo(id="a"),
            TaskInfo(id="b", dependencies=("a",)),
            TaskInfo(id="c", dependencies=("a",)),
            TaskInfo(id="work", dependencies=("b",), map_over="items"),
            TaskInfo(id="after", dependencies=("work",)),
            TaskInfo(id="join", dependencies=("c", "after")),
        ]
    )
    view.apply(
        TasksAdded(
            run_id="r",
            at=101.0,
            parent="work",
            tasks=[TaskInfo(id=f"work[{i}]", parent="work") for i in range(3)],
        )
    )
    parents = tree_layout(view)
    assert parents["join"] is None  # a fan-in hangs under none of its dependencies
    assert [parents[f"work[{i}]"] for i in range(3)] == ["work"] * 3
    assert parents["after"] == "b"  # beside `work`, not among its instances


@given(st.lists(st.lists(st.integers(0, 30), max_size=3), min_size=1, max_size=30))
def test_every_task_has_one_row_whatever_the_graph(deps_by_index: list[list[int]]) -> None:
    infos = [
        TaskInfo(id=f"t{i}", dependencies=tuple(sorted({f"t{d}" for d in ds if d < i})))
        for i, ds in enumerate(deps_by_index)
    ]
    view = started(infos)
    tree = DagTree()
    for mode in ("tree", "list"):
        tree.mode = mode
        tree.build(view, 100.0, force=True)
        assert sorted(r.data for r in tree.rows) == sorted(view.order)
        for row in tree.rows:  # a parent is drawn before its children
            if row.parent is not None:
                assert tree.rows.index(row.parent) < tree.rows.index(row)


async def test_the_cursor_follows_the_running_task_until_the_user_moves_it() -> None:
    view = chain(500)
    app = TreeApp()
    async with app.run_test(size=(60, 12)) as pilot:
        tree = app.query_one(DagTree)
        tree.build(view, 100.0)
        tree.focus()
        tree.follow_running({"t300", "t200"})
        await pilot.pause()
        assert tree.selected_id == "t200"  # the first running task, in run order
        assert "t200" in "\n".join(on_screen(tree))  # scrolled into view
        await pilot.press("j")
        assert tree.selected_id == "t201" and not tree.follow
        tree.follow_running({"t400"})
        assert tree.selected_id == "t201"  # the user's choice stays


FLOW = """
from tui_flow import task, Context, Workflow

@task
def load(context: Context) -> None:
    context.set("n", 1)

@task(dependencies=[load])
def left(context: Context) -> None:
    pass

@task(dependencies=[load])
def broken(context: Context) -> None:
    raise ValueError("bad row 7")

@task(dependencies=[left, broken], trigger_rule="all_done")
def join(context: Context) -> None:
    pass

workflow = Workflow("w", tasks=[load, left, broken, join], max_concurrency=2)
"""


async def until(pilot: Any, cond: Any, what: str) -> None:
    for _ in range(500):
        if cond():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_list_view_deps_on_demand_and_the_cursor_on_the_failure(tmp_path: Path) -> None:
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent(FLOW))
    app = make_app(path, no_store=True, watch_files=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        await pilot.press("v")
        assert app.tree.mode == "list"
        assert [r.data for r in app.tree.rows] == app.session.view.order  # run order
        assert app.tree.rows[0].data == "load" and app.tree.rows[-1].data == "join"
        assert all(r.depth == 0 for r in app.tree.rows)
        assert "after:" not in app.tree.label_of("join").plain
        await pilot.press("d")
        assert "after: left, broken" in app.tree.label_of("join").plain
        await pilot.press("r")
        assert app.execution is not None
        await asyncio.wait_for(app.execution.wait(), 20)
        await until(pilot, lambda: app.last_result is not None, "the run's end")
        await pilot.pause()
        assert app.tree.selected_id == "broken"  # the failure in plain sight
        label = app.tree.label_of("broken").plain
        assert label.startswith("✖ failed ") and "bad row 7" in label
        await pilot.press("v")
        assert app.tree.mode == "tree" and app.tree.selected_id == "broken"


async def test_a_narrow_tree_shortens_ids_and_never_cuts_a_status_word() -> None:
    ids = ["extract_customer_records_from_the_warehouse"]
    for i in range(1, 6):
        ids.append(f"step_{i}_of_the_customer_records_pipeline")
    view = started(
        [TaskInfo(id=t, dependencies=(ids[i - 1],) if i else ()) for i, t in enumerate(ids)]
    )
    for tid in ids:
        view.apply(TaskStateChanged(run_id="r", at=101.0, task_id=tid, state="completed"))
    app = TreeApp()
    async with app.run_test(size=(36, 10)) as pilot:
        tree = app.query_one(DagTree)
        tree.build(view, 102.0)
        await pilot.pause()
        lines = [line for line in on_screen(tree) if line.strip()]
        assert len(lines) == len(ids)
        for line in lines:
            assert "completed" in line and "…" in line, line
        assert tree.label_of(ids[0]).plain.startswith("✔ extract_customer_records_from")


async def test_a_click_selects_the_row_under_the_pointer(tmp_path: Path) -> None:
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent(FLOW))
    app = make_app(path, no_store=True, watch_files=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        tree = app.tree
        row = tree.rows[2].data
        # the tree has a border: its first row is one line below the widget's top
        await pilot.click("#tree", offset=(6, 1 + 2))
        assert tree.selected_id == row and not tree.follow
