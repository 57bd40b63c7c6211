"""The scheduler: runs a workflow's tasks as soon as their dependencies allow and a slot is free.

It knows nothing of the UI or the database: it emits typed events (events.py) to its
subscribers and accepts a few commands (cancel the run, cancel a task).

`Execution` holds a run together; each concern has a module of its own:
- progress.py: which tasks may run, given which have ended (trigger rules, skips, groups);
- ledger.py: what each task sees of the context, who wrote what, write conflicts;
- lanes.py: the few asyncio tasks that run lifecycles one after another, and their slice;
- lifecycle.py: a task's attempts, retry delays, fallback and end;
- attempts.py: one attempt, in the place its runner says (loop, thread, process, remote);
- ending.py: how a run ends (and that it always does); result.py: what it gives back;
- tuning.py, watchdog.py, logs.py: the GC hold, a body blocking the loop, task output.

Here: slots (at most `max_concurrency` bodies hold one; ready tasks take free slots in a
stable order, topological then by name), the start (behind an optional gate), cancels, the
events, and map_over instances. Every task reaches a final state, whatever fails or is
cancelled, so the run always ends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import heapq
import itertools
import random
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..context import _MISSING, Context, to_json_value
from ..workflow import Workflow
from .attempts import RemoteRunner, body_holding_loop
from .ending import Ending
from .events import (
    CANCEL_WAITS_FOR_THREAD,
    FINAL_STATES,
    ContextWritten,
    Event,
    LogLine,
    RunStarted,
    TaskInfo,
    TaskLogs,
    TaskProgress,
    TasksAdded,
    TaskStateChanged,
    task_info,
    unchecked,
)
from .lanes import SLICE_S, Lanes, Unit
from .ledger import Ledger
from .lifecycle import Lifecycle
from .logs import LogBuffer, capture
from .progress import Progress
from .result import RunResult
from .runners import get_process_pool
from .state import RunView
from .tuning import hold_gc
from .watchdog import Watchdog, watchdog_for
from .worker import describe_error

Subscriber = Callable[[Event], object]  # sees every event of a run, in order; must not block


class Execution(Lifecycle, Ending):
    """One run of a workflow. Create with `start()`; await `wait()` for the result."""

    def __init__(
        self,
        workflow: Workflow,
        context: Mapping[str, Any] | Context | None = None,
        *,
        max_concurrency: int | None = None,
        subscribers: Iterable[Subscriber] = (),
        run_id: str | None = None,
        clock: Callable[[], float] = time.time,
        slice_s: float = SLICE_S,
        slice_clock: Callable[[], float] = time.perf_counter,
        rng: random.Random | None = None,
        reuse: Mapping[str, Mapping[str, Any]] | None = None,
        resumed_from: str | None = None,
        remote: RemoteRunner | None = None,
        options: Mapping[str, Any] | None = None,
        log_level: str | int | None = None,
    ) -> None:
        if log_level is not None:  # `logging` records kept from this level up (process-wide)
            capture.set_level(log_level)
        self.wf = workflow
        self.run_id = run_id or uuid.uuid4().hex[:12]
        cap = workflow.max_concurrency if max_concurrency is None else max_concurrency
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
            raise ValueError(f"max_concurrency must be a whole number of at least 1, not {cap!r}")
        self.cap = cap
        self.clock = clock
        self.rng = rng or random.Random()
        self.remote = remote
        self.options = dict(options or {})
        self.resumed_from = resumed_from
        self.view = RunView()
        self._subscribers: list[Subscriber] = [self.view.apply, *subscribers]
        self.subscriber_errors: list[str] = []
        if isinstance(context, Context):
            context = context.to_dict()
        self.initial: dict[str, Any] = {k: to_json_value(k, v) for k, v in (context or {}).items()}
        self.reuse = {k: dict(v) for k, v in (reuse or {}).items() if k in workflow.tasks}

        # the GC hold starts here, not at start(): building the per-task tables below allocates
        # enough to set off a full collection of everything the workflow holds. Released when
        # the run finishes, or when an execution that never finished is dropped.
        self._gc_unhold = weakref.finalize(self, hold_gc())

        self.rank = workflow.rank
        self.progress = Progress(workflow)
        self.state = self.progress.state  # every task's (and instance's) state, by id
        self.units: dict[str, Unit] = {t: Unit(t, workflow.tasks[t]) for t in workflow.order}
        self.ledger = Ledger(workflow, self.initial)
        self.running = 0
        self.peak_running = 0
        self.cancelled = False
        self.cancel_asked: set[str] = set()  # thread bodies to cancel when they return
        self._ready: list[tuple[int, int, int, str, asyncio.Future[None] | None]] = []
        self._seq = itertools.count()
        self._slice = (slice_s, slice_clock)
        self.lanes: Lanes  # made by start(): a run never started holds no cycle to free
        self.loop: asyncio.AbstractEventLoop | None = None
        self._finished: asyncio.Future[RunResult] | None = None
        self.threads: concurrent.futures.ThreadPoolExecutor | None = None
        self.buffer: LogBuffer | None = None
        self._started = False
        self._internal: tuple[str, str] | None = None  # what ended the run early (_end_now)
        self._held = False  # bodies wait: the run's start gate is not through yet
        self._gate: asyncio.Task[None] | None = None
        self.watchdog: Watchdog | None = None  # while bodies run on the loop (see watchdog.py)

    # -- public --------------------------------------------------------------------------------

    def subscribe(self, fn: Subscriber) -> None:
        """Add a subscriber (before `start()` to see every event)."""
        self._subscribers.append(fn)

    def start(self, *, gate: Awaitable[Any] | None = None) -> Execution:
        """Begin the run on the running loop. Returns self.

        `gate`: awaited after RunStarted is emitted and before any body starts (the store's
        flush: the run is on disk before the first body runs). If it fails, the run ends at
        once as failed, its tasks cancelled, no body having run."""
        if self._started:
            raise RuntimeError("this execution has already started")
        self._started = True
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.context = contextvars.copy_context()  # lifecycles start from the caller's context
        self.lanes = Lanes(self, *self._slice)
        self._finished = loop.create_future()
        # the buffer calls back through a weak reference: no cycle between it and the
        # execution, so a finished execution that is dropped is freed at once (by reference
        # counting), not left for a full garbage collection to find
        me = weakref.ref(self)

        def on_lines(lines: list[LogLine]) -> None:
            ex = me()
            if ex is not None:
                ex._emit_lines(lines)

        def on_progress(task_id: str, done: float, total: float | None, msg: str | None) -> None:
            ex = me()
            if ex is not None:
                ex._emit_progress(task_id, done, total, msg)

        self.buffer = LogBuffer(loop, on_lines, on_progress, self.clock)
        capture.install()
        if self.wf.runners.get("thread"):
            self.threads = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.cap + 2, thread_name_prefix=f"tui-flow-{self.run_id}"
            )
        if self.wf.runners.get("async"):
            self.watchdog = watchdog_for(loop, body_holding_loop)
            if self.watchdog is not None:
                self.watchdog.add(self)
        n_proc = self.wf.runners.get("process", 0)
        if n_proc and self.remote is None:
            pool = get_process_pool()
            warming = loop.create_task(pool.warm(min(n_proc, self.cap)))
            warming.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.started_at = self.clock()
        self._emit(
            RunStarted(
                run_id=self.run_id,
                at=self.started_at,
                workflow=self.wf.name,
                file=self.wf.file,
                source_hash=self.wf.source_hash,
                max_concurrency=self.cap,
                tasks=[task_info(self.wf.tasks[tid]) for tid in self.wf.order],
                initial_context=self.initial,
                resumed_from=self.resumed_from,
                reused=dict.fromkeys(self.reuse, "completed"),
                executor=getattr(self.remote, "name", "local"),
                options=self.options,
            )
        )
        self._held = gate is not None
        try:
            self._begin()
        except BaseException as exc:
            self.crash(exc, "the start of the run")
        if gate is not None:
            self._gate = loop.create_task(
                self._open_gate(gate), name=f"tui-flow start {self.run_id}"
            )
        return self

    async def _open_gate(self, gate: Awaitable[Any]) -> None:
        try:
            await gate
        except asyncio.CancelledError:
            self.cancel()
            raise
        except BaseException as exc:
            _, tb = describe_error(exc)
            self._end_now(f"the run was not started: {exc}", tb)
            return
        self._held = False
        try:
            self._pump()
            if self.progress.finished:
                self._finish()
        except BaseException as exc:
            self.crash(exc, "the start of the run")

    def _begin(self) -> None:
        """Settle the reused tasks and start the first ones (held: only decide them)."""
        settled: list[str] = []
        for tid in self.wf.order:
            if tid in self.reuse:
                self.state[tid] = "completed"
                writes = self.reuse[tid]
                self.ledger.record(tid, writes)
                if writes:
                    self._emit(
                        ContextWritten(
                            run_id=self.run_id, at=self.started_at, task_id=tid, values=writes
                        )
                    )
                self._emit(
                    TaskStateChanged(
                        run_id=self.run_id,
                        at=self.started_at,
                        task_id=tid,
                        state="completed",
                        reason="reused from earlier run",
                    )
                )
                settled.append(tid)
        if settled:
            self._settle(settled, propagate_only=True)
        for tid in self.progress.roots():
            self._resolve(tid)
        self._pump()
        if self.progress.finished and not self._held:
            self._finish()

    async def wait(self) -> RunResult:
        """Wait for the run to end. Cancelling this waiter cancels the run, lets it wind down
        (every task reaches a final state, subscribers see RunFinished), then re-raises."""
        assert self._finished is not None, "start() the execution first"
        try:
            return await asyncio.shield(self._finished)
        except asyncio.CancelledError:
            self.cancel()
            await asyncio.shield(self._finished)
            raise

    @property
    def is_done(self) -> bool:
        return self._finished is not None and self._finished.done()

    def cancel(self) -> None:
        """Cancel the run: running bodies are cancelled, nothing new starts."""
        if self.cancelled or self.is_done:
            return
        self.cancelled = True
        for unit in list(self.units.values()):
            if unit.lane is not None:
                unit.lane.cancel()
        pending = [
            uid
            for uid, unit in self.units.items()
            if self.state[uid] == "pending" and unit.lane is None
        ]
        for uid in pending:
            self.set_state(uid, "cancelled", reason="run cancelled")
        self._ready.clear()
        self._settle(pending)

    def cancel_task(self, task_id: str) -> bool:
        """Cancel one task (or instance). Its dependents follow their trigger rules."""
        unit = self.units.get(task_id)
        if unit is None or self.state.get(task_id) in FINAL_STATES:
            return False
        if task_id in self.progress.groups:
            for uid in self.progress.groups[task_id]:
                self.cancel_task(uid)
            return True
        if unit.lane is not None:
            if self.state.get(task_id) == "running" and self._runs_in_thread(unit):
                # a thread cannot be stopped: it stays running (and says so) until its body
                # returns, and is cancelled then (lifecycle.py)
                if task_id not in self.cancel_asked:
                    self.cancel_asked.add(task_id)
                    attempt = self.view.tasks[task_id].attempt if task_id in self.view.tasks else 0
                    self.set_state(task_id, "running", attempt, reason=CANCEL_WAITS_FOR_THREAD)
                return True
            unit.lane.cancel()
            return True
        self._ready = [e for e in self._ready if e[3] != task_id]
        heapq.heapify(self._ready)
        self.set_state(task_id, "cancelled", reason="cancelled by user")
        self._settle([task_id])
        return True

    def _runs_in_thread(self, unit: Unit) -> bool:
        return unit.task.runner == "thread" and self.remote is None

    # -- events --------------------------------------------------------------------------------

    def _emit(self, event: Any) -> None:
        for fn in self._subscribers:
            try:
                fn(event)
            except BaseException as exc:  # a broken view must not break the run
                msg = f"subscriber {getattr(fn, '__qualname__', fn)!r} failed: {exc!r}"
                if msg not in self.subscriber_errors:
                    self.subscriber_errors.append(msg)

    def _emit_lines(self, lines: list[LogLine]) -> None:
        self._emit(TaskLogs(run_id=self.run_id, at=lines[-1].at, lines=lines))

    def _emit_progress(
        self, task_id: str, done: float, total: float | None, msg: str | None
    ) -> None:
        if self.state.get(task_id) not in ("running", "retrying"):
            return
        self._emit(
            TaskProgress(
                run_id=self.run_id,
                at=self.clock(),
                task_id=task_id,
                done=done,
                total=total,
                message=msg,
            )
        )

    def set_state(self, tid: str, state: str, attempt: int = 0, **extra: Any) -> None:
        self.state[tid] = state
        unit = self.units[tid]
        self._emit(
            TaskStateChanged.trusted(
                self.run_id, self.clock(), tid, state, attempt, unit.task.spec.max_attempts, **extra
            )
        )

    # -- the graph -----------------------------------------------------------------------------

    def _settle(self, finals: list[str], propagate_only: bool = False) -> None:
        """Tasks reached a final state: decide their dependents (skips and cancels spread)."""
        work = list(finals)
        progress = self.progress
        while work:
            tid = work.pop()
            parent = self.units[tid].parent
            if parent is not None:
                if progress.instance_ended(parent):
                    self._complete_group(parent, defer=False)
                continue
            for child in progress.ended(tid):
                if self.cancelled:
                    self.set_state(child, "cancelled", reason="run cancelled")
                    work.append(child)
                elif child in self.reuse:
                    continue
                elif self._resolve(child, defer=True):
                    work.append(child)
        if not propagate_only:
            self._pump()
            if progress.finished:
                self._finish()

    def _resolve(self, tid: str, defer: bool = False) -> bool:
        """All dependencies of `tid` are final: run it or skip it. True if it ended at once."""
        why = self.progress.verdict(tid)
        cond = self.units[tid].task.spec.run_if
        if why is None and cond is not None:
            why = cond.why_not(self.ledger.visible_for(tid), self.state)
        if why is not None:
            self.set_state(tid, "skipped", reason=why)
            if not defer:
                self._settle([tid])
            return True
        if self.units[tid].task.spec.map_over is not None:
            return self._expand(tid, defer)
        self._push(tid)
        return False

    def _push(self, uid: str, fut: asyncio.Future[None] | None = None) -> None:
        unit = self.units[uid]
        top = unit.parent or uid
        heapq.heappush(self._ready, (self.rank[top], unit.index or 0, next(self._seq), uid, fut))

    def _pump(self) -> None:
        """Give free slots to ready units, in order."""
        if self._held:
            return  # the run is not through its gate yet (see start)
        lanes = self.lanes
        lanes.short = False
        ready = self._ready
        while ready and self.running < self.cap and not self.cancelled:
            _, _, _, uid, fut = ready[0]
            unit = self.units[uid]
            if fut is not None:  # a lifecycle waiting on its own lane for a slot again
                heapq.heappop(ready)
                if not fut.done():
                    self._take_slot(unit)
                    fut.set_result(None)
                continue
            if self.state[uid] in FINAL_STATES:
                heapq.heappop(ready)
                continue
            lane = lanes.available()
            if lane is None:
                lanes.short = True  # it waits for a lane (see Lanes)
                lanes.wanted()
                return
            heapq.heappop(ready)
            self._take_slot(unit)
            lanes.give(lane, unit)

    def _take_slot(self, unit: Unit) -> None:
        unit.holds_slot = True
        self.running += 1
        if self.running > self.peak_running:
            self.peak_running = self.running

    def _release_final(self, unit: Unit) -> None:
        """The unit reached its final state: its slot goes back, and the lane running it is
        the first to be handed a unit that gets a slot (it takes it once the lifecycle
        returns, without a trip through the loop)."""
        if unit.holds_slot:
            self.lanes.freed(unit)
        self.release_slot(unit)

    def release_slot(self, unit: Unit) -> None:
        if unit.holds_slot:
            unit.holds_slot = False
            self.running -= 1
            if not self.is_done:
                self._pump()

    def _hand_slot_to_thread(self, unit: Unit, zombie: concurrent.futures.Future[Any]) -> None:
        """A timed-out thread still runs: its slot stays taken until it really ends."""
        if not unit.holds_slot:
            return
        unit.holds_slot = False
        loop = self.loop
        assert loop is not None

        def ended(_: Any) -> None:
            def release() -> None:
                self.running -= 1
                if not self.is_done:
                    try:
                        self._pump()
                    except BaseException as exc:
                        self.crash(exc, "the scheduler")

            try:
                loop.call_soon_threadsafe(release)
            except RuntimeError:
                pass

        zombie.add_done_callback(ended)

    async def _wait_slot(self, unit: Unit) -> None:
        assert self.loop is not None
        fut: asyncio.Future[None] = self.loop.create_future()
        self._push(unit.id, fut)
        self._pump()
        # if a cancel lands just after the slot was granted, the lifecycle's `finally` gives
        # the slot back (`holds_slot` is already set)
        await fut

    # -- map_over ------------------------------------------------------------------------------

    def _expand(self, tid: str, defer: bool) -> bool:
        """Create one instance per item of the mapped list. True if the task already ended."""
        task = self.units[tid].task
        key = task.spec.map_over
        assert key is not None
        items = self.ledger.visible_for(tid).get(key, _MISSING)
        if items is _MISSING or not isinstance(items, list):
            what = "is not set" if items is _MISSING else f"is a {type(items).__name__}, not a list"
            self.set_state(tid, "failed", error=f"map_over: context key {key!r} {what}")
            if not defer:
                self._settle([tid])
            return True
        self.set_state(tid, "running")
        if not items:
            self._complete_group(tid, defer)
            return True
        infos = []
        base = task_info(task).model_dump()
        base.update(dependencies=(), map_over=None, parent=tid)
        for i, item in enumerate(items):
            uid = f"{tid}[{i}]"
            self.units[uid] = Unit(uid, task, parent=tid, item=item, index=i)
            infos.append(unchecked(TaskInfo, **{**base, "id": uid}))
        self.progress.expand(tid, (info.id for info in infos))
        self._emit(TasksAdded(run_id=self.run_id, at=self.clock(), parent=tid, tasks=infos))
        for info in infos:
            self._push(info.id)
        return False

    def _complete_group(self, tid: str, defer: bool) -> None:
        """Every instance of map_over task `tid` has ended: so does `tid`."""
        outcome, bad = self.progress.group_outcome(tid)
        instances = [self.units[u] for u in self.progress.groups.get(tid, ())]
        if outcome == "cancelled":
            self.set_state(tid, "cancelled", reason="instances cancelled")
        elif outcome == "failed":
            first = bad[0]
            err = self.view.tasks[first].error if first in self.view.tasks else None
            self.set_state(
                tid,
                "failed",
                error=f"{len(bad)} of {len(instances)} instances did not complete; "
                f"{first}: {err or self.state[first]}",
            )
        else:
            writes: dict[str, Any] = {}
            for u in instances:
                writes.update(u.writes)
            writes[tid] = [u.value for u in instances]
            conflict = self.ledger.conflict(tid, writes)
            if conflict is not None:
                self.set_state(tid, "failed", error=f"ConflictError: {conflict}")
            else:
                self.ledger.record(tid, writes)
                self._emit(
                    ContextWritten(run_id=self.run_id, at=self.clock(), task_id=tid, values=writes)
                )
                self.set_state(tid, "completed")
        if not defer:
            self._settle([tid])


def start(
    workflow: Workflow, context: Mapping[str, Any] | Context | None = None, **options: Any
) -> Execution:
    """Start a run on the running loop and return its handle (`cancel()`, `wait()`)."""
    return Execution(workflow, context, **options).start()


async def run(
    workflow: Workflow | str | Path,
    context: Mapping[str, Any] | Context | None = None,
    **options: Any,
) -> RunResult:
    """Run a workflow to its end and return the result. Accepts a Workflow or a file path."""
    if not isinstance(workflow, Workflow):
        from ..loader import load

        workflow = load(workflow).workflow(options.pop("workflow_name", None))
    return await start(workflow, context, **options).wait()


def run_sync(
    workflow: Workflow | str | Path,
    context: Mapping[str, Any] | Context | None = None,
    **options: Any,
) -> RunResult:
    """`run()` for code that is not async (a script). Inside a running loop it refuses before
    making a coroutine: `tui_flow.run_sync` (tui_flow/api.py) runs on a worker thread there."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run(workflow, context, **options))
    raise RuntimeError(
        "engine.run_sync() cannot run inside a running event loop: use "
        "`await tui_flow.run(...)`, or tui_flow.run_sync(...), which runs on a worker thread"
    )
