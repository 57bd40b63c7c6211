"""Every run ends: whatever a body raises is a failed attempt of its task, and an error of the
engine's own ends the run as failed. (Regression tests for each case issue 14 named.)"""

from __future__ import annotations

import asyncio
import time

import pytest
from scripted import RAISED, SUMMARY

from tui_flow import Context, Workflow, load, task
from tui_flow.engine import Execution, run

LIMIT = 20  # seconds: a guard against a hung run, never reached when the code is right


def raising(kind: str, runner: str, **options):
    make = RAISED[kind]
    if runner == "async":

        async def body(ctx: Context) -> None:
            raise make()
    else:

        def body(ctx: Context) -> None:
            raise make()

    return task(body, id="body", **options)


@pytest.mark.parametrize("runner", ["async", "thread"])
@pytest.mark.parametrize("kind", list(RAISED))
async def test_whatever_a_body_raises_fails_that_task_and_the_run_ends(kind, runner):
    after = task(lambda ctx: None, id="after", dependencies=["body"], trigger_rule="all_done")
    wf = Workflow("w", [raising(kind, runner, retry_attempts=1), after])
    result = await asyncio.wait_for(run(wf), LIMIT)
    body = result.tasks["body"]
    assert result.status == "failed"
    assert body.status == "failed" and body.attempts == 2  # retried like any failure
    assert body.error == SUMMARY[kind]
    assert body.traceback and "raise make()" in body.traceback
    assert result.tasks["after"].status == "completed"  # trigger rules follow as usual
    assert result.error is None  # a failure of the task, not of the engine


@pytest.mark.parametrize("runner", ["async", "thread"])
@pytest.mark.parametrize("kind", ["TimeoutError", "KeyboardInterrupt", "GeneratorExit"])
async def test_a_fallback_takes_over_whatever_the_body_raised(kind, runner):
    wf = Workflow("w", [raising(kind, runner, fallback=lambda ctx: ctx.set("fb", True))])
    result = await asyncio.wait_for(run(wf), LIMIT)
    assert result.status == "completed"
    assert result.tasks["body"].via_fallback and result.context["fb"] is True


async def test_a_body_timeout_error_is_not_mistaken_for_its_own_timeout_s():
    wf = Workflow("w", [raising("TimeoutError", "async", timeout_s=30)])
    result = await asyncio.wait_for(run(wf), LIMIT)
    assert result.tasks["body"].error == "TimeoutError: upstream timed out"


async def test_the_broken_str_of_an_exception_still_gives_a_message():
    result = await asyncio.wait_for(
        run(Workflow("w", [raising("broken __str__", "thread")])), LIMIT
    )
    assert result.tasks["body"].error == "BadStr: <str() of the exception raised RuntimeError>"


def test_bodies_on_worker_processes_fail_the_same_way(write_flow):
    flow = write_flow(
        """
        from tui_flow import task

        class Custom(BaseException):
            pass

        @task(runner="process")
        def timeout(ctx):
            raise TimeoutError("upstream")

        @task(runner="process")
        def interrupt(ctx):
            raise KeyboardInterrupt

        @task(runner="process")
        def leave(ctx):
            raise SystemExit(3)

        @task(runner="process")
        def custom(ctx):
            raise Custom("x")
        """
    )
    result = asyncio.run(asyncio.wait_for(run(load(flow).workflow()), LIMIT))
    errors = {tid: t.error for tid, t in result.tasks.items()}
    assert {t.status for t in result.tasks.values()} == {"failed"}
    assert errors["timeout"] == "TimeoutError: upstream"
    assert errors["interrupt"] == "KeyboardInterrupt"
    assert errors["leave"] == "SystemExit: 3"
    assert errors["custom"] == "Custom: x"


async def test_cancelling_the_run_still_cancels_a_body_that_awaits():
    started = asyncio.Event()

    @task
    async def waits(ctx: Context) -> None:
        started.set()
        await asyncio.Event().wait()

    ex = Execution(Workflow("w", [waits])).start()
    await asyncio.wait_for(started.wait(), LIMIT)
    ex.cancel()
    result = await asyncio.wait_for(ex.wait(), LIMIT)
    assert result.status == "cancelled" and result.tasks["waits"].status == "cancelled"


async def test_an_error_inside_the_engine_ends_the_run_as_failed_with_the_error(monkeypatch):
    @task
    async def first(ctx: Context) -> None:
        pass

    second = task(lambda ctx: None, id="second", dependencies=[first])
    ex = Execution(Workflow("w", [first, second]))

    def broken(*args, **kwargs):
        raise RuntimeError("bug in the engine")

    monkeypatch.setattr(ex, "_settle", broken)
    result = await asyncio.wait_for(ex.start().wait(), LIMIT)
    assert result.status == "failed"
    assert result.error is not None and "internal error" in result.error
    assert "bug in the engine" in result.error
    assert {t.status for t in result.tasks.values()} <= {"completed", "cancelled"}
    finished = result.view.error
    assert finished == result.error


async def test_an_error_while_ending_the_run_still_resolves_it(monkeypatch):
    ex = Execution(Workflow("w", [task(lambda ctx: None, id="one")]))

    def broken(*args, **kwargs):
        raise RuntimeError("report bug")

    monkeypatch.setattr(ex.view, "compute_report", broken)
    result = await asyncio.wait_for(ex.start().wait(), LIMIT)
    assert result.status == "failed" and "report bug" in (result.error or "")


# -- a body that blocks the event loop -------------------------------------------------------


async def test_a_body_that_blocks_the_loop_is_reported_on_its_task():
    lines: list[tuple[str, str, str]] = []

    def on_event(e) -> None:
        if e.kind == "task_logs":
            lines.extend((ln.task_id, ln.level, ln.text) for ln in e.lines)

    @task
    async def hog(ctx: Context) -> None:
        time.sleep(1.3)  # the workload: a blocking call in an async body (ok)

    result = await asyncio.wait_for(run(Workflow("w", [hog]), subscribers=[on_event]), LIMIT)
    assert result.status == "completed"
    [(tid, level, text)] = lines
    assert (tid, level) == ("hog", "warning")
    assert text.startswith("blocked the event loop for 1.") and "plain def" in text


async def test_a_body_that_blocks_the_loop_past_its_timeout_is_stopped_there():
    began = time.monotonic()

    @task(timeout_s=0.5)
    async def stuck(ctx: Context) -> None:
        time.sleep(30)  # the workload: it never awaits (ok)

    result = await asyncio.wait_for(run(Workflow("w", [stuck])), LIMIT)
    assert result.tasks["stuck"].error == "TimeoutError: timed out after 0.5 s"
    assert time.monotonic() - began < 5


async def test_a_body_that_returns_past_its_timeout_without_awaiting_timed_out():
    @task(timeout_s=0.05)
    async def late(ctx: Context) -> None:
        end = time.monotonic() + 0.2
        while time.monotonic() < end:  # the workload under test: CPU without awaiting
            pass

    result = await asyncio.wait_for(run(Workflow("w", [late])), LIMIT)
    assert result.tasks["late"].status == "failed"
    assert result.tasks["late"].error == "TimeoutError: timed out after 0.05 s"
