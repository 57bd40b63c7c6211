"""The example flows: each runs through `tui_flow.run`, with exact results, and validates."""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tui_flow import Context, load, run
from tui_flow.engine import TaskLogs, TaskProgress
from tui_flow.fresh_import import import_fresh

FAST = {"time_scale": 0.001}


def module_of(path: Path) -> ModuleType:
    """Import a flow (or helper) file as a fresh module, for its plain functions."""
    return import_fresh(path.resolve())


class Recorder:
    """A subscriber that keeps the events it is interested in."""

    def __init__(self) -> None:
        self.logs: dict[str, list[str]] = {}
        self.progress: dict[str, list[TaskProgress]] = {}

    def __call__(self, event: Any) -> None:
        if isinstance(event, TaskLogs):
            for line in event.lines:
                self.logs.setdefault(line.task_id, []).append(line.text)
        elif isinstance(event, TaskProgress):
            self.progress.setdefault(event.task_id, []).append(event)


# -- catalog -------------------------------------------------------------------------------------


async def test_catalog_runs_and_its_statistics_are_exact(flows_dir: Path) -> None:
    events = Recorder()
    result = await run(flows_dir / "catalog.py", FAST, subscribers=[events])
    assert result.status == "completed", {k: v.error for k, v in result.tasks.items()}
    assert all(t.status == "completed" for t in result.tasks.values())
    ctx = result.context

    products = ctx["products"]
    assert len(products) == ctx["total_products"] == 10_000
    assert len({p["id"] for p in products}) == 10_000
    # the three partitions are the tutorial's split: 3333, 3333 and the rest
    parts = [ctx[f"partition_{n}"] for n in (1, 2, 3)]
    assert [len(p) for p in parts] == [3333, 3333, 3334]
    assert [p["id"] for part in parts for p in part] == [p["id"] for p in products]

    # recompute the statistics directly from the products, with exact decimal arithmetic
    direct: dict[str, dict[str, Any]] = {}
    for p in products:
        d = direct.setdefault(p["category"], {"value": Decimal(0), "stock": 0, "count": 0})
        d["value"] += Decimal(str(p["price"])) * p["stock"]
        d["stock"] += p["stock"]
        d["count"] += 1
    final = ctx["final_stats"]
    assert list(final) == [f"Category {n}" for n in range(1, 11)]
    for category, d in direct.items():
        s = final[category]
        assert s["product_count"] == d["count"] == 1000
        assert s["total_stock"] == d["stock"]
        assert s["total_value_cents"] == d["value"] * 100
        assert Decimal(str(s["total_value"])) == d["value"]

    # simulated times are drawn from the tutorial's ranges
    for n, (low, high) in {1: (1000, 3000), 2: (1500, 4000), 3: (800, 2500)}.items():
        assert low <= ctx[f"processing_time_{n}"] < high
    times = [ctx[f"processing_time_{n}"] for n in (1, 2, 3)]
    assert ctx["total_processing_time_ms"] == sum(times)
    assert ctx["actual_parallel_time_ms"] == max(times)
    assert ctx["parallel_efficiency_percent"] == round(sum(times) / max(times) * 100, 1)

    assert len(ctx["report"].splitlines()) == 10
    assert "10000 products" in ctx["notification"]["message"]
    assert ctx["cleaned_up"] == [f"partition_{n}" for n in (1, 2, 3)] + [
        f"stats_{n}" for n in (1, 2, 3)
    ]

    # the app has something to show: log lines and progress from the partitions
    assert any("generated 10000 products" in t for t in events.logs["generate_data"])
    for n in (1, 2, 3):
        assert any(f"partition {n} complete" in t for t in events.logs[f"process_partition_{n}"])
        updates = events.progress[f"process_partition_{n}"]
        assert updates[-1].done == updates[-1].total == 10


async def test_catalog_partitions_overlap_in_time(flows_dir: Path) -> None:
    result = await run(flows_dir / "catalog.py", {"time_scale": 0.005, "product_count": 300})
    assert result.ok
    spans = [result.tasks[f"process_partition_{n}"] for n in (1, 2, 3)]
    latest_start = max(t.started_at or 0 for t in spans)
    earliest_end = min(t.finished_at or 0 for t in spans)
    assert latest_start < earliest_end  # all three were running at once


async def test_catalog_cleanup_runs_even_when_generation_fails(flows_dir: Path) -> None:
    result = await run(flows_dir / "catalog.py", {"product_count": "many", **FAST})
    assert result.status == "failed"
    assert result.tasks["generate_data"].status == "failed"
    assert result.tasks["generate_data"].attempts == 1  # a context mistake is not retried
    assert "'product_count'" in (result.tasks["generate_data"].error or "")
    assert result.tasks["combine_results"].status == "skipped"
    assert result.tasks["cleanup"].status == "completed"  # trigger_rule="all_done"
    assert result.context["cleaned_up"] == []


