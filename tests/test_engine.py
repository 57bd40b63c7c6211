"""The scheduler's rules, proven with events and futures (no settling sleeps)."""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

from tui_flow import Context, Workflow, task
from tui_flow.engine import Execution, RetryScheduled, TaskLogs, TaskStateChanged, run
from tui_flow.engine.retry import retry_delay_s
from tui_flow.tasks import TaskSpec

LIMIT = 10  # seconds: a guard against a hung test, never reached when the code is right


class Recorder:
    def __init__(self) -> None:
        self.events: list = []

    def __call__(self, e) -> None:
        self.events.append(e)

    def states(self, task_id: str) -> list[str]:
        return [e.state for e in self.events if e.kind == "task_state" and e.task_id == task_id]

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


async def run_wf(wf: Workflow, context=None, **kw):
    rec = Recorder()
    result = await asyncio.wait_for(run(wf, context, subscribers=[rec], **kw), LIMIT)
    return result, rec


# -- scheduling ----------------------------------------------------------------------------------


async def test_every_task_runs_exactly_once_and_in_dependency_order():
    calls: list[str] = []

    def make(name, deps=()):
        async def body(ctx: Context) -> None:
            calls.append(name)

        body.__name__ = name
        return task(body, dependencies=deps)

    a = make("a")
    b, c = make("b", [a]), make("c", [a])
    d = make("d", [b, c])
    result, _ = await run_wf(Workflow("w", [a, b, c, d]))
    assert result.status == "completed"
    assert sorted(calls) == ["a", "b", "c", "d"]
    assert calls[0] == "a" and calls[-1] == "d"
    assert all(o.attempts == 1 for o in result.tasks.values())


async def test_concurrency_cap_is_never_exceeded():
    active = 0
    peak = 0
    tasks = []
    for i in range(20):

        async def body(ctx: Context) -> None:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.002)  # workload, allowed
            active -= 1

        body.__name__ = f"t{i}"
        tasks.append(task(body))
    result, _ = await run_wf(Workflow("w", tasks, max_concurrency=3))
    assert result.status == "completed"
    assert peak == 3


async def test_sync_tasks_cap_and_overlap_in_threads():
    active = 0
    peak = 0
    lock = threading.Lock()
    barrier = threading.Barrier(2, timeout=LIMIT)
    tasks = []
    for i in range(6):

        def body(ctx: Context) -> None:
            nonlocal active, peak
            with lock:
                active += 1
                peak = max(peak, active)
            barrier.wait()  # two bodies must be inside at once, or this breaks
            with lock:
                active -= 1

        body.__name__ = f"s{i}"
        tasks.append(task(body))
    result, _ = await run_wf(Workflow("w", tasks, max_concurrency=2))
    assert result.status == "completed", result.tasks
    assert peak == 2


async def test_independent_tasks_truly_overlap():
    a_started, b_started = asyncio.Event(), asyncio.Event()

    @task
    async def a(ctx: Context) -> None:
        a_started.set()
        await asyncio.wait_for(b_started.wait(), LIMIT)

    @task
    async def b(ctx: Context) -> None:
        b_started.set()
        await asyncio.wait_for(a_started.wait(), LIMIT)

    result, _ = await run_wf(Workflow("w", [a, b]))
    assert result.status == "completed"


async def test_a_task_starts_as_soon_as_its_own_dependencies_end_not_in_waves():
    c_ran = asyncio.Event()

    @task
    async def fast(ctx: Context) -> None:
        pass

    @task
    async def slow(ctx: Context) -> None:
        # finishes only once `after_fast` (a stage-2 task) has run: waves would deadlock here
        await asyncio.wait_for(c_ran.wait(), LIMIT)

    @task(dependencies=[fast])
    async def after_fast(ctx: Context) -> None:
        c_ran.set()

    result, _ = await run_wf(Workflow("w", [fast, slow, after_fast]))
    assert result.status == "completed"


async def test_ready_tasks_take_slots_in_a_stable_order():
    order: list[str] = []
    tasks = []
    for name in ["d", "b", "a", "c"]:

        async def body(ctx: Context, name=name) -> None:
            order.append(name)

        body.__name__ = name
        tasks.append(task(body))
    await run_wf(Workflow("w", tasks, max_concurrency=1))
    assert order == ["a", "b", "c", "d"]


# -- lanes (units run inline in a few long-lived asyncio tasks) ----------------------------------


