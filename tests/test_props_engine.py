"""Issue 14, "the run always ends and nothing is lost", as properties (Hypothesis).

Random workflows (1-40 tasks) whose bodies return, raise anything (any BaseException), sleep,
block the loop, hang past their timeout, read a missing key, write and print; on the async
and thread runners (and, in a smaller sample, worker processes); with random retries,
fallbacks, trigger rules and concurrency. Every run must end within a bound, every task must
end as a small reference model of the rules predicts (state, attempts, errors, fallback,
what it wrote and saw, what it printed), and the store's record, read back from disk, must
equal the live result.

Timing: a task whose attempts may hang has a timeout of LONG_S; the rest of its attempts end
in a few ms. An async task that may overrun a short timeout without awaiting (SHORT_S) does
nothing else that waits, so only its own work counts. Other bodies hold the loop at most a
few times 15 ms (and overruns OVERRUN_MS, at most MAX_OVERRUNS per run), far below LONG_S,
so no attempt times out that the model says ends in time.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from scripted import (
    MISSING_KEY,
    RAISED,
    SUMMARY,
    Act,
    TaskPlan,
    release_all,
    releaser,
    workflow_of,
    write_process_file,
)

from tui_flow import load
from tui_flow.engine import Execution, RunResult
from tui_flow.store.sqlite import RunStore

LONG_S = 0.25  # the timeout of tasks whose attempts may hang
SHORT_S = 0.03  # the timeout of async tasks whose attempts may overrun it without awaiting
OVERRUN_MS = 50
MAX_HANGS = 2  # per run: each costs LONG_S
MAX_OVERRUNS = 2  # per run: each holds the loop for OVERRUN_MS
RULES = ["all_success", "all_done", "one_failed", "none_failed"]
# to look harder than CI does every time: TUI_FLOW_PROPS=20 python -m pytest tests/test_props...
SCALE = int(os.environ.get("TUI_FLOW_PROPS", "1"))


# -- the reference model -------------------------------------------------------------------


@dataclass
class Expected:
    """How the rules say a task ends. Errors are regular expressions (fullmatch)."""

    state: str
    attempts: list[tuple[str, str | None]] = field(default_factory=list)  # (status, error)
    via_fallback: bool = False
    error: str | None = None
    reason: str | None = None
    runs: Counter[str] = field(default_factory=Counter)  # how often body and fallback ran
    retried: list[int] = field(default_factory=list)  # attempts a retry followed
    lines: list[tuple[int, str]] = field(default_factory=list)  # (attempt, text) printed
    wrote: dict[str, Any] = field(default_factory=dict)  # its context writes, if completed


def attempt_result(plan: TaskPlan, act: Act) -> tuple[str, str | None, bool]:
    """What an attempt doing `act` ends as: (status, error pattern, retried if attempts are
    left). A timeout is a failed attempt like any other; a ContextError (a missing key) will
    be the same next time, so it is not retried."""
    if act.do in ("hang", "overrun"):
        return "timed_out", re.escape(f"TimeoutError: timed out after {plan.timeout_s:g} s"), True
    if act.do == "raise":
        return "failed", re.escape(SUMMARY[act.exc]), True
    if act.do == "missing":
        # the end of the message suggests keys: not the model's business
        said = f"ContextError: task {plan.id!r} read context key {MISSING_KEY!r}, which is not set"
        return "failed", re.escape(said) + ".*", False
    return "completed", None, True


def skip_reason(plan: TaskPlan, out: dict[str, Expected]) -> str | None:
    """Why the trigger rule skips `plan` once its dependencies are final (None: it runs)."""
    state = {d: out[d].state for d in plan.deps}
    failed = [d for d in plan.deps if state[d] == "failed"]
    if plan.rule == "all_success":
        bad = [d for d in plan.deps if state[d] != "completed"]
        return f"upstream {bad[0]!r} {state[bad[0]]}" if bad else None
    if plan.rule == "one_failed":
        return None if failed else "no upstream task failed"
    if plan.rule == "none_failed":
        blocker = failed or [d for d in plan.deps if state[d] == "cancelled"]
        return f"upstream {blocker[0]!r} {state[blocker[0]]}" if blocker else None
    return None  # all_done


def run_task(plan: TaskPlan, seen: list[str], lost: str | None) -> Expected:
    """Attempts until one completes or none is left (or the failure is not retried), then
    the fallback once, as attempt max + 1. `lost`: the task completed but lost a conflict."""
    e = Expected("failed")
    n = 0
    while True:
        n += 1
        status, error, retryable = attempt_result(plan, plan.act(n))
        e.runs["body"] += 1
        if plan.say:
            e.lines.append((n, f"{plan.id} body {n}"))
        if status == "completed":
            return completed(e, plan, n, "body", seen, lost)
        e.attempts.append((status, error))
        if not retryable or n == plan.retries + 1:
            break
        e.retried.append(n)
    if plan.fallback is None:
        e.error, e.reason = error, "timed out" if status == "timed_out" else None
        return e
    n += 1
    e.runs["fallback"] += 1
    if plan.say:
        e.lines.append((n, f"{plan.id} fallback {n}"))
    fb_status, fb_error, _ = attempt_result(plan, plan.fallback)
    if fb_status == "completed":
        return completed(e, plan, n, "fallback", seen, lost)
    e.error = rf"{fb_error} \(fallback, after: {error}\)"
    e.attempts.append((fb_status, e.error))
    e.reason = "fallback failed"
    return e


def completed(
    e: Expected, plan: TaskPlan, n: int, kind: str, seen: list[str], lost: str | None
) -> Expected:
    if lost is not None:  # the attempt that completed fails: no retry, no fallback after it
        e.attempts.append(("failed", lost))
        e.error = lost
        return e
    e.state = "completed"
    e.attempts.append(("completed", None))
    e.via_fallback = kind == "fallback"
    e.reason = "via fallback" if e.via_fallback else None
    if plan.write:
        e.wrote[plan.id] = {"by": kind, "attempt": n, "saw": seen}
    if plan.shared:
        e.wrote["shared"] = plan.id
    return e


def ancestors_of(plans: list[TaskPlan]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for p in plans:  # dependencies come first
        found[p.id] = set().union(*({d} | found[d] for d in p.deps))
    return found


def predict(
    plans: list[TaskPlan], initial: dict[str, Any], lost: dict[str, str]
) -> dict[str, Expected]:
    """Every task's end, by the rules of docs/engine.md and docs/dsl.md ("Fallbacks"). Which
    of two tasks that may run in parallel writing one key completes later (and so fails) is
    timing: `lost` names the losers and their errors, checked by `check_conflicts`."""
    ancestors = ancestors_of(plans)
    writes = {p.id: p.write for p in plans}
    shares = {p.id: p.shared for p in plans}
    out: dict[str, Expected] = {}
    for p in plans:
        why = skip_reason(p, out)
        if why is not None:
            out[p.id] = Expected("skipped", reason=why)
            continue
        # a task sees the initial context and the writes of its completed ancestors
        done = {a for a in ancestors[p.id] if out[a].state == "completed"}
        seen = set(initial) | {a for a in done if writes[a]}
        if any(shares[a] for a in done):
            seen.add("shared")
        out[p.id] = run_task(p, sorted(seen), lost.get(p.id))
    return out


def check_conflicts(plans: list[TaskPlan], result: RunResult) -> dict[str, str]:
    """No silent "last one wins": the completed writers of "shared" are ordered (each an
    ancestor of the next), and each task that failed on a conflict names a writer that
    completed and may run beside it. Returns the losers and their errors."""
    ancestors = ancestors_of(plans)

    def ordered(a: str, b: str) -> bool:
        return a in ancestors[b] or b in ancestors[a]

    writers = [p.id for p in plans if p.shared and result.tasks[p.id].status == "completed"]
    for i, a in enumerate(writers):
        for b in writers[i + 1 :]:
            assert ordered(a, b), f"{a} and {b} both wrote 'shared' and both completed"
    lost = {}
    said = re.compile(r"ConflictError: context key 'shared' written by both '(\w+)' and '(\w+)'")
    for p in plans:
        error = result.tasks[p.id].error or ""
        if not error.startswith("ConflictError"):
            continue
        m = said.match(error)
        assert p.shared and m is not None and m[2] == p.id, (p.id, error)
        assert m[1] in writers and not ordered(m[1], p.id), (p.id, error)
        lost[p.id] = re.escape(error)
    return lost


def matches(pattern: str | None, text: str | None) -> bool:
    if pattern is None or text is None:
        return pattern is text
    return re.fullmatch(pattern, text, re.DOTALL) is not None


def check_model(
    plans: list[TaskPlan],
    initial: dict[str, Any],
    result: RunResult,
    events: list[Any],
    tally: Path,
) -> None:
    expected = predict(plans, initial, check_conflicts(plans, result))

    def runs(task_id: str, kind: str) -> int:
        path = tally / f"{task_id}.{kind}"
        return len(path.read_text().split()) if path.exists() else 0

    ran = {p.id: Counter({k: runs(p.id, k) for k in ("body", "fallback")}) for p in plans}
    assert ran == {p.id: expected[p.id].runs for p in plans}  # each body ran as often as it should
    retries = [
        (e.task_id, e.attempt, e.next_attempt) for e in events if e.kind == "retry_scheduled"
    ]
    assert sorted(retries) == sorted(
        (p.id, n, n + 1) for p in plans for n in expected[p.id].retried
    )
    wrong = {}
    for p in plans:
        e, t = expected[p.id], result.tasks[p.id]
        tv = result.view.tasks[p.id]
        got = (t.status, t.attempts, t.via_fallback, tv.reason)
        want = (e.state, len(e.attempts), e.via_fallback, e.reason)
        attempts = [(a.status, a.error) for a in tv.attempts]
        if (
            got != want
            or not matches(e.error, t.error)
            or len(attempts) != len(e.attempts)
            or any(
                s != es or not matches(ee, err)
                for (s, err), (es, ee) in zip(attempts, e.attempts, strict=False)
            )
        ):
            wrong[p.id] = {"got": (*got, t.error, attempts), "want": (*want, e.error, e.attempts)}
    assert not wrong, wrong

    printed = Counter(
        (ln.task_id, ln.attempt, ln.level, ln.text)
        for ev in events
        if ev.kind == "task_logs"
        for ln in ev.lines
    )
    said = Counter((p.id, n, "info", text) for p in plans for n, text in expected[p.id].lines)
    assert printed == said

    context = dict(initial)
    for p in plans:  # in an order the dependencies allow, as the engine's
        if expected[p.id].state == "completed":
            context.update(expected[p.id].wrote)
    assert result.context == context
    failed = any(e.state == "failed" for e in expected.values())
    assert result.status == ("failed" if failed else "completed")
    assert result.error is None  # no error of the engine's own


# -- running and reading back --------------------------------------------------------------


def time_limit(plans: list[TaskPlan]) -> float:
    """A bound on the run's wall time: every attempt one after the other, each hang lasting
    its timeout, the longest retry delays; plus 10 s for a slow machine."""
    total = 10.0
    for p in plans:
        acts = [p.act(n) for n in range(1, p.retries + 2)] + [p.fallback or Act()]
        for act in acts:
            slow = act.do in ("hang", "overrun")
            total += (p.timeout_s or 0) if slow else act.ms / 1000
            total += p.retry_delay_ms * 2**p.retries / 1000
    return total


async def run_recorded(
    plans: list[TaskPlan], wf: Any, initial: dict[str, Any], db: Path, tally: str
) -> tuple[RunResult, list[Any]]:
    """Run `wf` recorded in a store at `db`: the result and every event the run emitted."""
    store = await RunStore.open(db)
    events: list[Any] = []
    execution = Execution(wf, initial)
    execution.subscribe(events.append)
    execution.subscribe(releaser(tally))
    execution.subscribe(store.recorder(execution.view))
    try:
        execution.start(gate=store.flush())
        result = await asyncio.wait_for(execution.wait(), time_limit(plans))
    finally:
        await store.close()
    return result, events


async def check_record(db: Path, result: RunResult, events: list[Any]) -> None:
    """The store, opened again, holds the run as it ran."""
    rid = result.run_id
    async with await RunStore.open(db) as store:
        run = await store.get_run(rid)
        assert run is not None
        failed = sum(t.status == "failed" for t in result.tasks.values())
        assert (run.status, run.error, run.failed, run.n_tasks, run.segments) == (
            result.status,
            result.error,
            failed,
            len(result.tasks),
            1,
        )
        assert await store.events(rid) == [e for e in events if e.kind != "task_logs"]
        rows = {
            r.task_id: (r.status, r.attempts, r.via_fallback, r.error, r.reason, r.started_at)
            for r in await store.task_rows(rid)
        }
        assert rows == {
            tid: (t.state, len(t.attempts), t.via_fallback, t.error, t.reason, t.started_at)
            for tid, t in result.view.tasks.items()
        }
        ends = {r.task_id: r.finished_at for r in await store.task_rows(rid)}
        assert ends == {tid: t.finished_at for tid, t in result.view.tasks.items()}
        for tid, t in result.view.tasks.items():
            assert await store.attempt_rows(rid, tid) == [
                {
                    "segment": 0,
                    "attempt": a.number,
                    "started_at": a.started_at,
                    "finished_at": a.finished_at,
                    "status": a.status,
                    "error": a.error,
                    "traceback": a.traceback,
                }
                for a in t.attempts
            ]
        logs = [(r.task_id, r.attempt, r.at, r.level, r.text) for r in await store.task_logs(rid)]
        assert logs == [
            (ln.task_id, ln.attempt, ln.at, ln.level, ln.text)
            for e in events
            if e.kind == "task_logs"
            for ln in e.lines
        ]
        assert await store.run_context(rid) == result.context
        written = {e.task_id: e.values for e in events if e.kind == "context_written"}
        assert await store.context_writes(rid) == written


def run_and_check(
    plans: list[TaskPlan], max_concurrency: int, initial: dict[str, Any], folder: Path
) -> None:
    tally = folder / "tally"
    tally.mkdir()
    if any(p.runner == "process" for p in plans):
        path = folder / "flow.py"
        write_process_file(path, plans, max_concurrency, str(tally))
        wf = load(path).workflow()
    else:
        wf = workflow_of(plans, max_concurrency, str(tally))
    db = folder / "runs.db"
    try:
        result, events = asyncio.run(run_recorded(plans, wf, initial, db, str(tally)))
    finally:
        release_all(str(tally))  # hanging thread bodies the run left behind end now
    check_model(plans, initial, result, events, tally)
    asyncio.run(check_record(db, result, events))


# -- the workflows -------------------------------------------------------------------------


def _act(do: str) -> st.SearchStrategy[Act]:
    if do == "raise":
        return st.sampled_from(list(RAISED)).map(lambda kind: Act("raise", exc=kind))
    if do == "sleep":
        return st.integers(1, 5).map(lambda ms: Act("sleep", ms=ms))
    if do == "block":
        return st.integers(5, 15).map(lambda ms: Act("block", ms=ms))
    if do == "overrun":
        return st.just(Act("overrun", ms=OVERRUN_MS))
    return st.just(Act(do))


def acts(runner: str, timing: str) -> st.SearchStrategy[Act]:
    if timing == "tight":  # nothing that awaits: only the body's own time counts
        choices = ["return", "raise", "missing", "overrun"]
    else:
        choices = ["return", "return", "raise", "raise", "missing", "sleep"]
        if runner == "async":
            choices.append("block")
        if timing == "long":
            choices.append("hang")
    return st.sampled_from(choices).flatmap(_act)


def limit_slow_acts(plans: list[TaskPlan]) -> list[TaskPlan]:
    """At most MAX_HANGS hangs and MAX_OVERRUNS overruns per run; the rest raise instead."""
    budget = {"hang": MAX_HANGS, "overrun": MAX_OVERRUNS}

    def keep(act: Act) -> Act:
        if act.do not in budget:
            return act
        budget[act.do] -= 1
        return act if budget[act.do] >= 0 else Act("raise", exc="ValueError")

    out = []
    for p in plans:
        acts_ = tuple(keep(a) for a in p.acts)
        fallback = None if p.fallback is None else keep(p.fallback)
        out.append(TaskPlan(**{**p.__dict__, "acts": acts_, "fallback": fallback}))
    return out


@st.composite
def workflows(
    draw: st.DrawFn, runners: tuple[str, ...], max_tasks: int
) -> tuple[list[TaskPlan], int]:
    n = draw(st.integers(1, max_tasks))
    sharing = draw(st.sampled_from([False, False, False, True]))  # tasks writing one key
    plans = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        runner = draw(st.sampled_from(runners))
        timing = draw(st.sampled_from(["none", "long", "tight"][: 3 if runner == "async" else 2]))
        retries = draw(st.integers(0, 2))
        plans.append(
            TaskPlan(
                id=f"t{i}",
                deps=tuple(f"t{d}" for d in deps),
                rule=draw(st.sampled_from(RULES)),
                runner=runner,
                retries=retries,
                retry_delay_ms=draw(st.sampled_from([0, 1, 3])),
                retry_backoff=draw(st.sampled_from(["fixed", "linear", "exponential"])),
                retry_jitter=draw(st.booleans()),
                timeout_s={"none": None, "long": LONG_S, "tight": SHORT_S}[timing],
                acts=tuple(draw(acts(runner, timing)) for _ in range(retries + 1)),
                fallback=draw(st.none() | acts(runner, timing)),
                write=draw(st.booleans()),
                shared=sharing and draw(st.booleans()),
                say=draw(st.booleans()),
            )
        )
    return limit_slow_acts(plans), draw(st.integers(1, 4))


INITIAL = st.sampled_from([{}, {"seed": 1}])


def hangs_once(runner: str, fallback: Act | None = None) -> tuple[list[TaskPlan], int]:
    """One task whose only attempt hangs until its timeout (what the examples below need)."""
    plan = TaskPlan("t0", runner=runner, timeout_s=LONG_S, acts=(Act("hang"),), fallback=fallback)
    return [plan], 1


@settings(max_examples=20 * SCALE)
@given(workflows(("async", "thread"), max_tasks=40), INITIAL)
# found by this test: an attempt that timed out before the fallback was recorded as "failed"
@example(hangs_once("thread", fallback=Act()), {})
def test_every_run_ends_as_the_rules_say_and_is_recorded_as_it_ran(spec, initial):
    plans, max_concurrency = spec
    with tempfile.TemporaryDirectory() as folder:
        run_and_check(plans, max_concurrency, initial, Path(folder))


@settings(max_examples=5 * SCALE)
@given(workflows(("process", "async", "thread"), max_tasks=8), INITIAL)
# found by this test: the line a worker printed before it was killed at its timeout was lost
@example(hangs_once("process"), {})
def test_bodies_on_worker_processes_end_as_the_rules_say_too(spec, initial):
    plans, max_concurrency = spec
    with tempfile.TemporaryDirectory() as folder:
        run_and_check(plans, max_concurrency, initial, Path(folder))