def test_catalog_matches_the_tutorial_settings(flows_dir: Path) -> None:
    wf = load(flows_dir / "catalog.py").workflow("catalog")
    deps = {tid: set(t.spec.dependencies) for tid, t in wf.tasks.items()}
    assert deps == {
        "generate_data": set(),
        "partition_data": {"generate_data"},
        "process_partition_1": {"partition_data"},
        "process_partition_2": {"partition_data"},
        "process_partition_3": {"partition_data"},
        "combine_results": {f"process_partition_{n}" for n in (1, 2, 3)},
        "generate_report": {"combine_results"},
        "send_notifications": {"combine_results"},
        "cleanup": {"generate_report", "send_notifications"},
    }
    retries = {tid: (t.spec.retry_attempts, t.spec.retry_delay_ms) for tid, t in wf.tasks.items()}
    for n in (1, 2, 3):
        assert retries.pop(f"process_partition_{n}") == (3, 1000)
    assert set(retries.values()) == {(2, 0)}
    assert wf.tasks["cleanup"].spec.trigger_rule == "all_done"
    assert all(wf.tasks[f"process_partition_{n}"].runner == "async" for n in (1, 2, 3))


def test_catalog_products_are_deterministic_for_a_seed(flows_dir: Path) -> None:
    catalog = module_of(flows_dir / "catalog.py")

    def generate(seed: int) -> list[dict[str, Any]]:
        ctx = Context({"seed": seed, "product_count": 50, "time_scale": 0})
        catalog.generate_data(ctx)  # a task is still a plain function
        return ctx.writes["products"]

    assert generate(1) == generate(1)
    assert generate(1) != generate(2)
    assert {p["category"] for p in generate(1)} == {f"Category {n}" for n in range(1, 11)}