def fan(n: int, ran: list[str], cap: int) -> Workflow:
    tasks = [task(lambda ctx: None, id="root")]
    for i in range(n):

        async def body(ctx: Context, name=f"t{i}") -> None:
            ran.append(name)

        body.__name__ = f"t{i}"
        tasks.append(task(body, dependencies=["root"]))
    return Workflow("fan", tasks, max_concurrency=cap)


async def test_lanes_are_reused_and_let_the_loop_run_between_tasks():
    ran: list[str] = []
    order: list[str] = []
    execution = Execution(fan(200, ran, cap=4), slice_s=0.0)  # a lane yields after every unit
    loop = asyncio.get_running_loop()

    def watch(e) -> None:
        if e.kind == "task_state" and e.task_id == "t0" and e.state == "completed":
            loop.call_soon(order.append, "other callback")
        elif e.kind == "run_finished":
            order.append("run finished")

    execution.subscribe(watch)
    result = await asyncio.wait_for(execution.start().wait(), LIMIT)
    assert result.status == "completed" and len(ran) == 200
    # the no-op bodies never wait, yet the loop got to run something else mid-run
    assert order == ["other callback", "run finished"]
    # 201 units, no more asyncio tasks than slots
    assert execution.lanes.count <= 4
    assert execution.peak_running <= 4 and execution.running == 0


async def test_the_lanes_share_one_slice_of_each_turn_of_the_loop():
    """Several lanes running no-op bodies back to back: together they hold the loop for one
    slice per turn, not one slice each (8 lanes would otherwise hold it 8 times as long, and
    a key press or a store write would wait as long)."""
    import itertools

    ticks = itertools.count()
    ran: list[str] = []
    gate = asyncio.Event()
    waiting: list[str] = []

    async def held(ctx: Context) -> None:  # the first eight wait: eight lanes are made
        waiting.append(ctx.task_id)
        await gate.wait()

    wf = fan(400, ran, cap=8)
    first = [task(held, id=f"h{i}", dependencies=["root"]) for i in range(8)]
    wf = Workflow("fan", [*wf.tasks.values(), *first], max_concurrency=8)
    # a clock that moves one "second" each time the lanes look at it; a slice is 4.5 of them,
    # so a lane starting a fresh slice runs about five units before it yields
    execution = Execution(wf, slice_s=4.5, slice_clock=lambda: float(next(ticks)))
    loop = asyncio.get_running_loop()
    per_turn: list[int] = []

    def turn() -> None:  # runs once per turn of the loop while the run goes on
        per_turn.append(len(ran))
        if len(waiting) == 8:
            gate.set()  # eight lanes, all held: now they all run no-op bodies
        if not execution.is_done:
            loop.call_soon(turn)

    loop.call_soon(turn)
    result = await asyncio.wait_for(execution.start().wait(), LIMIT)
    assert result.status == "completed" and len(ran) == 400
    assert execution.lanes.count == 8  # eight lanes were hot at once
    done_in_turn = [b - a for a, b in itertools.pairwise(per_turn)]
    assert len(done_in_turn) > 20
    # one lane runs its slice (about five units), the other seven one unit each at most
    assert max(done_in_turn) <= 6 + 7, done_in_turn


async def test_bodies_that_never_wait_run_on_one_lane_whatever_the_cap():
    """A lane per slot would be an asyncio task per task at a high cap (the cost lanes are
    there to save): a no-op fan-out runs on a single lane, at cap 4 as at cap 10,000."""
    for cap in (4, 10_000):
        ran: list[str] = []
        execution = Execution(fan(500, ran, cap=cap))
        result = await asyncio.wait_for(execution.start().wait(), LIMIT)
        assert result.status == "completed" and len(ran) == 500
        assert execution.lanes.count == 1


async def test_bodies_that_wait_get_lanes_up_to_the_cap_within_a_few_turns():
    gate = asyncio.Event()
    started: list[str] = []

    async def waits(ctx: Context) -> None:
        started.append(ctx.task_id)
        if len(started) == 100:
            gate.set()
        await gate.wait()

    wf = Workflow("w", [task(waits, id=f"w{i}") for i in range(300)], max_concurrency=100)
    execution = Execution(wf).start()
    turns = 0
    while not gate.is_set():  # counting the loop's turns until 100 bodies wait at once
        turns += 1
        await asyncio.sleep(0)  # one turn of the loop (ok)
        assert turns < 50
    result = await asyncio.wait_for(execution.wait(), LIMIT)
    assert result.status == "completed" and execution.peak_running == 100
    assert execution.lanes.count <= 2 * 100  # doubling: never more than twice what is needed


