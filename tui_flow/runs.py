"""Starting runs, in one place: the store, the subscribers, the remote runner, the signals; and
planning a resume or a re-run of a stored run (the one rule of what is reused).

`run_headless` is what `tui-flow run`, `resume` and `rerun` do: open the store (refusing one
that cannot be written before anything runs), start the execution behind the store's start
gate (the run is on disk before its first body starts), print it, and end it cleanly whatever
happens: Ctrl-C, SIGTERM, a closed stdout, a body that never returns (see `interrupts.py`).

Resume and re-run first make a `RunPlan` (what would run, what is reused, refusals with a
clear reason), then start an `Execution` from it with the store recording:

    execution = await resume(store, run_id)              # same run id, continues in place
    execution = await rerun_failed(store, run_id)        # a new run linked to the old one
    execution = await rerun_from(store, run_id, "partition_data")
    result = await execution.wait()

A task is reused (not run again; its context writes restored) when it completed before, is
not asked to run again, and every task upstream of it is reused too (`plan_reuse`), so a task
whose input may change always runs again. The three refuse when the workflow file changed
since the run (its source hash differs) unless `force=True`.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import os
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .engine.scheduler import Execution, Subscriber
from .errors import BadInput, TuiFlowError, err
from .interrupts import Interrupts
from .status import EXIT_CLOSED_PIPE, exit_code
from .workflow import Workflow

EXECUTORS = ("local", "dask")
REPORT_ROWS = 25  # at most this many tasks in the report after a run (the failed, the slowest)
Action = Literal["resume", "rerun_failed", "rerun_from"]


@dataclass(frozen=True)
class RunOptions:
    """What a run is asked for, typed: built once from the command line (or in code)."""

    max_concurrency: int | None = None  # None: the workflow's (a resume: the stored run's)
    context: Mapping[str, Any] = field(default_factory=dict)  # initial context (`--set`)
    db: str | None = None  # the run database (None: the default one)
    record: bool = True  # keep the run in the store
    executor: str | None = None  # where sync bodies run: local or dask (None: from env)
    scheduler: str | None = None  # the Dask scheduler's address
    json: bool = False  # print one JSON object at the end instead of the run log
    plain: bool | None = None  # no colours (None: when the output is not a terminal)
    logs: bool = True  # print task log lines
    events_jsonl: str | None = None  # write every event as a JSON line there ("-": stdout)
    otel: str | None = None  # OpenTelemetry spans: "otlp" or "console" (tui-flow[otel])


def observers(options: RunOptions) -> list[Any]:
    """The subscribers that hand the run's events out (`--events-jsonl`, `--otel`); each has
    `close()`. A file that cannot be written, or the otel extra missing, is `BadInput`."""
    out: list[Any] = []
    if options.events_jsonl is not None:
        from .observe.jsonl import EventsJsonl

        try:
            out.append(EventsJsonl.open(options.events_jsonl))
        except OSError as exc:
            raise BadInput(
                f"--events-jsonl {options.events_jsonl}: {exc.strerror or exc}"
            ) from None
    if options.otel is not None:
        try:
            from .observe.otel import cli_subscriber
        except ImportError:
            raise BadInput("--otel needs OpenTelemetry: pip install 'tui-flow[otel]'") from None
        out.append(cli_subscriber(options.otel))
    return out


async def open_store(db: str | None, *, enabled: bool = True) -> Any:
    """The run store (checked writable), or None when recording is off or not installed.
    Raises `StoreError` (a one-line message) for a database that cannot be used."""
    if not enabled:
        return None
    try:
        from .store.sqlite import RunStore
    except ImportError:
        return None
    return await RunStore.open(db)


def executor_name(executor: str | None) -> str:
    """Where sync bodies run: `executor` (--executor), else $TUI_FLOW_EXECUTOR, else local."""
    name = executor or os.environ.get("TUI_FLOW_EXECUTOR") or "local"
    if name not in EXECUTORS:
        allowed = " or ".join(EXECUTORS)
        where = "--executor" if executor else "$TUI_FLOW_EXECUTOR"
        raise BadInput(f"{where} must be {allowed}, not {name!r}")
    return name


def remote_runner(executor: str | None, scheduler: str | None) -> Any:
    """The remote runner asked for (None for local)."""
    if executor_name(executor) == "local":
        return None
    from .engine.dask_runner import make_dask_runner

    return make_dask_runner(scheduler)


async def run_headless(
    workflow: Workflow,
    options: RunOptions,
    *,
    context: Mapping[str, Any] | None = None,
    reuse: Mapping[str, Mapping[str, Any]] | None = None,
    resumed_from: str | None = None,
    run_id: str | None = None,
    store: Any = None,
) -> int:
    """Run with console output (or JSON); return the exit code."""
    from .console import ConsoleReporter, print_report, printed

    subscribers: list[Any] = []
    reporter = None
    started: list[Execution] = []  # the run, once made (a closed stdout cancels it)

    def stdout_closed() -> None:
        for ex in started:
            asyncio.get_running_loop().call_soon(ex.cancel)

    # --events-jsonl -: standard output is the events' alone
    events_on_stdout = options.events_jsonl == "-"
    if not options.json and not events_on_stdout:
        reporter = ConsoleReporter(plain=options.plain, logs=options.logs, on_closed=stdout_closed)
        subscribers.append(reporter)
    outside: list[Any] = []  # --events-jsonl, --otel
    own_store = store is None
    # the remote runner first: a bad $TUI_FLOW_EXECUTOR leaves no store open
    remote = remote_runner(options.executor, options.scheduler)
    if store is None:
        store = await open_store(options.db, enabled=options.record)
    interrupts: Interrupts | None = None
    try:
        outside += observers(options)
        subscribers += outside
        if remote is not None:
            await remote.start()  # connect before the run, so no attempt pays for it
        execution = Execution(
            workflow,
            dict(options.context if context is None else context),
            max_concurrency=options.max_concurrency,
            subscribers=subscribers,
            reuse=reuse,
            resumed_from=resumed_from,
            run_id=run_id,
            remote=remote,
        )
        started.append(execution)
        if store is not None:
            execution.subscribe(store.recorder(execution.view))
        with Interrupts(
            lambda _: execution.cancel(), execution=lambda: execution, store=lambda: store
        ) as interrupts:
            execution.start(gate=store.flush() if store is not None else None)
            result = await execution.wait()
    finally:
        if store is not None and own_store:
            await store.close()
        if remote is not None:
            await remote.close()
        for sub in outside:
            sub.close()
            if getattr(sub, "error", None):
                err(f"warning: {sub.error}")
    if reporter is not None:
        reporter.flush()  # whatever the last events wrote goes before the report
    if options.json:
        line = json.dumps(result.to_json(), default=str) + "\n"
        shown = printed(lambda: sys.stdout.write(line))
    elif events_on_stdout:
        shown = True
    else:
        shown = not (reporter is not None and reporter.closed) and printed(
            lambda: print_report(
                result.report,
                result.workflow,
                result.status,
                result.run_id,
                plain=options.plain,
                rows=REPORT_ROWS,
                more=f" (every task: tui-flow show {result.run_id})" if store is not None else "",
            )
        )
    if result.error:
        err(f"run {result.run_id} {result.status}: {result.error}")
    for msg in result.subscriber_errors:
        err(f"warning: {msg}")
    if interrupts is not None and interrupts.exit_code is not None:
        return interrupts.exit_code
    if not shown:
        return EXIT_CLOSED_PIPE  # as a process killed by SIGPIPE would
    return exit_code(result.status)


# -- what a resume or a re-run reuses ---------------------------------------------------------


class ActionRefused(TuiFlowError):
    """The stored run cannot be resumed / re-run as asked (the message says why)."""


def plan_reuse(
    workflow: Workflow,
    completed: Iterable[str],
    writes: Mapping[str, Mapping[str, Any]],
    again: Iterable[str] = (),
) -> dict[str, dict[str, Any]]:
    """The tasks a resume or re-run reuses, each with its context writes: the ones that
    `completed` before and are not asked to run `again`, provided every task upstream of them
    is reused too (a task whose input may change always runs again)."""
    done = set(completed)
    skip = set(again)
    reuse: dict[str, dict[str, Any]] = {}
    for tid in workflow.order:
        if tid not in done or tid in skip:
            continue
        if all(d in reuse for d in workflow.tasks[tid].spec.dependencies):
            reuse[tid] = dict(writes.get(tid, {}))
    return reuse


def downstream(workflow: Workflow, task_id: str) -> set[str]:
    """`task_id` and every task after it (what `rerun --from` runs again)."""
    return {task_id, *workflow.descendants(task_id)}


@dataclass
class RunPlan:
    """What a resume or re-run will do. `execution()` builds the engine run from it."""

    action: Action
    source: Any  # the stored run (a RunRow)
    workflow: Workflow
    context: dict[str, Any]
    reuse: dict[str, dict[str, Any]]
    run_id: str | None  # resume: the stored run's id; re-runs get a new one
    resumed_from: str
    max_concurrency: int
    options: dict[str, Any] = field(default_factory=dict)
    source_changed: bool = False

    @property
    def to_run(self) -> list[str]:
        """The workflow's tasks that will run (everything not reused), in run order."""
        return [t for t in self.workflow.order if t not in self.reuse]

    def execution(
        self, store: Any = None, *, subscribers: Iterable[Subscriber] = (), **kwargs: Any
    ) -> Execution:
        """An `Execution` (not started) for the plan, recorded in `store` when given."""
        kwargs.setdefault("max_concurrency", self.max_concurrency)
        kwargs.setdefault("options", self.options)
        execution = Execution(
            self.workflow,
            self.context,
            subscribers=subscribers,
            run_id=self.run_id,
            reuse=self.reuse,
            resumed_from=self.resumed_from,
            **kwargs,
        )
        if store is not None:
            execution.subscribe(store.recorder(execution.view))
        return execution


