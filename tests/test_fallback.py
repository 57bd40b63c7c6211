"""Fallbacks (`@task(fallback=fn)`): run when every attempt failed, with the same context."""

from __future__ import annotations

import asyncio
import io
import json
import os
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from tui_flow import Context, Workflow, load, run, task
from tui_flow.console import ConsoleReporter
from tui_flow.engine import runners

ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def __call__(self, e: Any) -> None:
        self.events.append(e)


def flow_with(body_task: Any) -> Workflow:
    @task
    def upstream(context: Context) -> None:
        context.set("from_upstream", 7)

    body_task = body_task.with_spec(dependencies=("upstream",))

    @task(dependencies=["guarded"])
    def downstream(context: Context) -> None:
        context.set("downstream_saw", context.get("answer"))

    return Workflow("fb", [upstream, body_task, downstream])


async def test_a_successful_fallback_completes_the_task_via_fallback() -> None:
    seen: dict[str, Any] = {}

    def plan_b(context: Context) -> None:
        seen.update(context.to_dict())
        context.set("answer", "from fallback")

    @task(retry_attempts=2, fallback=plan_b)
    def guarded(context: Context) -> None:
        context.set("answer", "never kept")  # writes of a failed attempt are dropped
        raise ConnectionError("down")

    rec = Recorder()
    result = await run(flow_with(guarded), {"initial": 1}, subscribers=[rec])
    assert result.status == "completed"
    outcome = result.tasks["guarded"]
    assert (outcome.status, outcome.via_fallback, outcome.attempts) == ("completed", True, 4)
    assert outcome.attempt_errors == ["ConnectionError: down"] * 3 + [None]
    # the fallback saw the same context as the body: initial values and upstream writes
    assert seen == {"initial": 1, "from_upstream": 7}
    assert result.context["answer"] == "from fallback"
    assert result.context["downstream_saw"] == "from fallback"
    # events: the fallback runs as attempt max+1, then the task completes "via fallback"
    states = [
        (e.state, e.attempt, e.reason, e.via_fallback)
        for e in rec.events
        if e.kind == "task_state" and e.task_id == "guarded"
    ]
    assert states[-3:] == [
        ("retrying", 3, "falling back", False),
        ("running", 4, "fallback", False),
        ("completed", 4, "via fallback", True),
    ]
    # the view, the report and the JSON all say so
    assert result.view.tasks["guarded"].via_fallback is True
    row = next(r for r in result.report.tasks if r.id == "guarded")
    assert row.via_fallback is True and row.error is None
    assert result.to_json()["tasks"]["guarded"]["via_fallback"] is True
    assert result.to_json()["tasks"]["upstream"]["via_fallback"] is False


async def test_a_failing_fallback_fails_the_task_with_both_errors() -> None:
    def plan_b(context: Context) -> None:
        raise LookupError("no cache")

    @task(retry_attempts=1, fallback=plan_b)
    def guarded(context: Context) -> None:
        raise ConnectionError("down")

    result = await run(flow_with(guarded))
    outcome = result.tasks["guarded"]
    assert (outcome.status, outcome.via_fallback, outcome.attempts) == ("failed", False, 3)
    assert outcome.error == "LookupError: no cache (fallback, after: ConnectionError: down)"
    assert "LookupError" in (outcome.traceback or "")
    assert result.tasks["downstream"].status == "skipped"
    assert result.status == "failed"


async def test_the_fallback_is_not_run_when_a_retry_succeeds() -> None:
    calls = {"body": 0, "fallback": 0}

    def plan_b(context: Context) -> None:
        calls["fallback"] += 1

    @task(retry_attempts=2, fallback=plan_b)
    def guarded(context: Context) -> None:
        calls["body"] += 1
        if calls["body"] < 2:
            raise ConnectionError("once")
        context.set("answer", "live")

    result = await run(flow_with(guarded))
    assert result.tasks["guarded"].via_fallback is False
    assert calls == {"body": 2, "fallback": 0}
    assert result.context["answer"] == "live"


async def test_the_console_shows_via_fallback() -> None:
    @task(fallback=lambda context: None)
    def guarded(context: Context) -> None:
        raise ValueError("x")

    out = io.StringIO()
    await run(Workflow("fb", [guarded]), subscribers=[ConsoleReporter(out, plain=True)])
    text = out.getvalue()
    assert "running the fallback" in text
    assert "completed  guarded      via fallback" in text


async def test_a_fallback_after_a_hung_thread_body_does_not_wait_for_it() -> None:
    release = threading.Event()
    body_returned = threading.Event()
    fallback_saw_body_running: list[bool] = []

    def plan_b(context: Context) -> None:
        fallback_saw_body_running.append(not body_returned.is_set())
        context.set("answer", "fallback")

    @task(timeout_s=0.05, fallback=plan_b)
    def guarded(context: Context) -> None:
        release.wait(5)  # hangs until the test lets it go (5 s at most)
        body_returned.set()

    try:
        result = await run(Workflow("fb", [guarded]), max_concurrency=2)
    finally:
        release.set()
    assert fallback_saw_body_running == [True]
    assert result.tasks["guarded"].via_fallback is True
    assert result.tasks["guarded"].attempt_errors[0] == "TimeoutError: timed out after 0.05 s"
    assert result.context["answer"] == "fallback"