async def test_a_context_variable_a_body_leaves_set_is_not_seen_by_the_next_task():
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")

    @task
    async def first(ctx: Context) -> None:
        var.set("first")  # never reset, as a careless body (or a logging library) might

    @task(dependencies=[first])
    async def second(ctx: Context) -> None:
        ctx.set("second saw", var.get())

    @task(dependencies=[second])
    def third(ctx: Context) -> None:
        ctx.set("third saw", var.get())

    result, _ = await run_wf(Workflow("w", [first, second, third], max_concurrency=1))
    assert result.status == "completed"
    assert result.context["second saw"] == "unset"
    assert result.context["third saw"] == "unset"


@pytest.mark.parametrize("what", ["the task", "the run"])
async def test_cancelling_a_unit_handed_to_a_lane_before_it_begins(what):
    ran: list[str] = []
    execution = Execution(fan(6, ran, cap=2), slice_s=0.0)
    loop = asyncio.get_running_loop()
    victim: list[str] = []

    def cancel_one() -> None:
        # a lane whose unit just ended took the next one in the same step, then yielded
        # before running it: that unit holds a slot, not yet begun
        handed = [u for u, unit in execution.units.items() if unit.holds_slot and unit.lane is None]
        assert handed and all(execution.state[u] == "pending" for u in handed)
        victim.append(handed[0])
        if what == "the task":
            assert execution.cancel_task(handed[0])
        else:
            execution.cancel()

    def watch(e) -> None:
        if e.kind == "task_state" and e.task_id == "t0" and e.state == "completed":
            loop.call_soon(cancel_one)

    execution.subscribe(watch)
    result = await asyncio.wait_for(execution.start().wait(), LIMIT)
    assert len(victim) == 1 and victim[0] not in ran
    states = {k: v.status for k, v in result.tasks.items()}
    assert states[victim[0]] == "cancelled"
    assert all(s in ("completed", "cancelled") for s in states.values())
    if what == "the task":
        assert [k for k, s in states.items() if s == "cancelled"] == victim
    else:
        assert result.status == "cancelled" and len(ran) < 6
    assert execution.running == 0  # every slot given back


async def test_a_cancel_asked_from_inside_a_lane_does_not_land_in_the_next_task():
    # a subscriber cancels a task synchronously, on the lane running it; the body never waits,
    # so the cancel is never delivered to it: it must not hit the next task on that lane
    @task
    async def quick(ctx: Context) -> None:
        pass

    @task(dependencies=[quick])
    async def next_one(ctx: Context) -> None:
        await asyncio.sleep(0)  # workload, allowed: the body must wait once to meet a cancel
        ctx.set("ran", True)

    execution = Execution(Workflow("w", [quick, next_one], max_concurrency=1))

    def cancel_on_start(e) -> None:
        if e.kind == "task_state" and e.task_id == "quick" and e.state == "running":
            assert execution.cancel_task("quick")

    execution.subscribe(cancel_on_start)
    result = await asyncio.wait_for(execution.start().wait(), LIMIT)
    assert result.tasks["next_one"].status == "completed"
    assert result.context.get("ran") is True
    assert execution.lanes.count == 1  # it did run on the same lane


def test_a_run_still_going_when_its_loop_ends_is_cancelled_not_carried_on():
    ran: list[str] = []
    holder: list[Execution] = []
    started: list[asyncio.Event] = []  # made inside asyncio.run, on its loop

    @task(id="a_slow")  # first in line for the one slot
    async def slow(ctx: Context) -> None:
        started[0].set()
        await asyncio.Event().wait()

    @task(dependencies=[slow], trigger_rule="all_done")
    async def after(ctx: Context) -> None:
        ran.append("after")

    @task
    async def queued(ctx: Context) -> None:
        ran.append("queued")

    async def main() -> None:
        started.append(asyncio.Event())
        execution = Execution(Workflow("w", [slow, after, queued], max_concurrency=1))
        holder.append(execution.start())
        await asyncio.wait_for(started[0].wait(), LIMIT)
        # return with the run going: asyncio.run cancels what is left, the lanes included

    asyncio.run(main())
    execution = holder[0]
    assert execution.is_done
    assert ran == []  # nothing started after the cancel
    assert {t: execution.state[t] for t in ("a_slow", "after", "queued")} == {
        "a_slow": "cancelled",
        "after": "cancelled",
        "queued": "cancelled",
    }
    assert execution.view.status == "cancelled"


# -- retries -------------------------------------------------------------------------------------


