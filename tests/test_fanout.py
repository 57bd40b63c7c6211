"""Dynamic fan-out (`@task(map_over=...)`): instances created at run time, one per item."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tui_flow import Context, Workflow, load, run, task
from tui_flow.engine import Execution, RunView, event_from_json

ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def __call__(self, e: Any) -> None:
        self.events.append(e)

    def kinds(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.kind == kind]


def pipeline(body: Any, *, cap: int = 4, **options: Any) -> Workflow:
    @task
    def make(context: Context) -> None:
        context.set("items", context.get("seed"))

    item_task = task(id="work", dependencies=[make], map_over="items", **options)(body)

    @task(dependencies=[item_task])
    def after(context: Context) -> None:
        context.set("seen", context.get("work"))

    return Workflow("fan", [make, item_task, after], max_concurrency=cap)


async def execute(wf: Workflow, context: dict[str, Any]) -> tuple[Any, Recorder, Execution]:
    rec = Recorder()
    ex = Execution(wf, context, subscribers=[rec])
    ex.start()
    return await ex.wait(), rec, ex


def double(context: Context) -> int:
    return context.item * 2


async def test_an_empty_list_completes_the_task_with_an_empty_result() -> None:
    result, rec, _ = await execute(pipeline(double), {"seed": []})
    assert result.status == "completed"
    assert result.context["work"] == [] and result.context["seen"] == []
    assert rec.kinds("tasks_added") == []
    assert result.view.tasks["work"].instances == []
    assert set(result.tasks) == {"make", "work", "after"}


async def test_one_item_gives_one_instance() -> None:
    result, rec, _ = await execute(pipeline(double), {"seed": [21]})
    assert result.context["seen"] == [42]
    (added,) = rec.kinds("tasks_added")
    assert added.parent == "work"
    assert [(t.id, t.parent, t.dependencies, t.map_over) for t in added.tasks] == [
        ("work[0]", "work", (), None)
    ]
    assert result.tasks["work[0]"].status == "completed"


async def test_many_items_results_come_back_in_item_order_under_the_cap() -> None:
    n = 7

    async def slow_first(context: Context) -> dict[str, Any]:
        await asyncio.sleep(0.005 * (n - context.index))  # workload, allowed
        context.set(f"saw_{context.index}", context.item)
        return {"index": context.index, "item": context.item}

    seed = [f"item{i}" for i in range(n)]
    result, _, ex = await execute(pipeline(slow_first, cap=3), {"seed": seed})
    assert result.status == "completed"
    assert result.context["work"] == [{"index": i, "item": seed[i]} for i in range(n)]
    assert all(result.context[f"saw_{i}"] == seed[i] for i in range(n))  # writes merged
    assert ex.peak_running == 3
    finished = sorted(range(n), key=lambda i: result.tasks[f"work[{i}]"].finished_at)
    assert finished != list(range(n))  # they did finish out of order


async def test_a_failing_instance_fails_the_task_others_finish_and_downstream_skips() -> None:
    def picky(context: Context) -> int:
        if context.item < 0:
            raise ValueError(f"negative item {context.item}")
        return context.item

    result, _, _ = await execute(pipeline(picky, retry_attempts=1), {"seed": [1, -2, 3]})
    assert result.status == "failed"
    states = {t: result.tasks[t].status for t in ("work[0]", "work[1]", "work[2]")}
    assert states == {"work[0]": "completed", "work[1]": "failed", "work[2]": "completed"}
    assert result.tasks["work[1]"].attempts == 2  # retries apply per instance
    assert result.tasks["work"].status == "failed"
    assert result.tasks["work"].error == (
        "1 of 3 instances did not complete; work[1]: ValueError: negative item -2"
    )
    assert result.tasks["after"].status == "skipped"
    assert "work" not in result.context


async def test_an_instance_retries_on_its_own() -> None:
    calls: dict[int, int] = {}

    def flaky(context: Context) -> int:
        calls[context.index] = calls.get(context.index, 0) + 1
        if context.index == 1 and calls[1] == 1:
            raise ConnectionError("once")
        return context.index

    result, _, _ = await execute(
        pipeline(flaky, retry_attempts=2, runner="async"), {"seed": ["a", "b", "c"]}
    )
    assert result.status == "completed"
    assert result.context["work"] == [0, 1, 2]
    assert [result.tasks[f"work[{i}]"].attempts for i in range(3)] == [1, 2, 1]
    assert calls == {0: 1, 1: 2, 2: 1}


async def test_two_instances_writing_one_key_is_a_conflict() -> None:
    def same_key(context: Context) -> None:
        context.set("shared", context.index)

    result, _, _ = await execute(pipeline(same_key, runner="async"), {"seed": [1, 2]})
    assert result.status == "failed"
    errors = [result.tasks[f"work[{i}]"].error or "" for i in range(2)]
    assert any("'shared' written by both 'work[0]' and 'work[1]'" in e for e in errors), errors


async def test_an_instance_write_conflicting_with_a_parallel_task_fails_the_task() -> None:
    @task
    def make(context: Context) -> None:
        context.set("items", [1])

    @task(dependencies=[make], map_over="items")
    async def work(context: Context) -> None:
        context.set("k", "from instance")

    @task(dependencies=[make])
    async def side(context: Context) -> None:
        context.set("k", "from side")

    result = await run(Workflow("w", [make, work, side]))
    failed = [t for t in ("work", "side") if result.tasks[t].status == "failed"]
    assert len(failed) == 1
    assert "written by both" in (result.tasks[failed[0]].error or "")


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        (None, "map_over: context key 'items' is not set"),
        ({"a": 1}, "map_over: context key 'items' is a dict, not a list"),
    ],
)
async def test_a_missing_or_non_list_key_fails_the_task_clearly(seed: Any, message: str) -> None:
    @task
    def make(context: Context) -> None:
        if seed is not None:
            context.set("items", seed)

    @task(dependencies=[make], map_over="items")
    def work(context: Context) -> None:
        pass

    result = await run(Workflow("w", [make, work]))
    assert result.tasks["work"].status == "failed"
    assert result.tasks["work"].error == message


async def test_a_skipped_map_over_task_creates_no_instances() -> None:
    @task
    def make(context: Context) -> None:
        raise RuntimeError("no list today")

    @task(dependencies=[make], map_over="items")
    def work(context: Context) -> None:
        pass

    rec = Recorder()
    result = await run(Workflow("w", [make, work]), subscribers=[rec])
    assert result.tasks["work"].status == "skipped"
    assert rec.kinds("tasks_added") == []


async def test_cancelling_the_task_cancels_its_instances() -> None:
    started = asyncio.Event()
    count = 0

    async def wait_forever(context: Context) -> None:
        nonlocal count
        count += 1
        if count == 2:
            started.set()
        await asyncio.Event().wait()

    wf = pipeline(wait_forever, cap=2)
    ex = Execution(wf, {"seed": [1, 2, 3]})
    ex.start()
    await started.wait()
    assert ex.cancel_task("work") is True
    result = await ex.wait()
    assert [result.tasks[f"work[{i}]"].status for i in range(3)] == ["cancelled"] * 3
    assert result.tasks["work"].status == "cancelled"
    assert result.tasks["after"].status == "skipped"


async def test_instances_in_events_run_view_and_report() -> None:
    result, rec, _ = await execute(pipeline(double, runner="thread"), {"seed": [1, 2, 3]})
    ids = ["work[0]", "work[1]", "work[2]"]
    # every event survives JSON, and a view rebuilt from the events equals the live one
    rebuilt = RunView.from_events(event_from_json(e.model_dump_json()) for e in rec.events)
    live = result.view
    assert rebuilt.order == live.order == ["make", "work", *ids, "after"]
    assert {k: (v.state, len(v.attempts)) for k, v in rebuilt.tasks.items()} == {
        k: (v.state, len(v.attempts)) for k, v in live.tasks.items()
    }
    assert rebuilt.tasks["work"].instances == ids
    assert all(rebuilt.tasks[i].info.parent == "work" for i in ids)
    states = [(e.task_id, e.state) for e in rec.kinds("task_state") if e.task_id in ids]
    assert sorted(states) == sorted([(i, "running") for i in ids] + [(i, "completed") for i in ids])
    written = [e for e in rec.kinds("context_written") if e.task_id == "work"]
    assert written[0].values == {"work": [2, 4, 6]}
    # the report counts the instances as tasks; the parent adds no run time of its own
    rows = {r.id: r for r in result.report.tasks}
    assert set(ids) <= set(rows)
    assert rows["work"].run_s == 0.0 and rows["work"].attempts == 0
    assert result.report.total_task_s == pytest.approx(sum(r.run_s for r in rows.values()))
    assert rows["work"].duration_s >= max(rows[i].run_s for i in ids)


async def test_instances_run_in_worker_processes(tmp_path: Path) -> None:
    (tmp_path / "procs.py").write_text(
        textwrap.dedent(
            """
            import os
            from tui_flow import task

            @task
            def make(context):
                context.set("items", [3, 1, 2])

            @task(dependencies=[make], map_over="items", runner="process")
            def work(context):
                context.log(f"instance {context.index}")
                return {"pid": os.getpid(), "item": context.item, "index": context.index}
            """
        )
    )
    result = await run(load(tmp_path / "procs.py").workflow())
    assert result.status == "completed", {k: v.error for k, v in result.tasks.items()}
    out = result.context["work"]
    assert [(o["item"], o["index"]) for o in out] == [(3, 0), (1, 1), (2, 2)]
    assert all(o["pid"] != os.getpid() for o in out)
    assert all(result.view.tasks[f"work[{i}]"].log_lines == 1 for i in range(3))


def test_instances_in_run_json(tmp_path: Path, cli) -> None:
    (tmp_path / "fan.py").write_text(
        textwrap.dedent(
            """
            from tui_flow import task

            @task
            def make(context):
                context.set("items", ["a", "bb"])

            @task(dependencies=[make], map_over="items")
            def size(context):
                return len(context.item)
            """
        )
    )
    done = cli("run", str(tmp_path / "fan.py"), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["context"]["size"] == [1, 2]
    assert {k: v["status"] for k, v in data["tasks"].items()} == {
        "make": "completed",
        "size": "completed",
        "size[0]": "completed",
        "size[1]": "completed",
    }
    assert data["tasks"]["size[1]"]["attempts"] == 1


# -- the example -----------------------------------------------------------------------------


def expected_hits(size: int) -> int:
    return sum(1 for i in range(size) if (i * i) % 10 in (1, 9))


@pytest.mark.parametrize("size", [0, 1, 120_000])
async def test_dynamic_parallel_example(size: int) -> None:
    loaded = load(ROOT / "flows" / "dynamic_parallel.py")
    wf = loaded.workflow()
    result = await run(wf, {"size": size})
    assert result.status == "completed", {k: v.error for k, v in result.tasks.items()}
    chunks = result.context["chunks"]
    cores = os.cpu_count() or 1
    assert len(chunks) == min(-(-size // 50_000), 2 * cores)
    assert len(result.context["crunch"]) == len(chunks)
    assert result.context["numbers"] == size
    assert result.context["hits"] == expected_hits(size)


# -- the app -------------------------------------------------------------------------------------

APP_FLOW = """
flow fanout_in_app:
    task make
    task work:
        map_over: items
    task guarded:
        fallback: plan_b
    make -> [work, guarded]