async def test_attempts_that_timed_out_are_recorded_so_whatever_the_task_does_next(
    tmp_path: Path,
) -> None:
    from tui_flow.engine import Execution
    from tui_flow.store.sqlite import RunStore

    async def plan_b(context: Context) -> None:
        await asyncio.Event().wait()  # times out too

    @task(timeout_s=0.05, retry_attempts=1, fallback=plan_b)
    async def guarded(context: Context) -> None:
        await asyncio.Event().wait()

    store = await RunStore.open(tmp_path / "runs.db")
    execution = Execution(Workflow("fb", [guarded]))
    execution.subscribe(store.recorder(execution.view))
    result = await execution.start(gate=store.flush()).wait()
    await store.close()
    # a retry follows the first, the fallback the second, the task fails after the third
    statuses = [a.status for a in result.view.tasks["guarded"].attempts]
    assert statuses == ["timed_out", "timed_out", "timed_out"]
    async with await RunStore.open(tmp_path / "runs.db") as store:
        stored = await store.attempt_rows(result.run_id, "guarded")
    assert [a["status"] for a in stored] == statuses


# -- the process runner --------------------------------------------------------------------------

PROCESS_BODIES = """
import os
from tui_flow import task, Workflow

def plan_b(context):
    context.set("fallback_pid", os.getpid())
    context.set("saw", context.get("x"))

def plan_c(context):
    raise KeyError("nothing left")

@task(retry_attempts=1, fallback=plan_b, runner="process")
def rescued(context):
    raise RuntimeError("always")

@task(fallback=plan_c, runner="process")
def doomed(context):
    raise RuntimeError("always too")

ok = Workflow("ok", [rescued])
bad = Workflow("bad", [doomed])
"""


async def test_fallbacks_on_the_process_runner(tmp_path: Path) -> None:
    (tmp_path / "procs.py").write_text(textwrap.dedent(PROCESS_BODIES))
    loaded = load(tmp_path / "procs.py")
    result = await run(loaded.workflow("ok"), {"x": 5})
    assert result.tasks["rescued"].via_fallback is True
    assert result.tasks["rescued"].attempts == 3
    assert result.context["saw"] == 5
    assert result.context["fallback_pid"] != os.getpid()

    result = await run(loaded.workflow("bad"))
    assert result.tasks["doomed"].status == "failed"
    assert result.tasks["doomed"].error == (
        "KeyError: 'nothing left' (fallback, after: RuntimeError: always too)"
    )


QUEUE = """
import time
from tui_flow import task, Workflow

@task(runner="process")
def hog(context):
    time.sleep(0.4)  # workload, allowed

@task(runner="process", timeout_s=0.2)
def quick(context):
    return 1

workflow = Workflow("queue", [hog, quick], max_concurrency=2)
"""


async def test_a_process_timeout_does_not_count_the_wait_for_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "queue.py").write_text(textwrap.dedent(QUEUE))
    pool = runners.ProcessPool(size=1)  # quick must wait for hog's worker
    monkeypatch.setattr(runners, "_pool", pool)
    try:
        result = await run(load(tmp_path / "queue.py").workflow())
    finally:
        pool.shutdown()
    assert result.tasks["quick"].status == "completed", result.tasks["quick"].error
    assert result.tasks["quick"].attempts == 1


# -- the example ---------------------------------------------------------------------------------

EXAMPLE = ROOT / "flows" / "error_handling.py"


async def test_error_handling_example_recovers_by_retrying() -> None:
    result = await run(load(EXAMPLE).workflow(), {"failures": 2})
    assert result.status == "completed"
    assert result.tasks["fetch_rates"].attempts == 3
    assert result.tasks["fetch_rates"].via_fallback is False
    assert result.context["rates"]["source"] == "live"
    assert result.tasks["alert"].status == "skipped"
    assert result.context["closed"]["calls"] == 3
    assert [r.delay_s > 0 for r in result.view.retries] == [True, True]


async def test_error_handling_example_falls_back_when_retries_run_out() -> None:
    result = await run(load(EXAMPLE).workflow(), {"failures": 9})
    assert result.status == "completed"
    fetch = result.tasks["fetch_rates"]
    assert (fetch.attempts, fetch.via_fallback) == (5, True)
    assert result.context["rates"]["source"] == "cache"
    assert result.context["converted"] == {"EUR": 91.0, "GBP": 78.0}
    assert result.tasks["alert"].status == "skipped"
    assert result.tasks["cleanup"].status == "completed"


def test_error_handling_example_alerts_and_cleans_up_when_all_fails(cli) -> None:
    args = ["--set", "failures=9", "--set", "cache_available=false", "--json", "--no-store"]
    done = cli("run", str(EXAMPLE), *args)
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    tasks = data["tasks"]
    assert tasks["fetch_rates"]["status"] == "failed"
    assert tasks["fetch_rates"]["via_fallback"] is False
    assert "no cached rates either" in tasks["fetch_rates"]["error"]
    assert "rates service unavailable" in tasks["fetch_rates"]["error"]
    assert tasks["convert"]["status"] == "skipped"
    assert tasks["alert"]["status"] == "completed"
    assert tasks["cleanup"]["status"] == "completed"
    assert data["context"]["alerted"] is True
    assert data["context"]["closed"]["calls"] == 4


def test_a_process_fallback_from_another_module_is_found(tmp_path) -> None:
    import asyncio as _asyncio

    from tui_flow import load
    from tui_flow import run as _run

    (tmp_path / "rescue.py").write_text("def rescue(ctx):\n    ctx.set('via', 'rescue')\n")
    (tmp_path / "fb.py").write_text("def body(ctx):\n    raise RuntimeError('body breaks')\n")
    (tmp_path / "fb.flow").write_text(
        "flow fb:\n    task body:\n        runner: process\n        fallback: rescue:rescue\n"
    )
    result = _asyncio.run(_run(load(tmp_path / "fb.flow").workflow()))
    outcome = result.tasks["body"]
    assert (outcome.status, outcome.via_fallback) == ("completed", True), outcome.error
    assert result.context == {"via": "rescue"}