def test_retry_delays_fixed_linear_exponential_cap_and_jitter():
    spec = TaskSpec(id="t", retry_delay_ms=100)
    assert [retry_delay_s(spec, n) for n in (1, 2, 3)] == [0.1, 0.1, 0.1]
    lin = spec.model_copy(update={"retry_backoff": "linear"})
    assert [round(retry_delay_s(lin, n), 6) for n in (1, 2, 3)] == [0.1, 0.2, 0.3]
    exp = spec.model_copy(update={"retry_backoff": "exponential"})
    assert [round(retry_delay_s(exp, n), 6) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.8]
    capped = exp.model_copy(update={"retry_max_delay_ms": 250})
    assert [round(retry_delay_s(capped, n), 6) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.25, 0.25]
    jit = exp.model_copy(update={"retry_jitter": True})
    rng = random.Random(7)
    draws = [retry_delay_s(jit, 3, rng) for _ in range(50)]
    assert all(0.2 <= d <= 0.4 for d in draws)
    assert len(set(draws)) > 1


async def test_retries_record_every_attempt_and_delay():
    calls = 0

    @task(retry_attempts=3, retry_delay_ms=5, retry_backoff="exponential")
    async def flaky(ctx: Context) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ValueError(f"bad attempt {calls}")
        ctx.set("ok", calls)

    result, rec = await run_wf(Workflow("w", [flaky]))
    assert result.status == "completed"
    assert calls == 3
    retries = rec.of(RetryScheduled)
    assert [(r.attempt, r.next_attempt) for r in retries] == [(1, 2), (2, 3)]
    assert [round(r.delay_s, 6) for r in retries] == [0.005, 0.01]
    assert retries[0].error == "ValueError: bad attempt 1"
    assert rec.states("flaky") == [
        "running",
        "retrying",
        "running",
        "retrying",
        "running",
        "completed",
    ]
    view = result.view.tasks["flaky"]
    assert [a.status for a in view.attempts] == ["failed", "failed", "completed"]
    assert "ValueError: bad attempt 2" in (view.attempts[1].traceback or "")
    assert result.context == {"ok": 3}


async def test_downstream_waits_until_retries_are_exhausted_then_is_skipped():
    @task(retry_attempts=2, retry_delay_ms=1)
    async def always_fails(ctx: Context) -> None:
        raise RuntimeError("nope")

    @task(dependencies=[always_fails])
    async def child(ctx: Context) -> None:
        raise AssertionError("must not run")

    @task(dependencies=[child])
    async def grandchild(ctx: Context) -> None:
        raise AssertionError("must not run")

    @task
    async def independent(ctx: Context) -> None:
        ctx.set("independent", True)

    result, rec = await run_wf(Workflow("w", [always_fails, child, grandchild, independent]))
    assert result.status == "failed"
    assert result.tasks["always_fails"].attempts == 3
    assert result.tasks["always_fails"].error == "RuntimeError: nope"
    assert result.tasks["child"].status == "skipped"
    assert result.tasks["grandchild"].status == "skipped"
    assert result.tasks["independent"].status == "completed"
    changes = [(e.task_id, e.state) for e in rec.of(TaskStateChanged)]
    final = changes.index(("always_fails", "failed"))
    skipped = changes.index(("child", "skipped"))
    assert skipped > final


# -- trigger rules -------------------------------------------------------------------------------


def _rules_workflow(upstream_fails: bool) -> Workflow:
    @task
    async def up(ctx: Context) -> None:
        if upstream_fails:
            raise ValueError("upstream broke")

    @task(dependencies=[up])
    async def normal(ctx: Context) -> None:
        pass

    @task(dependencies=[up], trigger_rule="all_done")
    async def cleanup(ctx: Context) -> None:
        pass

    @task(dependencies=[up], trigger_rule="one_failed")
    async def alert(ctx: Context) -> None:
        pass

    @task(dependencies=[normal], trigger_rule="none_failed")
    async def after_normal(ctx: Context) -> None:
        pass

    @task(dependencies=[up], trigger_rule="none_failed")
    async def after_up(ctx: Context) -> None:
        pass

    return Workflow("rules", [up, normal, cleanup, alert, after_normal, after_up])


async def test_trigger_rules_when_upstream_fails():
    result, _ = await run_wf(_rules_workflow(upstream_fails=True))
    st = {k: v.status for k, v in result.tasks.items()}
    assert st == {
        "up": "failed",
        "normal": "skipped",  # all_success
        "cleanup": "completed",  # all_done
        "alert": "completed",  # one_failed
        "after_normal": "completed",  # none_failed: a skipped upstream is fine
        "after_up": "skipped",  # none_failed: a failed upstream is not
    }
    assert result.status == "failed"


