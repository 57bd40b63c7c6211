"""`tui-flow compare`: the workflow at several concurrencies, on a small workload.

No timing is asserted: only what the figures must satisfy whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import io
import json
import textwrap
import time
from pathlib import Path

import networkx as nx
import pytest
from rich.console import Console

from tui_flow import Context, Workflow, run, task
from tui_flow.cli.compare import render
from tui_flow.compare import Comparison, Setting, measure

ROOT = Path(__file__).resolve().parent.parent

SMALL = """
import time
from tui_flow import task

@task
def start(context):
    time.sleep(0.01)  # workload, allowed

@task(dependencies=[start])
def left(context):
    time.sleep(0.03)  # workload, allowed

@task(dependencies=[start])
def right(context):
    time.sleep(0.03)  # workload, allowed

@task(dependencies=[left, right])
def join(context):
    if context.get("fail", False):
        raise RuntimeError("asked to fail")
"""


def diamond() -> Workflow:
    @task
    def start(context: Context) -> None:
        time.sleep(0.01)  # workload, allowed

    @task(dependencies=[start])
    def left(context: Context) -> None:
        time.sleep(0.03)  # workload, allowed

    @task(dependencies=[start])
    def right(context: Context) -> None:
        time.sleep(0.03)  # workload, allowed

    @task(dependencies=[left, right])
    def join(context: Context) -> None:
        pass

    return Workflow("diamond", [start, left, right, join])


async def test_measure_runs_every_setting_and_derives_the_figures() -> None:
    wf = diamond()
    seen: list[tuple[int, int]] = []
    cmp = await measure(wf, {}, [2, 4], repeat=2, on_run=lambda c, i, r: seen.append((c, i)))
    assert seen == [(1, 1), (2, 1), (4, 1), (1, 2), (2, 2), (4, 2)]  # 1 added, interleaved
    assert [s.concurrency for s in cmp.settings] == [1, 2, 4]
    base = cmp.settings[0]
    assert base.speedup == 1.0 and base.bound == 1.0 and base.slot_utilisation == 1.0
    for s in cmp.settings:
        assert len(s.walls_s) == 2 and s.status == "completed"
        assert s.wall_s == pytest.approx(sorted(s.walls_s)[0] / 2 + sorted(s.walls_s)[1] / 2)
        assert s.speedup == pytest.approx(base.wall_s / s.wall_s)
        assert s.bound == pytest.approx(min(s.concurrency, cmp.best_speedup))
        assert s.slot_utilisation == pytest.approx(s.speedup / s.concurrency)
        assert s.of_possible == pytest.approx(s.speedup / s.bound)
        assert s.bound >= 1.0
    # the critical path is a real source-to-sink path of the graph
    path = cmp.critical_path
    assert path[0] == "start" and path[-1] == "join" and len(path) == 3
    assert nx.is_simple_path(wf.graph, path)
    assert 0 < cmp.critical_path_s <= cmp.total_task_s
    assert cmp.best_speedup == pytest.approx(cmp.total_task_s / cmp.critical_path_s)
    data = cmp.to_json()
    assert data["baseline_concurrency"] == 1
    assert [s["concurrency"] for s in data["settings"]] == [1, 2, 4]
    assert json.loads(json.dumps(data)) == data


async def test_a_map_over_task_counts_as_its_longest_instance_on_the_critical_path() -> None:
    @task
    def make(context: Context) -> None:
        context.set("items", [0.03, 0.01, 0.02])

    @task(dependencies=[make], map_over="items")
    async def nap(context: Context) -> None:
        await asyncio.sleep(context.item)  # workload, allowed

    wf = Workflow("naps", [make, nap])
    result = await run(wf, max_concurrency=1)
    report = result.report
    total, path, length = report.total_task_s, report.critical_path, report.critical_path_s
    rows = {r.id: r for r in result.report.tasks}
    longest = max(rows[f"nap[{i}]"].run_s for i in range(3))
    assert path == ["make", "nap"]
    assert length == pytest.approx(rows["make"].run_s + longest)
    assert total == pytest.approx(sum(r.run_s for r in rows.values()))
    assert length < total  # the instances could overlap: the bound is above 1


def test_render_shows_every_column() -> None:
    cmp = Comparison(
        workflow="w",
        context={"records": 10},
        repeat=1,
        settings=[
            Setting(1, [2.0], ["completed"], speedup=1.0, bound=1.0),
            Setting(2, [1.25], ["completed"], speedup=1.6, bound=1.8),
            Setting(4, [1.0], ["failed"], speedup=2.0, bound=1.8),
        ],
        total_task_s=2.0,
        critical_path=["a", "b"],
        critical_path_s=1.1,
        best_speedup=1.8,
    )
    out = io.StringIO()
    console = Console(file=out, width=120, no_color=True, highlight=False)
    for r in render(cmp):
        console.print(r)
    text = out.getvalue()
    assert "compare w  (context: records=10; 1 run per setting, median shown)" in text
    for header in ("slots", "wall time", "speedup", "possible", "of possible", "busy", "status"):
        assert header in text
    lines = [ln.split() for ln in text.splitlines()]
    assert [
        "2",
        "│",
        "1.25",
        "s",
        "│",
        "1.60x",
        "│",
        "1.80x",
        "│",
        "89%",
        "│",
        "80%",
        "│",
        "✔",
        "completed",
    ] in lines
    assert [
        "4",
        "│",
        "1.00",
        "s",
        "│",
        "2.00x",
        "│",
        "1.80x",
        "│",
        "111%",
        "│",
        "50%",
        "│",
        "✖",
        "failed",
    ] in lines
    assert "critical path a -> b (1.10 s); total / critical path 1.80x" in text
    assert not cmp.ok


def test_compare_command(tmp_path: Path, cli) -> None:
    path = tmp_path / "small.py"
    path.write_text(textwrap.dedent(SMALL))

    done = cli("compare", str(path), "--concurrency", "1,2", "--json", "--repeat", "2")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["workflow"] == "small"
    assert [(s["concurrency"], len(s["walls_s"])) for s in data["settings"]] == [(1, 2), (2, 2)]
    assert "concurrency 2, run 2/2" in done.stderr  # progress goes to stderr

    done = cli("compare", str(path), "-c", "2")
    assert done.returncode == 0, done.stderr
    assert "concurrency" in done.stdout and "possible" in done.stdout
    rows = [ln.split()[0] for ln in done.stdout.splitlines() if "completed" in ln]
    assert rows == ["1", "2"]

    done = cli("compare", str(path), "-c", "1", "--set", "fail=true", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["settings"][0]["status"] == "failed"