def test_time_scale_context_value_overrides_the_environment(
    flows_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = module_of(flows_dir / "_data.py")
    monkeypatch.delenv("TUI_FLOW_TIME_SCALE", raising=False)
    assert data.time_scale(Context()) == 1.0
    monkeypatch.setenv("TUI_FLOW_TIME_SCALE", "0.5")
    assert data.time_scale(Context()) == 0.5
    assert data.time_scale(Context({"time_scale": 0.25})) == 0.25
    monkeypatch.setenv("TUI_FLOW_TIME_SCALE", "fast")
    with pytest.raises(ValueError, match="TUI_FLOW_TIME_SCALE must be a number, not 'fast'"):
        data.time_scale(Context())
    with pytest.raises(ValueError, match="'time_scale' must be >= 0"):
        data.time_scale(Context({"time_scale": -1}))


# -- parallel_processing -------------------------------------------------------------------------


async def test_parallel_processing_runs_and_merges_every_record(flows_dir: Path) -> None:
    result = await run(flows_dir / "parallel_processing.py", FAST)
    assert result.status == "completed", {k: v.error for k, v in result.tasks.items()}
    ctx = result.context
    records = ctx["records"]
    assert [r["id"] for r in records] == list(range(10_001))
    ranges = {1: (0, 3333), 2: (3334, 6666), 3: (6667, 10000)}
    for n, (first, last) in ranges.items():
        batch = ctx[f"batch_{n}_result"]
        assert (batch["first_id"], batch["last_id"]) == (first, last)
        assert batch["records"] == last - first + 1
        expected = [r["amount"] for r in records[first : last + 1] if r["amount"] is not None]
        assert batch["total_amount"] == sum(expected)
        assert batch["valid"] == len(expected)
    merged = ctx["merged"]
    assert merged["records_processed"] == 10_001
    assert merged["total_amount"] == sum(r["amount"] for r in records if r["amount"] is not None)
    assert merged["schema_valid"] is True and ctx["metadata"]["record_count"] == 10_001
    assert set(merged["validation_scores"]) == {"batch_1", "batch_2", "batch_3"}
    assert "parallel efficiency" in ctx["report"]
    assert result.tasks["cleanup"].status == "completed"


def test_parallel_processing_shape_concurrency_and_retry_policies(flows_dir: Path) -> None:
    wf = load(flows_dir / "parallel_processing.py").workflow()
    assert wf.max_concurrency == 4
    assert wf.stages == [
        ["init_data"],
        ["process_batch_1", "process_batch_2", "process_batch_3", "process_metadata"],
        ["merge_results"],
        ["generate_report", "send_notifications"],
        ["cleanup"],
    ]
    policies = {(t.spec.retry_attempts, t.spec.retry_delay_ms, t.spec.retry_backoff) for t in wf}
    assert len(policies) >= 6
    assert {t.spec.retry_backoff for t in wf} == {"fixed", "linear", "exponential"}
    assert wf.tasks["cleanup"].spec.trigger_rule == "all_done"


async def test_parallel_processing_transient_failures_are_real_errors(flows_dir: Path) -> None:
    flow = module_of(flows_dir / "parallel_processing.py")
    ctx = Context({"records": flow.make_records(1), "failure_rate": 1.0, "time_scale": 0})
    with pytest.raises(flow.TransientError, match="batch 1: simulated transient failure"):
        await flow.process_batch_1(ctx)


# -- parallel_tasks ------------------------------------------------------------------------------


def direct_analysis(values: list[int]) -> dict[str, int]:
    """An independent single pass: a sieve for primes, plain loops for the rest."""
    top = max(values, default=2)
    sieve = bytearray([1]) * (top + 1)
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(top**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(range(i * i, top + 1, i)))
    collatz = []
    for v in values:
        steps = 0
        while v != 1:
            v = 3 * v + 1 if v % 2 else v // 2
            steps += 1
        collatz.append(steps)
    return {
        "records": len(values),
        "primes": sum(sieve[v] for v in values),
        "value_total": sum(values),
        "collatz_total": sum(collatz),
        "digit_sum_total": sum(sum(map(int, str(v))) for v in values),
        "collatz_max_steps": max(collatz, default=-1),
    }


async def test_parallel_tasks_runs_chunks_in_worker_processes(flows_dir: Path) -> None:
    events = Recorder()
    result = await run(flows_dir / "parallel_tasks.py", {"records": 1_000}, subscribers=[events])
    assert result.status == "completed", {k: v.error for k, v in result.tasks.items()}
    ctx = result.context
    dataset = [r for n in range(1, 5) for r in ctx[f"chunk_{n}_records"]]
    assert len(dataset) == 1_000 and ctx["chunk_bounds"] == [
        [0, 250],
        [250, 500],
        [500, 750],
        [750, 1000],
    ]

    direct = direct_analysis([r["value"] for r in dataset])
    agg = ctx["result"]
    for key in ("records", "primes", "value_total", "collatz_total", "digit_sum_total"):
        assert agg[key] == direct[key], key
    assert agg["collatz_max"][0] == direct["collatz_max_steps"]
    assert sum(agg["primes_by_group"]) == direct["primes"]

    pids = set()
    for n in range(1, 5):
        assert ctx[f"chunk_{n}"]["records"] == 250
        (line,) = [t for t in events.logs[f"ProcessChunk{n}"] if "worker pid" in t]
        pids.add(int(line.rsplit(" ", 1)[1].rstrip(")")))
        assert events.progress[f"ProcessChunk{n}"]  # progress streams back from the worker
    assert os.getpid() not in pids


async def test_parallel_tasks_with_fewer_records_than_chunks(flows_dir: Path) -> None:
    result = await run(flows_dir / "parallel_tasks.py", {"records": 3, "seed": 5})
    assert result.ok
    assert [result.context[f"chunk_{n}"]["records"] for n in range(1, 5)] == [1, 1, 1, 0]
    assert result.context["result"]["records"] == 3


def test_parallel_tasks_functions_are_named_like_their_tasks(flows_dir: Path) -> None:
    module = module_of(flows_dir / "parallel_tasks.py")
    wf = load(flows_dir / "parallel_tasks.py").workflow()
    ids = ["DataPreparation", *(f"ProcessChunk{n}" for n in range(1, 5)), "AggregateResults"]
    assert list(wf.tasks) == ids
    for tid in ids:
        assert wf.tasks[tid].fn.__name__ == tid
        assert getattr(module, tid).id == tid  # importable at module level by that name
    assert {wf.tasks[f"ProcessChunk{n}"].runner for n in range(1, 5)} == {"process"}
    assert wf.stages == [["DataPreparation"], ids[1:5], ["AggregateResults"]]


# -- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("catalog.py", "stage 2: partition_data"),
        ("parallel_processing.py", "process_batch_1, process_batch_2, process_batch_3"),
        ("parallel_tasks.py", "ProcessChunk1, ProcessChunk2, ProcessChunk3, ProcessChunk4"),
    ],
)
def test_validate_accepts_the_example_flows(
    cli: Callable[..., Any], flows_dir: Path, file: str, expected: str
) -> None:
    proc = cli("validate", str(flows_dir / file))
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout
    assert proc.stdout.rstrip().endswith("ok")


def test_validate_rejects_a_broken_file_naming_file_and_line(
    cli: Callable[..., Any], write_flow: Callable[..., Path], line_of: Callable[[Path, str], int]
) -> None:
    path = write_flow(
        """
        from tui_flow import task

        @task
        def a(context): ...

        @task(dependencies=["aa"])  # bad
        def b(context): ...
        """
    )
    proc = cli("validate", str(path))
    assert proc.returncode == 2
    assert f"{path}:{line_of(path, '# bad')}: task 'b' depends on unknown task 'aa'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_validate_rejects_a_syntax_error_with_its_line(
    cli: Callable[..., Any], write_flow: Callable[..., Path]
) -> None:
    path = write_flow("from tui_flow import task\n\ndef broken(:\n")
    proc = cli("validate", str(path))
    assert proc.returncode == 2
    assert f"{path}:3: syntax error" in proc.stderr


def test_run_command_runs_the_catalog_headless(cli: Callable[..., Any], flows_dir: Path) -> None:
    proc = cli(
        "run",
        str(flows_dir / "catalog.py"),
        "--no-store",
        "--plain",
        env={"TUI_FLOW_TIME_SCALE": "0.001"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "completed" in proc.stdout and "cleanup" in proc.stdout
