"""`from taskinity import task` in the `.py` beside a flow file: Taskinity's bodies, run by
tui-flow.

    from taskinity import task

    @task(name="Fetch data", description="Download the rows")
    def DataPreparation(size):            # an input, by name, from the initial context
        return list(range(size))          # the result: kept under the task's id

    @task(name="Aggregate")
    def AggregateResults(ProcessChunk1_result, ProcessChunk2_result):   # upstream results
        return ProcessChunk1_result + ProcessChunk2_result

The decorated function stays the function (call it as before); the flow file's task of the
same name runs it: each parameter `<dep>_result` gets the result of upstream task `<dep>`,
any other parameter the context value of that name (its default when there is none); the
return value is the task's result, kept in the context under the task's id.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["flow", "task"]

_EMPTY = inspect.Parameter.empty


def task(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    **options: Any,
) -> Any:
    """`@task(name=..., description=...)`: marks a Taskinity task body (see the module)."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        body = taskinity_body(f)
        if description:
            body.__doc__ = description  # the task's description, unless the flow gives one
        f.__tui_flow_body__ = body  # type: ignore[attr-defined]
        f.__taskinity__ = {"name": name, "description": description, **options}  # type: ignore[attr-defined]
        return f

    return decorate(fn) if fn is not None else decorate


def flow(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """`@flow(...)`: Taskinity's flow function decorator; the function is kept as it is."""
    if fn is not None:
        return fn
    return lambda f: f


def taskinity_body(f: Callable[..., Any]) -> Callable[..., Any]:
    """A tui-flow body (it takes the Context) that calls `f` with its arguments by name."""
    params = [
        p
        for p in inspect.signature(f).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]

    def arguments(context: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        missing = []
        for p in params:
            key = p.name
            if key.endswith("_result") and key.removesuffix("_result") in context:
                kwargs[key] = context.get(key.removesuffix("_result"))
            elif key in context:
                kwargs[key] = context.get(key)
            elif p.default is _EMPTY:
                missing.append(key)
        if missing:
            names = ", ".join(repr(m) for m in missing)
            raise TypeError(
                f"{f.__name__}() needs {names}: no upstream result (<task>_result) nor context "
                "value of that name; set it with --set KEY=JSON or give the parameter a default"
            )
        return kwargs

    if inspect.iscoroutinefunction(f):

        @functools.wraps(f)
        async def run_async(context: Any) -> Any:
            return await f(**arguments(context))

        run_async.__signature__ = _CONTEXT_ONLY  # type: ignore[attr-defined]
        return run_async

    @functools.wraps(f)
    def run(context: Any) -> Any:
        return f(**arguments(context))

    run.__signature__ = _CONTEXT_ONLY  # type: ignore[attr-defined]
    return run


_CONTEXT_ONLY = inspect.Signature(
    [inspect.Parameter("context", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
)
