"""Resume and re-run stored runs: the engine APIs behind `tui-flow resume` / `rerun`.

Each action first makes a `RunPlan` (pure: what would run, what is reused, refusals with a
clear reason), then starts an `Execution` from it with the store recording:

    execution = await resume(store, run_id)              # same run id, continues in place
    execution = await rerun_failed(store, run_id)        # a new run linked to the old one
    execution = await rerun_from(store, run_id, "partition_data")
    result = await execution.wait()

A task is reused (not run again; its stored context writes restored) when it completed in the
stored run, is not asked to run again, and every task upstream of it is reused too; so a task
whose input may change always runs again. All three refuse when the workflow file changed
since the run (its source hash differs) unless `force=True`.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..engine.scheduler import Execution, Subscriber
from ..errors import TuiFlowError
from ..workflow import Workflow
from .sqlite import RunRow, RunStore

Action = Literal["resume", "rerun_failed", "rerun_from"]


class ActionRefused(TuiFlowError):
    """The stored run cannot be resumed / re-run as asked (the message says why)."""


@dataclass
class RunPlan:
    """What a resume or re-run will do. `execution()` builds the engine run from it."""

    action: Action
    source: RunRow
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
        self,
        store: RunStore | None = None,
        *,
        subscribers: Iterable[Subscriber] = (),
        **kwargs: Any,
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


async def _load_workflow(
    run: RunRow, workflow: Workflow | None, force: bool
) -> tuple[Workflow, bool]:
    if workflow is None:
        if not run.file:
            raise ActionRefused(
                f"run {run.run_id} was not started from a workflow file, so it cannot be "
                f"loaded again; pass the Workflow object"
            )
        from ..loader import load

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


def _downstream(workflow: Workflow, task_id: str) -> set[str]:
    import networkx as nx

    return {task_id, *nx.descendants(workflow.graph, task_id)}


async def _plan(
    store: RunStore,
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
    exclude: set[str] = set()
    if action == "rerun_from":
        assert task_id is not None
        if task_id not in wf.tasks:
            close = difflib.get_close_matches(task_id, list(wf.tasks), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(wf.order)
            raise ActionRefused(
                f"workflow {wf.name!r} has no task {task_id!r}{hint} (tasks: {known})"
            )
        exclude = _downstream(wf, task_id)
    writes = await store.context_writes(run.run_id)
    reuse: dict[str, dict[str, Any]] = {}
    for tid in wf.order:
        row = rows.get(tid)
        if row is None or row.status != "completed" or tid in exclude:
            continue
        if all(d in reuse for d in wf.tasks[tid].spec.dependencies):
            reuse[tid] = writes.get(tid, {})
    return RunPlan(
        action=action,
        source=run,
        workflow=wf,
        context=await store.initial_context(run.run_id),
        reuse=reuse,
        run_id=run.run_id if action == "resume" else None,
        resumed_from=run.run_id,
        max_concurrency=run.max_concurrency,
        options=await store.options(run.run_id),
        source_changed=changed,
    )


async def plan_resume(
    store: RunStore, run_id: str, *, force: bool = False, workflow: Workflow | None = None
) -> RunPlan:
    """Plan continuing an interrupted, failed or cancelled run in place (same run id)."""
    return await _plan(store, run_id, "resume", force=force, workflow=workflow)


async def plan_rerun_failed(
    store: RunStore, run_id: str, *, force: bool = False, workflow: Workflow | None = None
) -> RunPlan:
    """Plan a new run that runs what did not complete (and what depends on it)."""
    return await _plan(store, run_id, "rerun_failed", force=force, workflow=workflow)


async def plan_rerun_from(
    store: RunStore,
    run_id: str,
    task_id: str,
    *,
    force: bool = False,
    workflow: Workflow | None = None,
) -> RunPlan:
    """Plan a new run that runs `task_id` and everything downstream of it again."""
    return await _plan(store, run_id, "rerun_from", task_id=task_id, force=force, workflow=workflow)


async def start_plan(
    store: RunStore, plan: RunPlan, *, subscribers: Iterable[Subscriber] = (), **kwargs: Any
) -> Execution:
    """Start the plan's run, recorded in `store`. A resume first claims the stored run, so
    two processes cannot resume the same run at once."""
    if plan.action == "resume" and not await store.claim(plan.source.run_id):
        raise ActionRefused(f"run {plan.source.run_id} is being resumed by another process")
    try:
        execution = plan.execution(store, subscribers=subscribers, **kwargs)
        return execution.start()
    except BaseException:
        if plan.action == "resume":
            await store.release(plan.source.run_id, plan.source.status)
        raise


async def resume(
    store: RunStore,
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
    store: RunStore,
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
    store: RunStore,
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