async def test_trigger_rules_when_upstream_succeeds():
    result, _ = await run_wf(_rules_workflow(upstream_fails=False))
    st = {k: v.status for k, v in result.tasks.items()}
    assert st == {
        "up": "completed",
        "normal": "completed",
        "cleanup": "completed",
        "alert": "skipped",
        "after_normal": "completed",
        "after_up": "completed",
    }
    assert result.status == "completed"


# -- timeouts ------------------------------------------------------------------------------------


async def test_async_timeout_cancels_the_body():
    cancelled = asyncio.Event()

    @task(timeout_s=0.05)
    async def hangs(ctx: Context) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    result, _ = await run_wf(Workflow("w", [hangs]))
    assert result.status == "failed"
    assert cancelled.is_set()
    assert result.tasks["hangs"].error == "TimeoutError: timed out after 0.05 s"
    assert result.view.tasks["hangs"].attempts[0].status == "timed_out"


async def test_thread_timeout_discards_late_result_and_never_overlaps_the_retry():
    release = threading.Event()
    timeline: list[str] = []
    attempts = 0

    @task(timeout_s=0.05, retry_attempts=1)
    def slow(ctx: Context) -> None:
        nonlocal attempts
        attempts += 1
        n = attempts
        timeline.append(f"start {n}")
        if n == 1:
            release.wait(LIMIT)
            ctx.set("late", "from attempt 1")  # must be discarded
        else:
            ctx.set("result", "from attempt 2")
        timeline.append(f"end {n}")

    def on_event(e) -> None:
        if isinstance(e, RetryScheduled):
            release.set()

    result = await asyncio.wait_for(run(Workflow("w", [slow]), subscribers=[on_event]), LIMIT)
    assert result.status == "completed"
    assert timeline == ["start 1", "end 1", "start 2", "end 2"]
    assert result.context == {"result": "from attempt 2"}
    assert result.view.tasks["slow"].attempts[0].status == "timed_out"


PROCESS_FLOW = """
import os, time
from pathlib import Path
from tui_flow import task, Context

@task(timeout_s=1.0, runner="process")
def spin(ctx: Context) -> None:
    Path(ctx.get("pidfile")).write_text(str(os.getpid()))
    while True:
        pass

@task(runner="process")
def after(ctx: Context) -> None:
    import logging
    print("printed in", os.getpid())
    logging.getLogger("flow").warning("logged in a worker")
    ctx.log("context log in a worker")
    ctx.set("after_pid", os.getpid())
"""


async def test_process_timeout_kills_the_worker_and_the_pool_recovers(tmp_path):
    from tui_flow import load

    flow = tmp_path / "procflow.py"
    flow.write_text(PROCESS_FLOW)
    wf = load(flow).workflow()
    pidfile = tmp_path / "pid"
    rec = Recorder()
    result = await asyncio.wait_for(
        run(wf, {"pidfile": str(pidfile)}, subscribers=[rec]), LIMIT * 3
    )
    assert result.tasks["spin"].status == "failed"
    assert "timed out" in (result.tasks["spin"].error or "")
    pid = int(pidfile.read_text())
    assert not _alive(pid)  # the spinning worker is gone
    assert result.tasks["after"].status == "completed"
    assert result.context["after_pid"] != pid
    lines = [(line.task_id, line.text) for e in rec.of(TaskLogs) for line in e.lines]
    assert ("after", f"printed in {result.context['after_pid']}") in lines
    assert ("after", "logged in a worker") in lines
    named = {line.text: line.logger for e in rec.of(TaskLogs) for line in e.lines}
    assert named["logged in a worker"] == "flow" and named["context log in a worker"] is None
    assert ("after", "context log in a worker") in lines


HANGS_AFTER_PRINTING = """
import time
from tui_flow import task

@task(timeout_s=0.5, runner="process")
def hangs(ctx):
    print("first")
    print("second")  # right after the first: held back to go out with the lines that follow
    time.sleep(60)  # the workload: it is killed at its timeout (ok)
"""


async def test_what_a_process_body_printed_before_it_was_killed_at_its_timeout_is_kept(tmp_path):
    from tui_flow import load

    flow = tmp_path / "hangs.py"
    flow.write_text(HANGS_AFTER_PRINTING)
    rec = Recorder()
    result = await asyncio.wait_for(run(load(flow).workflow(), subscribers=[rec]), LIMIT * 3)
    assert result.tasks["hangs"].error == "TimeoutError: timed out after 0.5 s"
    lines = [(ln.task_id, ln.attempt, ln.text) for e in rec.of(TaskLogs) for ln in e.lines]
    assert lines == [("hangs", 1, "first"), ("hangs", 1, "second")]


