"""The scheduler: runs a workflow's tasks as soon as their dependencies allow and a slot is free.

It knows nothing of the UI or the database: it emits typed events (see `events.py`) to its
subscribers and accepts a few commands (cancel the run, cancel a task).

Rules, in one place:
- at most `max_concurrency` bodies hold a slot at once; a task waiting out a retry delay
  gives its slot back; a timed-out thread body (which cannot be stopped) keeps its slot until
  it really ends, and the next attempt of that task never overlaps it;
- ready tasks take free slots in a stable order (topological, then by name);
- a task's final state decides its dependents through their trigger rule; skips propagate;
- each task sees the initial context plus its ancestors' writes; two tasks that may run in
  parallel writing one key is a conflict, which fails the later one with both ids named;
- the run always ends: every task reaches a final state, whatever fails or is cancelled.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import heapq
import itertools
import random
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from ..context import _MISSING, Context, to_json_value
from ..tasks import Task
from ..workflow import Workflow
from .attempts import Attempt, blocked_message, body_holding_loop, run_attempt
from .events import (
    FINAL_STATES,
    ContextWritten,
    LogLine,
    RetryScheduled,
    RunFinished,
    RunStarted,
    TaskInfo,
    TaskLogs,
    TaskProgress,
    TasksAdded,
    TaskStateChanged,
    task_info,
)
from .lanes import SLICE_S, Lane, Lanes
from .ledger import Ledger
from .logs import LogBuffer, capture
from .report import Report
from .result import RunResult, TaskOutcomes
from .retry import retry_delay_s
from .runners import ProcessJob, describe_error, get_process_pool
from .state import RunView
from .tuning import hold_gc
from .watchdog import Watchdog, watchdog_for

Subscriber = Callable[[Any], None]


class RemoteRunner(Protocol):
    """Runs bodies elsewhere (a Dask cluster). Cancelling `run` stops the attempt there."""

    name: str

    def describe(self) -> str:
        """Where the bodies run, for a header (`dask: tcp://...`)."""
        ...

    async def start(self) -> Any:
        """Connect (or start a local cluster) before the first attempt needs it."""
        ...

    async def run(
        self, job: ProcessJob, on_message: Callable[[tuple[Any, ...]], None]
    ) -> tuple[Any, ...]: ...

    async def close(self) -> None: ...


class Unit:
    """Something that takes a slot: a task, or one instance of a map_over task."""

    __slots__ = (
        "holds_slot",
        "id",
        "index",
        "item",
        "lane",
        "parent",
        "task",
        "value",
        "writes",
    )

    def __init__(
        self,
        id: str,
        task: Task,
        parent: str | None = None,
        item: Any = _MISSING,
        index: int | None = None,
    ) -> None:
        self.id = id
        self.task = task
        self.parent = parent
        self.item = item
        self.index = index
        self.holds_slot = False
        self.lane: Lane | None = None  # the lane running its lifecycle, while it runs
        self.value: Any = None
        self.writes: Mapping[str, Any] = _NO_WRITES  # an instance's, once it completed


_NO_WRITES: Mapping[str, Any] = MappingProxyType({})


class Execution:
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
    ) -> None:
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

        order = workflow.order
        self.rank = workflow.rank
        self.children = workflow.children  # shared with the workflow: read only
        self.deps_left = {tid: len(workflow.tasks[tid].spec.dependencies) for tid in order}
        self.state: dict[str, str] = dict.fromkeys(order, "pending")
        self.units: dict[str, Unit] = {tid: Unit(tid, workflow.tasks[tid]) for tid in order}
        self.ledger = Ledger(workflow, self.initial)
        self.done = 0
        self.running = 0
        self.peak_running = 0
        self.cancelled = False
        self.group_left: dict[str, int] = {}
        self.group_units: dict[str, list[Unit]] = {}
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
            if self.done == len(self.wf.tasks):
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
        for tid in self.wf.order:
            if self.state[tid] == "pending" and not self.units[tid].task.spec.dependencies:
                self._resolve(tid)
        self._pump()
        if self.done == len(self.wf.tasks) and not self._held:
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
        if task_id in self.group_left:
            for u in self.group_units.get(task_id, []):
                self.cancel_task(u.id)
            return True
        if unit.lane is not None:
            unit.lane.cancel()
            return True
        self._ready = [e for e in self._ready if e[3] != task_id]
        heapq.heapify(self._ready)
        self.set_state(task_id, "cancelled", reason="cancelled by user")
        self._settle([task_id])
        return True

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
        """Tasks reached a final state: count them, then decide their dependents."""
        work = list(finals)
        while work:
            tid = work.pop()
            unit = self.units[tid]
            if unit.parent is not None:
                self._instance_settled(unit)
                continue
            self.done += 1
            for child in self.children[tid]:
                self.deps_left[child] -= 1
                if self.deps_left[child] == 0 and self.state[child] == "pending":
                    if self.cancelled:
                        self.set_state(child, "cancelled", reason="run cancelled")
                        work.append(child)
                    elif child in self.reuse:
                        continue
                    else:
                        decided = self._resolve(child, defer=True)
                        if decided:
                            work.append(child)
        if not propagate_only:
            self._pump()
            if self.done == len(self.wf.tasks):
                self._finish()

    def _resolve(self, tid: str, defer: bool = False) -> bool:
        """All dependencies of `tid` are final: run it or skip it. True if it was skipped."""
        spec = self.units[tid].task.spec
        rule = spec.trigger_rule
        failed = [d for d in spec.dependencies if self.state[d] == "failed"]
        if rule == "all_success":
            bad = [d for d in spec.dependencies if self.state[d] != "completed"]
            run, why = not bad, f"upstream {bad[0]!r} {self.state[bad[0]]}" if bad else None
        elif rule == "all_done":
            run, why = True, None
        elif rule == "one_failed":
            run, why = bool(failed), "no upstream task failed"
        else:  # none_failed
            cancelled = [d for d in spec.dependencies if self.state[d] == "cancelled"]
            blocker = failed or cancelled
            run = not blocker
            why = f"upstream {blocker[0]!r} {self.state[blocker[0]]}" if blocker else None
        if not run:
            self.set_state(tid, "skipped", reason=why)
            if not defer:
                self._settle([tid])
            return True
        if spec.map_over is not None:
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
        while self._ready and self.running < self.cap and not self.cancelled:
            _, _, _, uid, fut = heapq.heappop(self._ready)
            unit = self.units[uid]
            if fut is not None:
                if fut.done():
                    continue
                self._take_slot(unit)
                fut.set_result(None)
            else:
                if self.state[uid] in FINAL_STATES:
                    continue
                self._take_slot(unit)
                self.lanes.start(unit)

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
        members = self.group_units[tid] = []
        base = task_info(task).model_dump()
        base.update(dependencies=(), map_over=None, parent=tid)
        for i, item in enumerate(items):
            uid = f"{tid}[{i}]"
            unit = self.units[uid] = Unit(uid, task, parent=tid, item=item, index=i)
            members.append(unit)
            self.state[uid] = "pending"
            infos.append(TaskInfo(**{**base, "id": uid}))
        self.group_left[tid] = len(items)
        self._emit(TasksAdded(run_id=self.run_id, at=self.clock(), parent=tid, tasks=infos))
        for info in infos:
            self._push(info.id)
        return False

    def _instance_settled(self, unit: Unit) -> None:
        parent = unit.parent
        assert parent is not None
        self.group_left[parent] -= 1
        if self.group_left[parent] == 0 and self.state[parent] not in FINAL_STATES:
            self._complete_group(parent, defer=False)

    def _complete_group(self, tid: str, defer: bool) -> None:
        instances = self.group_units.get(tid, [])
        bad = [u for u in instances if self.state[u.id] != "completed"]
        if bad:
            if all(self.state[u.id] == "cancelled" for u in bad):
                self.set_state(tid, "cancelled", reason="instances cancelled")
            else:
                failed = [u for u in bad if self.state[u.id] == "failed"]
                first = failed[0] if failed else bad[0]
                err = self.view.tasks[first.id].error if first.id in self.view.tasks else None
                self.set_state(
                    tid,
                    "failed",
                    error=f"{len(bad)} of {len(instances)} instances did not complete; "
                    f"{first.id}: {err or self.state[first.id]}",
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

    # -- running a task ------------------------------------------------------------------------

    async def lifecycle(self, unit: Unit) -> None:
        spec = unit.task.spec
        attempt = 0
        try:
            while True:
                attempt += 1
                result = await run_attempt(self, unit, attempt, unit.task.fn, "body")
                if result.ok:
                    self._succeed(unit, attempt, result, via_fallback=False)
                    return
                if result.retryable and attempt < spec.max_attempts:
                    delay = retry_delay_s(spec, attempt, self.rng)
                    self._emit(
                        RetryScheduled(
                            run_id=self.run_id,
                            at=self.clock(),
                            task_id=unit.id,
                            attempt=attempt,
                            next_attempt=attempt + 1,
                            max_attempts=spec.max_attempts,
                            delay_s=delay,
                            error=result.error or "failed",
                        )
                    )
                    self.set_state(
                        unit.id,
                        "retrying",
                        attempt,
                        error=result.error,
                        traceback=result.traceback,
                        reason=result.reason,
                        timed_out=result.timed_out,
                    )
                    if result.zombie is not None:
                        self._hand_slot_to_thread(unit, result.zombie)
                    else:
                        self.release_slot(unit)
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if result.zombie is not None and not result.zombie.done():
                        await asyncio.wrap_future(result.zombie)
                    await self._wait_slot(unit)
                    continue
                if unit.task.fallback_fn is not None:
                    self.set_state(
                        unit.id,
                        "retrying",
                        attempt,
                        error=result.error,
                        traceback=result.traceback,
                        reason="falling back",
                        timed_out=result.timed_out,
                    )
                    if result.zombie is not None and not result.zombie.done():
                        # the timed-out body keeps its slot until it ends; the fallback is
                        # another function, so it need not wait for it: it takes a new slot
                        self._hand_slot_to_thread(unit, result.zombie)
                        await self._wait_slot(unit)
                    fb = await run_attempt(
                        self, unit, attempt + 1, unit.task.fallback_fn, "fallback"
                    )
                    if fb.ok:
                        self._succeed(unit, attempt + 1, fb, via_fallback=True)
                        return
                    self._fail(
                        unit,
                        attempt + 1,
                        error=f"{fb.error} (fallback, after: {result.error})",
                        traceback=fb.traceback,
                        reason="fallback failed",
                        zombie=fb.zombie,
                        timed_out=fb.timed_out,
                    )
                    return
                self._fail(
                    unit,
                    attempt,
                    error=result.error,
                    traceback=result.traceback,
                    reason=result.reason,
                    zombie=result.zombie,
                    timed_out=result.timed_out,
                )
                return
        except asyncio.CancelledError:
            lane = unit.lane
            if lane is not None and lane.cancelled_from_outside:
                # the loop is shutting down: the whole run ends (this task is already being
                # cancelled, so cancel() is not to ask it once more)
                unit.lane = None
                self.cancel()
                unit.lane = lane
            if self.state[unit.id] not in FINAL_STATES:
                why = "run cancelled" if self.cancelled else "cancelled by user"
                self.set_state(unit.id, "cancelled", attempt, reason=why)
                self._release_final(unit)
                self._settle([unit.id])
        finally:
            self.release_slot(unit)

    def _succeed(self, unit: Unit, attempt: int, result: Attempt, via_fallback: bool) -> None:
        self._flush_logs()
        if unit.parent is not None:
            conflict = self.ledger.claim_instance_keys(unit.parent, unit.id, result.writes)
            if conflict is not None:
                self._fail(unit, attempt, error=f"ConflictError: {conflict}")
                return
            unit.writes = result.writes
            unit.value = result.value
            self.set_state(
                unit.id,
                "completed",
                attempt,
                reason="via fallback" if via_fallback else None,
                via_fallback=via_fallback,
            )
        else:
            conflict = self.ledger.conflict(unit.id, result.writes)
            if conflict is not None:
                self._fail(unit, attempt, error=f"ConflictError: {conflict}")
                return
            self.ledger.record(unit.id, result.writes)
            if result.writes:
                self._emit(
                    ContextWritten(
                        run_id=self.run_id, at=self.clock(), task_id=unit.id, values=result.writes
                    )
                )
            self.set_state(
                unit.id,
                "completed",
                attempt,
                reason="via fallback" if via_fallback else None,
                via_fallback=via_fallback,
            )
        self._release_final(unit)
        self._settle([unit.id])

    def _fail(
        self,
        unit: Unit,
        attempt: int,
        error: str | None,
        traceback: str | None = None,
        reason: str | None = None,
        zombie: concurrent.futures.Future[Any] | None = None,
        timed_out: bool = False,
    ) -> None:
        self._flush_logs()
        self.set_state(
            unit.id,
            "failed",
            attempt,
            error=error,
            traceback=traceback,
            reason=reason,
            timed_out=timed_out,
        )
        if zombie is not None:
            self._hand_slot_to_thread(unit, zombie)
        self._release_final(unit)
        self._settle([unit.id])

    def _flush_logs(self) -> None:
        if self.buffer is not None and self.buffer.pending:
            self.buffer.flush()

    # -- the end -------------------------------------------------------------------------------

    def crash(self, exc: BaseException, where: str) -> None:
        """Something inside the engine itself went wrong. The run ends now, as failed, with the
        error and its traceback recorded: whatever state it was left in, nothing waits on it."""
        summary, tb = describe_error(exc)
        self._end_now(f"internal error in {where}: {summary}", tb)

    def _end_now(self, error: str, tb: str | None) -> None:
        """End the run at once as failed with `error`: what still runs is cancelled."""
        if self._finished is None or self._finished.done():
            return
        if self._internal is None:
            self._internal = (error, tb or "")
        self.cancelled = True  # nothing new starts
        self._ready.clear()
        for unit in list(self.units.values()):
            if unit.lane is not None and unit.lane.task is not asyncio.current_task():
                with contextlib.suppress(BaseException):
                    unit.lane.cancel()
        for uid, state in list(self.state.items()):
            if state not in FINAL_STATES:
                try:
                    self.set_state(uid, "cancelled", reason="the run stopped: internal error")
                except BaseException:
                    self.state[uid] = "cancelled"
        self._finish()

    def _finish(self) -> None:
        assert self._finished is not None
        if self._finished.done():
            return
        try:
            result = self._wind_up()
        except BaseException as exc:  # even a broken end resolves the run
            result = self._last_resort(exc)
        for step in (
            self.lanes.stop,
            capture.uninstall,
            self._gc_unhold,
            self._stop_threads,
            self._stop_watching,
        ):
            with contextlib.suppress(BaseException):
                step()
        self._finished.set_result(result)

    def _status(self) -> str:
        if self._internal is not None:
            return "failed"
        states = [self.state[t] for t in self.wf.order]
        if self.cancelled:
            return "cancelled"
        if "failed" in states:
            return "failed"
        if "cancelled" in states:
            return "cancelled"
        return "completed"

    def _wind_up(self) -> RunResult:
        """Emit RunFinished and build the result."""
        self._flush_logs()
        if self.buffer is not None:
            self.buffer.closed = True
        finished_at = self.clock()
        status = self._status()
        context = self.ledger.final(self.state)
        report = self.view.compute_report(finished_at)
        error, tb = self._internal or (None, None)
        self._emit(
            RunFinished(
                run_id=self.run_id,
                at=finished_at,
                status=status,  # type: ignore[arg-type]
                report=report.summary(),
                context=context,
                error=error,
                traceback=tb,
            )
        )
        return self._result(status, finished_at, context, report)

    def _last_resort(self, exc: BaseException) -> RunResult:
        """The end of a run whose wind-up failed: failed, with what went wrong, no figures."""
        summary, tb = describe_error(exc)
        if self._internal is None:
            self._internal = (f"internal error while ending the run: {summary}", tb)
        error, tb = self._internal
        finished_at = time.time()
        report = Report.empty(self.cap)
        with contextlib.suppress(BaseException):
            self._emit(
                RunFinished.model_construct(
                    run_id=self.run_id,
                    at=finished_at,
                    status="failed",
                    report=report.summary(),
                    context={},
                    error=error,
                    traceback=tb,
                )
            )
        return self._result("failed", finished_at, {}, report)

    def _result(
        self, status: str, finished_at: float, context: dict[str, Any], report: Report
    ) -> RunResult:
        return RunResult(
            run_id=self.run_id,
            workflow=self.wf.name,
            status=status,
            started_at=getattr(self, "started_at", finished_at),
            finished_at=finished_at,
            tasks=TaskOutcomes(self.view),
            context=context,
            report=report,
            view=self.view,
            executor=getattr(self.remote, "name", "local"),
            subscriber_errors=self.subscriber_errors,
            error=self._internal[0] if self._internal else None,
        )

    def _stop_watching(self) -> None:
        if self.watchdog is not None:
            self.watchdog.remove(self)

    def loop_blocked(self, unit_id: str, attempt: int, seconds: float) -> None:
        """The watchdog saw this attempt's body hold the event loop: say so in its log."""
        if self.buffer is not None and not self.is_done:
            self.buffer.add(unit_id, attempt, "warning", blocked_message(seconds))

    def _stop_threads(self) -> None:
        if self.threads is not None:
            self.threads.shutdown(wait=False, cancel_futures=True)


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
    """`run()` for code that is not async (a script, a notebook cell without a loop)."""
    return asyncio.run(run(workflow, context, **options))
