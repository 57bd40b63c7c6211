"""The Python API's `run` and `run_sync` (`tui_flow.run`, `tui_flow.run_sync`): the engine's
run, which a caller may have recorded in the run store (`store=True`, `db=PATH`, or an open
`RunStore`), and a `run_sync` that works where a loop is already running.

`run_sync` inside a running event loop (a Jupyter cell, an async framework's callback) runs
the workflow on a worker thread with a loop of its own, and waits for it. Refusing (and
pointing to `await tui_flow.run(...)`) was the other choice; a thread was taken because
`run_sync` promises a blocking call that returns the result, and a notebook user who typed
it gets exactly that. What it costs: the caller's loop is blocked until the run ends (as any
blocking call blocks it; `await tui_flow.run(...)` does not), and async bodies run on the
worker thread's loop, not the caller's (objects bound to the caller's loop cannot be used in
them). Ctrl-C (a notebook's "interrupt") cancels the run, waits for it to wind down (every
task final, the store written), then raises `KeyboardInterrupt`.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .context import Context
from .engine.result import RunResult
from .engine.scheduler import Execution
from .workflow import Workflow

if TYPE_CHECKING:
    from .store.sqlite import RunStore


def _workflow(workflow: Workflow | str | os.PathLike[str], options: dict[str, Any]) -> Workflow:
    if isinstance(workflow, Workflow):
        return workflow
    from .loader import load

    return load(workflow).workflow(options.pop("workflow_name", None))


async def run(
    workflow: Workflow | str | os.PathLike[str],
    context: Mapping[str, Any] | Context | None = None,
    *,
    store: bool | RunStore = False,
    db: str | os.PathLike[str] | None = None,
    **options: Any,
) -> RunResult:
    """Run a workflow (a `Workflow` or a file path) to its end and return the result.

    The run is recorded in the run store when `store=True` (the default database:
    $TUI_FLOW_DB, else `.tui-flow/runs.db`), when `db=PATH` names one, or when `store` is an
    open `RunStore` (left open); then `tui-flow history`, `show` and `resume` see it like a
    run of the command line. `options` are `Execution`'s (`max_concurrency=`,
    `subscribers=`, `log_level=`, ...) and `workflow_name=` for a file holding several."""
    return await _run(workflow, context, store, db, None, options)


async def _run(
    workflow: Workflow | str | os.PathLike[str],
    context: Mapping[str, Any] | Context | None,
    store: bool | RunStore,
    db: str | os.PathLike[str] | None,
    on_start: Callable[[Execution], None] | None,
    options: dict[str, Any],
) -> RunResult:
    wf = _workflow(workflow, options)
    own = None
    recorder = None
    if store is not False or db is not None:
        from .store.sqlite import RunStore

        if isinstance(store, RunStore):
            recorder = store
        else:
            recorder = own = await RunStore.open(Path(db) if db is not None else None)
    try:
        execution = Execution(wf, context, **options)
        if recorder is not None:
            execution.subscribe(recorder.recorder(execution.view))
        execution.start(gate=recorder.flush() if recorder is not None else None)
        if on_start is not None:
            on_start(execution)
        return await execution.wait()
    finally:
        if own is not None:
            await own.close()


def run_sync(
    workflow: Workflow | str | os.PathLike[str],
    context: Mapping[str, Any] | Context | None = None,
    *,
    store: bool | RunStore = False,
    db: str | os.PathLike[str] | None = None,
    **options: Any,
) -> RunResult:
    """`run()` for code that is not async: a script, or a notebook cell (where a loop is
    already running: then the run goes on a worker thread, see the module's docstring)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_run(workflow, context, store, db, None, options))
    return _on_a_thread(workflow, context, store, db, options)


def _on_a_thread(
    workflow: Workflow | str | os.PathLike[str],
    context: Mapping[str, Any] | Context | None,
    store: bool | RunStore,
    db: str | os.PathLike[str] | None,
    options: dict[str, Any],
) -> RunResult:
    """Run on a worker thread with its own loop; wait for it here (Ctrl-C cancels it)."""
    from .store.sqlite import RunStore

    if isinstance(store, RunStore):
        raise TypeError(
            "run_sync() inside a running event loop cannot use an open RunStore (it belongs "
            "to this loop): pass store=True or db=PATH, or `await tui_flow.run(...)`"
        )
    started = threading.Event()
    done = threading.Event()
    handle: list[tuple[asyncio.AbstractEventLoop, Execution]] = []
    outcome: list[Any] = []

    def on_start(execution: Execution) -> None:
        handle.append((asyncio.get_running_loop(), execution))
        started.set()

    def body() -> None:
        try:
            outcome.append(asyncio.run(_run(workflow, context, store, db, on_start, options)))
        except BaseException as exc:
            outcome.append(exc)
        finally:
            started.set()
            done.set()

    ctx = contextvars.copy_context()  # the caller's context variables, as asyncio.run would
    thread = threading.Thread(target=ctx.run, args=(body,), name="tui-flow run_sync")
    thread.start()
    interrupted = False
    # (waited on an Event, not on join(): an interrupted join() may leave the thread looking
    # stopped while it runs, in the Pythons this supports)
    while not done.is_set():
        try:
            done.wait()
        except KeyboardInterrupt:
            interrupted = True
            started.wait()
            if handle:
                loop, execution = handle[0]
                try:
                    loop.call_soon_threadsafe(execution.cancel)
                except RuntimeError:  # the run's loop has just closed: it is over
                    pass
    thread.join()
    result = outcome[0]
    if interrupted:
        raise KeyboardInterrupt
    if isinstance(result, BaseException):
        raise result
    return result