# -- cancellation --------------------------------------------------------------------------------


async def test_cancelling_the_run_cancels_running_and_pending_tasks():
    started = asyncio.Event()
    body_cancelled = asyncio.Event()

    @task
    async def blocker(ctx: Context) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            body_cancelled.set()
            raise

    @task(dependencies=[blocker])
    async def later(ctx: Context) -> None:
        raise AssertionError("must not run")

    @task
    async def queued(ctx: Context) -> None:
        raise AssertionError("must not run: no slot until the blocker ends")

    execution = Execution(Workflow("w", [blocker, later, queued], max_concurrency=1)).start()
    await asyncio.wait_for(started.wait(), LIMIT)
    execution.cancel()
    result = await asyncio.wait_for(execution.wait(), LIMIT)
    assert result.status == "cancelled"
    assert body_cancelled.is_set()
    assert {k: v.status for k, v in result.tasks.items()} == {
        "blocker": "cancelled",
        "later": "cancelled",
        "queued": "cancelled",
    }


async def test_cancelling_one_task_lets_the_rest_finish():
    started = asyncio.Event()

    @task
    async def stuck(ctx: Context) -> None:
        started.set()
        await asyncio.Event().wait()

    @task(dependencies=[stuck])
    async def downstream(ctx: Context) -> None:
        pass

    @task
    async def other(ctx: Context) -> None:
        await asyncio.wait_for(started.wait(), LIMIT)
        ctx.set("other", 1)

    execution = Execution(Workflow("w", [stuck, downstream, other])).start()
    await asyncio.wait_for(started.wait(), LIMIT)
    assert execution.cancel_task("stuck")
    result = await asyncio.wait_for(execution.wait(), LIMIT)
    st = {k: v.status for k, v in result.tasks.items()}
    assert st == {"stuck": "cancelled", "downstream": "skipped", "other": "completed"}
    assert result.status == "cancelled"


async def test_cancelling_the_waiter_cancels_the_run():
    started = asyncio.Event()

    @task
    async def forever(ctx: Context) -> None:
        started.set()
        await asyncio.Event().wait()

    execution = Execution(Workflow("w", [forever])).start()
    waiter = asyncio.ensure_future(execution.wait())
    await asyncio.wait_for(started.wait(), LIMIT)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert execution.cancelled
    result = await execution.wait()  # the run wound down before the waiter re-raised
    assert result.status == "cancelled"
    assert result.tasks["forever"].status == "cancelled"


# -- context flow --------------------------------------------------------------------------------


async def test_a_task_sees_ancestors_writes_but_never_a_siblings():
    a_done = asyncio.Event()
    seen: dict = {}

    @task
    async def root(ctx: Context) -> None:
        ctx.insert("base", 1)

    @task(dependencies=[root])
    async def a(ctx: Context) -> None:
        ctx.insert("from_a", "a")
        a_done.set()

    @task(dependencies=[root])
    async def b(ctx: Context) -> None:
        await asyncio.wait_for(a_done.wait(), LIMIT)
        seen["b"] = (ctx.get("base"), ctx.get("from_a", None))

    @task(dependencies=[a, b])
    async def join(ctx: Context) -> None:
        seen["join"] = ctx.to_dict()

    result, _ = await run_wf(Workflow("w", [root, a, b, join]), {"initial": True})
    assert seen["b"] == (1, None)
    assert seen["join"] == {"initial": True, "base": 1, "from_a": "a"}
    assert result.context == {"initial": True, "base": 1, "from_a": "a"}


async def test_a_descendant_may_overwrite_and_later_readers_see_the_latest():
    @task
    async def first(ctx: Context) -> None:
        ctx.set("k", 1)

    @task(dependencies=[first])
    async def second(ctx: Context) -> None:
        ctx.update("k", ctx.get("k") + 1)

    @task(dependencies=[first])
    async def side(ctx: Context) -> None:
        pass

    @task(dependencies=[second, side])
    async def reader(ctx: Context) -> None:
        ctx.set("seen", ctx.get("k"))

    result, _ = await run_wf(Workflow("w", [first, second, side, reader]))
    assert result.context == {"k": 2, "seen": 2}


