"""A task's non-None return value is kept in the context under the task's id."""

from __future__ import annotations

import asyncio

from tui_flow import Workflow, task
from tui_flow.engine import run

LIMIT = 10


async def run_wf(wf: Workflow, context=None):
    return await asyncio.wait_for(run(wf, context), LIMIT)


async def test_return_value_is_visible_to_descendants_and_in_the_final_context():
    seen = {}

    @task
    def answer(context):
        return 42

    @task(dependencies=[answer])
    async def reader(context):
        seen["answer"] = context.get("answer")

    result = await run_wf(Workflow("w", [answer, reader]))
    assert result.ok
    assert seen == {"answer": 42}
    assert result.context["answer"] == 42
    assert "reader" not in result.context  # None is not kept


async def test_returning_the_context_keeps_nothing():
    @task
    def cloaca_style(context):
        context.set("k", 1)
        return context

    result = await run_wf(Workflow("w", [cloaca_style]))
    assert result.ok and result.context == {"k": 1}


async def test_a_return_value_and_an_explicit_write_of_the_same_key_is_a_clear_error():
    @task
    def both(context):
        context.set("both", 1)
        return 2

    result = await run_wf(Workflow("w", [both]))
    assert result.tasks["both"].status == "failed"
    assert "returned a value and also wrote the context key 'both'" in result.tasks["both"].error


async def test_a_parallel_task_writing_the_key_of_a_return_value_is_a_conflict():
    @task
    def a(context):
        return 1

    @task
    def b(context):
        context.set("a", 2)

    result = await run_wf(Workflow("w", [a, b], max_concurrency=1))
    assert result.status == "failed"
    errors = [o.error for o in result.tasks.values() if o.error]
    assert any("ConflictError" in e and "'a'" in e for e in errors)


async def test_a_return_value_that_is_not_json_fails_the_task_naming_it():
    @task
    def bad(context):
        return object()

    result = await run_wf(Workflow("w", [bad]))
    assert result.tasks["bad"].status == "failed"
    assert "result of bad" in result.tasks["bad"].error


async def test_return_value_of_a_process_body(write_flow):
    from tui_flow import load

    path = write_flow(
        """
        from tui_flow import task

        @task(runner="process")
        def square(context):
            return context.get("n") ** 2

        @task(dependencies=[square])
        def show(context):
            context.set("seen", context.get("square"))
        """
    )
    result = await run_wf(load(path).workflow(), {"n": 7})
    assert result.ok, result.tasks
    assert result.context["square"] == 49 and result.context["seen"] == 49