async def _load_workflow(run: Any, workflow: Workflow | None, force: bool) -> tuple[Workflow, bool]:
    if workflow is None:
        if not run.file:
            raise ActionRefused(
                f"run {run.run_id} was not started from a workflow file, so it cannot be "
                f"loaded again; pass the Workflow object"
            )
        from .loader import load

        loaded = await asyncio.to_thread(load, run.file)
        workflow = loaded.workflow(run.workflow if run.workflow in loaded.workflows else None)
        if workflow.name != run.workflow:
            raise ActionRefused(
                f"{run.file} no longer holds a workflow named {run.workflow!r} "
                f"(found: {', '.join(loaded.workflows)})"
            )
    changed = bool(run.source_hash and workflow.source_hash != run.source_hash)
    if changed and not force:
        raise ActionRefused(
            f"{run.file or run.workflow} changed since run {run.run_id} was recorded (source "
            f"hash {run.source_hash} -> {workflow.source_hash}); its stored results may not "
            f"match the code any more. Pass --force (force=True) to go ahead anyway."
        )
    return workflow, changed


async def _plan(
    store: Any,
    run_id: str,
    action: Action,
    *,
    task_id: str | None = None,
    force: bool = False,
    workflow: Workflow | None = None,
) -> RunPlan:
    await store.flush()  # what this process recorded counts too
    run = await store.resolve(run_id)
    if run.status == "running":
        where = f" (process {run.owner_pid})" if run.owner_pid else ""
        raise ActionRefused(f"run {run.run_id} is still running{where}; wait for it or cancel it")
    rows = {t.task_id: t for t in await store.task_rows(run.run_id) if t.parent is None}
    if action == "resume" and run.status == "completed":
        raise ActionRefused(
            f"run {run.run_id} completed; nothing to resume (to run part of it again: "
            f"tui-flow rerun {run.run_id} --from TASK)"
        )
    if action == "rerun_failed" and all(t.status == "completed" for t in rows.values()):
        raise ActionRefused(
            f"run {run.run_id} has no failed tasks; nothing to re-run (to run part of it "
            f"again: tui-flow rerun {run.run_id} --from TASK)"
        )
    wf, changed = await _load_workflow(run, workflow, force)
    again: set[str] = set()
    if action == "rerun_from":
        assert task_id is not None
        if task_id not in wf.tasks:
            close = difflib.get_close_matches(task_id, list(wf.tasks), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(wf.order)
            raise ActionRefused(
                f"workflow {wf.name!r} has no task {task_id!r}{hint} (tasks: {known})"
            )
        again = downstream(wf, task_id)
    completed = [tid for tid, row in rows.items() if row.status == "completed"]
    return RunPlan(
        action=action,
        source=run,
        workflow=wf,
        context=await store.initial_context(run.run_id),
        reuse=plan_reuse(wf, completed, await store.context_writes(run.run_id), again),
        run_id=run.run_id if action == "resume" else None,
        resumed_from=run.run_id,
        max_concurrency=run.max_concurrency,
        options=await store.options(run.run_id),
        source_changed=changed,
    )


async def plan_resume(
    store: Any, run_id: str, *, force: bool = False, workflow: Workflow | None = None
) -> RunPlan:
    """Plan continuing an interrupted, failed or cancelled run in place (same run id)."""
    return await _plan(store, run_id, "resume", force=force, workflow=workflow)


async def plan_rerun_failed(
    store: Any, run_id: str, *, force: bool = False, workflow: Workflow | None = None
) -> RunPlan:
    """Plan a new run that runs what did not complete (and what depends on it)."""
    return await _plan(store, run_id, "rerun_failed", force=force, workflow=workflow)


async def plan_rerun_from(
    store: Any, run_id: str, task_id: str, *, force: bool = False, workflow: Workflow | None = None
) -> RunPlan:
    """Plan a new run that runs `task_id` and everything downstream of it again."""
    return await _plan(store, run_id, "rerun_from", task_id=task_id, force=force, workflow=workflow)


@contextlib.asynccontextmanager
async def claimed(store: Any, plan: RunPlan) -> AsyncIterator[None]:
    """Around starting a plan's run: a resume claims the stored run first (two processes cannot
    resume the same run at once), and gives it back if its run never started."""
    if plan.action != "resume":
        yield
        return
    rid = plan.source.run_id
    if not await store.claim(rid):
        raise ActionRefused(f"run {rid} is being resumed by another process")
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            await store.flush()
        run = await store.get_run(rid)
        if run is not None and run.segments == plan.source.segments:  # it never started
            await store.release(rid, plan.source.status)
        raise


async def start_plan(
    store: Any, plan: RunPlan, *, subscribers: Iterable[Subscriber] = (), **kwargs: Any
) -> Execution:
    """Start the plan's run, recorded in `store` (the run is on disk before a body starts)."""
    async with claimed(store, plan):
        execution = plan.execution(store, subscribers=subscribers, **kwargs)
        execution.start(gate=store.flush())
        return execution


async def run_plan_headless(store: Any, plan: RunPlan, options: RunOptions) -> int:
    """`tui-flow resume` / `rerun`: run the plan with console output; the exit code."""
    if plan.source_changed:
        err(f"warning: {plan.workflow.file} changed since run {plan.source.run_id} (--force)")
    if not plan.to_run:
        err(f"every task of run {plan.source.run_id} is reused; nothing will run")
    if options.max_concurrency is None:
        options = RunOptions(**{**options.__dict__, "max_concurrency": plan.max_concurrency})
    async with claimed(store, plan):
        return await run_headless(
            plan.workflow,
            options,
            context=plan.context,
            reuse=plan.reuse,
            resumed_from=plan.resumed_from,
            run_id=plan.run_id,
            store=store,
        )


async def resume(
    store: Any,
    run_id: str,
    *,
    force: bool = False,
    workflow: Workflow | None = None,
    subscribers: Iterable[Subscriber] = (),
    **kwargs: Any,
) -> Execution:
    """Continue a stored run in place; returns the started `Execution`."""
    plan = await plan_resume(store, run_id, force=force, workflow=workflow)
    return await start_plan(store, plan, subscribers=subscribers, **kwargs)


async def rerun_failed(
    store: Any,
    run_id: str,
    *,
    force: bool = False,
    workflow: Workflow | None = None,
    subscribers: Iterable[Subscriber] = (),
    **kwargs: Any,
) -> Execution:
    """Start a new run re-running only what did not complete; returns the `Execution`."""
    plan = await plan_rerun_failed(store, run_id, force=force, workflow=workflow)
    return await start_plan(store, plan, subscribers=subscribers, **kwargs)


async def rerun_from(
    store: Any,
    run_id: str,
    task_id: str,
    *,
    force: bool = False,
    workflow: Workflow | None = None,
    subscribers: Iterable[Subscriber] = (),
    **kwargs: Any,
) -> Execution:
    """Start a new run re-running `task_id` and its downstream tasks; returns the `Execution`."""
    plan = await plan_rerun_from(store, run_id, task_id, force=force, workflow=workflow)
    return await start_plan(store, plan, subscribers=subscribers, **kwargs)