async def test_parallel_writers_of_one_key_conflict_naming_both():
    @task
    async def left(ctx: Context) -> None:
        ctx.set("shared", "left")

    @task(dependencies=[left])
    async def right(ctx: Context) -> None:
        pass

    @task
    async def other(ctx: Context) -> None:
        ctx.set("shared", "other")

    result, _ = await run_wf(Workflow("w", [left, right, other], max_concurrency=1))
    assert result.status == "failed"
    failed = [k for k, v in result.tasks.items() if v.status == "failed"]
    assert len(failed) == 1
    error = result.tasks[failed[0]].error or ""
    assert "'shared'" in error and "'left'" in error and "'other'" in error


async def test_a_value_the_context_cannot_store_fails_the_task_naming_key_and_type():
    @task
    async def bad(ctx: Context) -> None:
        ctx.set("handle", object())

    result, _ = await run_wf(Workflow("w", [bad]))
    error = result.tasks["bad"].error or ""
    assert "'handle'" in error and "builtins.object" in error


# -- logs and progress ---------------------------------------------------------------------------


async def test_logs_are_attributed_to_task_and_attempt_for_async_and_thread_bodies():
    import logging

    tries = 0

    @task(retry_attempts=1)
    async def chatty(ctx: Context) -> None:
        nonlocal tries
        tries += 1
        print(f"print attempt {tries}")
        logging.getLogger("mine").info("logging attempt %d", tries)
        ctx.log(f"context attempt {tries}")
        if tries == 1:
            raise ValueError("again")

    @task
    def threaded(ctx: Context) -> None:
        print("from a thread", end="")  # no newline: still one line
        ctx.progress(1, 2, "half way")

    result, rec = await run_wf(Workflow("w", [chatty, threaded]))
    assert result.status == "completed"
    lines = {(ln.task_id, ln.attempt, ln.text) for e in rec.of(TaskLogs) for ln in e.lines}
    for n in (1, 2):
        assert ("chatty", n, f"print attempt {n}") in lines
        assert ("chatty", n, f"logging attempt {n}") in lines
        assert ("chatty", n, f"context attempt {n}") in lines
    assert ("threaded", 1, "from a thread") in lines
    progress = [e for e in rec.events if e.kind == "task_progress"]
    assert [(p.task_id, p.done, p.total, p.message) for p in progress] == [
        ("threaded", 1, 2, "half way")
    ]


async def test_a_broken_subscriber_does_not_break_the_run():
    @task
    async def one(ctx: Context) -> None:
        pass

    def broken(e) -> None:
        raise RuntimeError("view bug")

    result = await run(Workflow("w", [one]), subscribers=[broken])
    assert result.status == "completed"
    assert result.subscriber_errors and "view bug" in result.subscriber_errors[0]


async def test_reused_tasks_are_not_run_and_their_writes_are_restored():
    ran: list[str] = []

    @task
    async def a(ctx: Context) -> None:
        ran.append("a")
        ctx.set("a", "fresh")

    @task(dependencies=[a])
    async def b(ctx: Context) -> None:
        ran.append("b")
        ctx.set("b", ctx.get("a") + "+b")

    result, _ = await run_wf(Workflow("w", [a, b]), reuse={"a": {"a": "stored"}})
    assert ran == ["b"]
    assert result.context == {"a": "stored", "b": "stored+b"}
    assert result.status == "completed"


def _alive(pid: int) -> bool:
    """True if the process runs (a zombie waiting to be reaped counts as ended)."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def test_changing_a_read_value_in_place_does_not_leak_into_a_sibling():
    first_done = asyncio.Event()

    @task
    async def root(ctx: Context) -> None:
        ctx.set("items", [3, 1, 2])

    @task(dependencies=[root])
    async def mutator(ctx: Context) -> None:
        items = ctx.get("items")
        items.append(99)
        items.sort()
        first_done.set()

    @task(dependencies=[root])
    async def reader(ctx: Context) -> None:
        await asyncio.wait_for(first_done.wait(), LIMIT)
        ctx.set("seen", ctx.get("items"))

    result, _ = await run_wf(Workflow("w", [root, mutator, reader]))
    assert result.context == {"items": [3, 1, 2], "seen": [3, 1, 2]}


async def test_a_context_mistake_is_not_retried():
    calls = 0

    @task(retry_attempts=3, retry_delay_ms=1)
    async def reads_missing(ctx: Context) -> None:
        nonlocal calls
        calls += 1
        ctx.get("nope")

    result, rec = await run_wf(Workflow("w", [reads_missing]))
    assert calls == 1
    assert rec.of(RetryScheduled) == []
    assert "'nope'" in (result.tasks["reads_missing"].error or "")


async def test_a_worker_process_that_cannot_start_fails_the_attempt_instead_of_hanging(
    tmp_path, monkeypatch
):
    from tui_flow import load
    from tui_flow.engine import runners

    flow = tmp_path / "procflow.py"
    flow.write_text(PROCESS_FLOW)
    wf = load(flow).workflow()

    async def cannot_start(self):
        raise ValueError("bad value(s) in fds_to_keep")

    monkeypatch.setattr(runners.ProcessPool, "acquire", cannot_start)
    result = await asyncio.wait_for(run(wf, {"pidfile": str(tmp_path / "pid")}), LIMIT)
    assert result.status == "failed"
    error = result.tasks["spin"].error or ""
    assert error.startswith("could not start a worker process: ValueError: bad value(s)")


LAZY_FLOW = """
from tui_flow import task, Context