"""

APP_BODIES = """
def make(context):
    context.set("items", ["a", "b", "c"])

def work(context):
    return context.item.upper()

def guarded(context):
    raise ConnectionError("down")

def plan_b(context):
    context.set("plan", "b")
"""


async def test_a_flow_file_in_the_app_shows_instances_under_their_task(tmp_path: Path) -> None:
    from tui_flow.ui.app import make_app

    (tmp_path / "fan.flow").write_text(textwrap.dedent(APP_FLOW))
    (tmp_path / "fan.py").write_text(textwrap.dedent(APP_BODIES))
    app = make_app(tmp_path / "fan.flow", no_store=True, watch_files=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        await pilot.press("r")
        assert app.execution is not None
        result = await asyncio.wait_for(app.execution.wait(), 20)
        for _ in range(500):
            if app.last_result is not None:
                break
            await pilot.pause(0.01)
        await pilot.pause()
        assert result.context["work"] == ["A", "B", "C"]
        nodes = app.tree.nodes_by_id
        ids = ["work[0]", "work[1]", "work[2]"]
        assert set(ids) <= set(nodes)
        assert all(nodes[i].parent is nodes["work"] for i in ids)
        assert all("completed" in str(nodes[i].label) for i in ids)
        assert "via fallback" in str(nodes["guarded"].label)
