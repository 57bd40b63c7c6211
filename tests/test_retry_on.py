"""`@task(retry_on=...)`: only the errors it names (types, or a predicate) are retried; any
other fails the task at once, saying why. In every runner and in the `.flow` DSL."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tui_flow import Context, Workflow, task
from tui_flow.dsl import dump_flow
from tui_flow.engine import run
from tui_flow.errors import TaskDefinitionError
from tui_flow.loader import load


def counting(exc: type[BaseException], message: str = "boom") -> tuple[Any, list[int]]:
    calls: list[int] = []

    def body(context: Context) -> None:
        calls.append(1)
        raise exc(message)

    return body, calls


@pytest.mark.parametrize("runner", ["thread", "async"])
async def test_a_named_type_is_retried_and_any_other_fails_at_once(runner: str) -> None:
    matching, m_calls = counting(ConnectionError)
    other, o_calls = counting(ValueError)
    if runner == "async":
        sync_m, sync_o = matching, other

        async def matching(context: Context) -> None:  # type: ignore[no-redef]
            sync_m(context)

        async def other(context: Context) -> None:  # type: ignore[no-redef]
            sync_o(context)

    retried = task(id="retried", retry_attempts=2, retry_on=(ConnectionError, TimeoutError))(
        matching
    )
    refused = task(id="refused", retry_attempts=2, retry_on=ConnectionError)(other)
    result = await run(Workflow("w", [retried, refused]))
    assert (len(m_calls), len(o_calls)) == (3, 1)
    r, f = result.tasks["retried"], result.tasks["refused"]
    assert r.attempts == 3 and r.error == "ConnectionError: boom"
    assert f.attempts == 1
    why = "not retried: ValueError is not in retry_on (ConnectionError)"
    assert f.error == f"ValueError: boom ({why})"


async def test_a_predicate_decides_and_one_that_raises_refuses() -> None:
    def transient(exc: BaseException) -> bool:
        if "explode" in str(exc):
            raise KeyError("oops")
        return "again" in str(exc)

    again, a_calls = counting(RuntimeError, "try again")
    never, n_calls = counting(RuntimeError, "gone")
    broken, b_calls = counting(RuntimeError, "explode")
    tasks = [
        task(id=name, retry_attempts=2, retry_on=transient)(fn)
        for name, fn in (("again", again), ("never", never), ("broken", broken))
    ]
    result = await run(Workflow("w", tasks))
    assert (len(a_calls), len(n_calls), len(b_calls)) == (3, 1, 1)
    assert result.tasks["never"].error.endswith(
        "(not retried: retry_on transient returned false for RuntimeError)"
    )
    assert "retry_on transient raised KeyError: 'oops' on RuntimeError" in (
        result.tasks["broken"].error
    )


async def test_a_timeout_is_judged_as_a_timeout_error() -> None:
    import threading

    release = threading.Event()

    def slow(context: Context) -> None:
        release.wait(5)  # the body's workload: held until the run ends

    t1 = task(id="t1", retry_attempts=1, timeout_s=0.05, retry_on=ConnectionError)(slow)
    t2 = task(id="t2", retry_attempts=1, timeout_s=0.05, retry_on=TimeoutError)(slow)
    try:
        result = await run(Workflow("w", [t1, t2]))
    finally:
        release.set()
    assert result.tasks["t1"].attempts == 1 and "not in retry_on" in result.tasks["t1"].error
    assert result.tasks["t2"].attempts == 2


async def test_process_bodies_follow_retry_on_too(tmp_path: Path) -> None:
    src = tmp_path / "flow.py"
    src.write_text(
        textwrap.dedent(
            """
            from tui_flow import Context, Workflow, task

            def transient(exc):
                return "again" in str(exc)

            @task(retry_attempts=2, retry_on=transient, runner="process")
            def again(context: Context) -> None:
                print("attempt")
                raise RuntimeError("try again")

            @task(retry_attempts=2, retry_on=(ConnectionError,), runner="process")
            def other(context: Context) -> None:
                print("attempt")
                raise ValueError("bad")

            workflow = Workflow("p", [again, other])
            """
        )
    )
    result = await run(src)
    assert result.tasks["again"].attempts == 3
    assert result.tasks["other"].attempts == 1
    assert result.tasks["other"].error == (
        "ValueError: bad (not retried: ValueError is not in retry_on (ConnectionError))"
    )


def test_bad_retry_on_values_are_refused_clearly() -> None:
    def body(context: Context) -> None: ...

    for bad, message in [
        ("ConnectionError", "the exception types themselves"),
        ((ValueError, 3), "3 is not an exception type"),
        ((), "it is empty"),
        (42, "must be exception types"),
        (int, "must be exception types"),
    ]:
        with pytest.raises(TaskDefinitionError, match=message):
            task(retry_on=bad)(body)
    t = task(retry_on=[KeyError, OSError])(body)
    assert t.retry_on == (KeyError, OSError) and t.spec.retry_on == "KeyError, OSError"


def test_the_dsl_takes_retry_on_and_exports_it(tmp_path: Path) -> None:
    (tmp_path / "r.py").write_text(
        textwrap.dedent(
            """
            class Flaky(Exception):
                pass

            def a(context):
                raise ValueError("x")

            def b(context):
                raise RuntimeError("try again")

            def transient(exc):
                return "again" in str(exc)
            """
        )
    )
    flow = tmp_path / "r.flow"
    flow.write_text(
        textwrap.dedent(
            """\
            flow r:
                task a:
                    retry_attempts: 2
                    retry_on: "ConnectionError, Flaky"
                task b:
                    retry_attempts: 2
                    retry_on: transient
            """
        )
    )
    wf = load(flow).workflow()
    a, b = wf.tasks["a"], wf.tasks["b"]
    assert [t.__name__ for t in a.retry_on] == ["ConnectionError", "Flaky"]
    assert b.retry_on.__name__ == "transient"
    text = dump_flow(wf)
    assert 'retry_on: "ConnectionError, Flaky"' in text and "retry_on: transient" in text

    flow.write_text("flow r:\n    task a:\n        retry_on: nothere\n")
    with pytest.raises(Exception, match=r"r\.flow:3:\d+: task 'a': retry_on: .*nothere"):
        load(flow)