@task(runner="process")
def pick(ctx: Context) -> None:
    ctx.set("keys", sorted(ctx.keys()))
    ctx.set("has_big", "big" in ctx)
    ctx.set("picked", ctx.get("small") * 2)
    ctx.set("missing", ctx.get("nope", "default"))
"""


async def test_a_process_body_receives_only_the_context_values_it_reads(tmp_path):
    from tui_flow import load
    from tui_flow.engine.runners import get_process_pool

    flow = tmp_path / "lazyflow.py"
    flow.write_text(LAZY_FLOW)
    big = list(range(200_000))
    result = await asyncio.wait_for(
        run(load(flow).workflow(), {"big": big, "small": 21}, max_concurrency=1), LIMIT * 3
    )
    assert result.status == "completed", result.tasks["pick"].error
    assert result.context["keys"] == ["big", "small"]
    assert result.context["has_big"] is True
    assert result.context["picked"] == 42
    assert result.context["missing"] == "default"
    served = [w.served for w in get_process_pool()._idle]
    assert ["small"] in served  # the worker asked for "small" alone: "big" never travelled


async def test_a_thread_flooding_its_log_waits_for_the_loop_and_loses_no_line():
    total = 0

    def on_event(e) -> None:
        nonlocal total
        if isinstance(e, TaskLogs):
            total += len(e.lines)

    @task
    def flood(ctx: Context) -> None:
        for i in range(20_000):
            print(f"line {i}")

    result = await asyncio.wait_for(run(Workflow("w", [flood]), subscribers=[on_event]), LIMIT)
    assert result.status == "completed"
    assert total == 20_000


def test_log_backpressure_pauses_a_producer_thread_until_the_loop_flushes():
    from tui_flow.engine.logs import LogBuffer

    class LoopThatNeverRuns:  # records the flush request; the test decides when to flush
        def call_soon_threadsafe(self, *a, **k):
            pass

        def call_soon(self, *a, **k):
            pass

    flushed: list[int] = []
    buf = LogBuffer(LoopThatNeverRuns(), lambda lines: flushed.append(len(lines)), print)
    buf.BACKPRESSURE_WAIT_S = LIMIT  # without a flush the producer stays paused
    done = threading.Event()

    def produce() -> None:
        for i in range(LogBuffer.BACKPRESSURE_LINES + 10):
            buf.add("t", 1, "info", f"line {i}")
        done.set()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    assert not done.wait(0.3)  # paused at the threshold: the loop has not taken the lines
    buf.flush()
    assert done.wait(LIMIT)  # the flush let it go on
    buf.flush()
    assert sum(flushed) == LogBuffer.BACKPRESSURE_LINES + 10
    assert flushed[0] == LogBuffer.BACKPRESSURE_LINES


EXCEPTION_FLOW = """
import logging
from tui_flow import task, Context

@task(runner="process")
def logs_an_exception(ctx: Context) -> None:
    try:
        1 / 0
    except ZeroDivisionError:
        logging.exception("division went wrong")
"""


async def test_logger_exception_keeps_its_traceback_in_a_process_body_too(tmp_path):
    from tui_flow import load

    flow = tmp_path / "excflow.py"
    flow.write_text(EXCEPTION_FLOW)
    rec = Recorder()
    result = await asyncio.wait_for(run(load(flow).workflow(), subscribers=[rec]), LIMIT * 3)
    assert result.status == "completed"
    texts = [ln.text for e in rec.of(TaskLogs) for ln in e.lines]
    assert "division went wrong" in texts
    assert any("ZeroDivisionError: division by zero" in t for t in texts)
