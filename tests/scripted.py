"""Task bodies whose behaviour is data, for the property tests (and test_termination's list
of what a body may raise).

A `TaskPlan` says what a task is (dependencies, trigger rule, runner, retries, timeout) and
what each of its attempts does (an `Act`): return, raise one of the exceptions issue 14
names, sleep, block the loop, hang, read a missing key. `workflow_of` builds the Workflow.
Workflow files whose bodies run on worker processes import this module too, so it imports
nothing but tui_flow and the standard library.

Every run of a body or fallback appends a line to a tally file (`TALLY/<task>.<kind>`): its
length is the attempt number, so a body knows which attempt it is, whatever runs it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tui_flow import Context, Workflow, task


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() fails")


class Custom(BaseException):
    pass


# what a body may raise (issue 14: any BaseException), and the error the run reports for it
RAISED: dict[str, Callable[[], BaseException]] = {
    "ValueError": lambda: ValueError("bad value"),
    "TimeoutError": lambda: TimeoutError("upstream timed out"),
    "KeyboardInterrupt": KeyboardInterrupt,
    "SystemExit(0)": lambda: SystemExit(0),
    "SystemExit(3)": lambda: SystemExit(3),
    "GeneratorExit": GeneratorExit,
    "BaseException subclass": lambda: Custom("custom"),
    "broken __str__": BadStr,
    "CancelledError": asyncio.CancelledError,
}
SUMMARY: dict[str, str] = {
    "ValueError": "ValueError: bad value",
    "TimeoutError": "TimeoutError: upstream timed out",
    "KeyboardInterrupt": "KeyboardInterrupt",
    "SystemExit(0)": "SystemExit: 0",
    "SystemExit(3)": "SystemExit: 3",
    "GeneratorExit": "GeneratorExit",
    "BaseException subclass": "Custom: custom",
    "broken __str__": "BadStr: <str() of the exception raised RuntimeError>",
    "CancelledError": "CancelledError",
}

MISSING_KEY = "never written"
HANG_LIMIT_S = 30.0  # a hanging thread body ends by then even if nobody releases it


@dataclass(frozen=True)
class Act:
    """What one attempt does once it has tallied, printed and written:
    `return`; `raise` (`exc`: a key of RAISED); `sleep` `ms` (awaiting, or in its thread);
    `block` the loop `ms` (an async body computing without awaiting); `overrun` (the same,
    meant to last past a short timeout); `hang` until its timeout stops it; `missing`: read
    a key nobody wrote (a ContextError, which is not retried)."""

    do: str = "return"
    exc: str = ""
    ms: float = 0


@dataclass(frozen=True)
class TaskPlan:
    id: str
    deps: tuple[str, ...] = ()
    rule: str = "all_success"
    runner: str = "async"  # async (async def on the loop) | thread (def) | process
    retries: int = 0
    retry_delay_ms: float = 0
    retry_backoff: str = "fixed"
    retry_jitter: bool = False
    timeout_s: float | None = None
    acts: tuple[Act, ...] = (Act(),)  # attempt n does acts[n - 1] (the last one past the end)
    fallback: Act | None = None
    write: bool = True  # writes {"by", "attempt", "saw"} under its own id
    shared: bool = False  # also writes its id under the key "shared"
    say: bool = True  # prints one line per run

    def act(self, attempt: int) -> Act:
        return self.acts[min(attempt, len(self.acts)) - 1]


def plans_to_json(plans: list[TaskPlan]) -> str:
    return json.dumps([asdict(p) for p in plans])


def plans_from_json(text: str) -> list[TaskPlan]:
    plans = []
    for d in json.loads(text):
        acts = tuple(Act(**a) for a in d.pop("acts"))
        fallback = d.pop("fallback")
        plans.append(
            TaskPlan(
                **{**d, "deps": tuple(d["deps"])},
                acts=acts,
                fallback=None if fallback is None else Act(**fallback),
            )
        )
    return plans


# -- what a run of a body does -------------------------------------------------------------

_hangs: dict[tuple[str, str, int], threading.Event] = {}
_hangs_lock = threading.Lock()


def _hang_event(tally: str, task_id: str, attempt: int) -> threading.Event:
    with _hangs_lock:
        return _hangs.setdefault((tally, task_id, attempt), threading.Event())


def releaser(tally: str) -> Callable[[Any], None]:
    """A subscriber that lets a hanging thread body go once the run has ended its attempt
    (it timed out): it then returns, late, and what it wrote must be dropped."""

    def on_event(e: Any) -> None:
        if e.kind == "task_state" and e.state != "running" and e.attempt:
            _hang_event(tally, e.task_id, e.attempt).set()

    return on_event


def release_all(tally: str) -> None:
    with _hangs_lock:
        for key in [k for k in _hangs if k[0] == tally]:
            _hangs.pop(key).set()


def _begin(plan: TaskPlan, kind: str, ctx: Context, tally: str) -> tuple[int, Act]:
    """Tally this run, print and write as the plan says: (the attempt number, what to do)."""
    here = Path(tally)
    with open(here / f"{plan.id}.{kind}", "a") as f:
        f.write("x\n")
    runs = (here / f"{plan.id}.body").stat().st_size // 2
    attempt, act = (runs, plan.act(runs)) if kind == "body" else (runs + 1, plan.fallback)
    assert act is not None
    if plan.say:
        print(f"{plan.id} {kind} {attempt}")
    if plan.write:
        ctx.set(plan.id, {"by": kind, "attempt": attempt, "saw": sorted(ctx.keys())})
    if plan.shared:
        ctx.set("shared", plan.id)
    return attempt, act


def _spin(ms: float) -> None:
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:  # the workload: computing without awaiting
        pass


def _end(act: Act, ctx: Context) -> None:
    if act.do == "raise":
        raise RAISED[act.exc]()
    if act.do == "missing":
        ctx.get(MISSING_KEY)


def perform_sync(plan: TaskPlan, kind: str, ctx: Context, tally: str) -> None:
    """A plain `def` body (in a thread or a worker process)."""
    attempt, act = _begin(plan, kind, ctx, tally)
    if act.do == "sleep":
        time.sleep(act.ms / 1000)  # the workload under test (ok)
    elif act.do in ("block", "overrun"):
        _spin(act.ms)
    elif act.do == "hang":
        if plan.runner == "process":
            time.sleep(HANG_LIMIT_S)  # the workload: killed at the timeout (ok)
        else:
            _hang_event(tally, plan.id, attempt).wait(HANG_LIMIT_S)
    _end(act, ctx)


async def perform_async(plan: TaskPlan, kind: str, ctx: Context, tally: str) -> None:
    """An `async def` body on the loop."""
    _, act = _begin(plan, kind, ctx, tally)
    if act.do == "sleep":
        await asyncio.sleep(act.ms / 1000)  # the workload under test (ok)
    elif act.do in ("block", "overrun"):
        _spin(act.ms)
    elif act.do == "hang":
        await asyncio.Event().wait()  # until the timeout cancels it
    _end(act, ctx)


def _bodies(plan: TaskPlan, tally: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    if plan.runner == "async":

        async def body(ctx: Context) -> None:
            await perform_async(plan, "body", ctx, tally)

        async def fallback(ctx: Context) -> None:
            await perform_async(plan, "fallback", ctx, tally)

    else:

        def body(ctx: Context) -> None:
            perform_sync(plan, "body", ctx, tally)

        def fallback(ctx: Context) -> None:
            perform_sync(plan, "fallback", ctx, tally)

    return body, fallback


def workflow_of(
    plans: list[TaskPlan],
    max_concurrency: int,
    tally: str,
    module_level: Mapping[str, Any] | None = None,
) -> Workflow:
    """The workflow of `plans`. Process bodies are module-level functions of a workflow file:
    `module_level` (its globals) holds them, named after the task (`t3`, `t3_fallback`)."""
    tasks = []
    for p in plans:
        if p.runner == "process":
            assert module_level is not None, "process bodies live in a file"
            body, fallback = module_level[p.id], module_level.get(f"{p.id}_fallback")
        else:
            body, fallback = _bodies(p, tally)
        tasks.append(
            task(
                body,
                id=p.id,
                dependencies=p.deps,
                trigger_rule=p.rule,  # type: ignore[arg-type]
                runner="process" if p.runner == "process" else None,
                retry_attempts=p.retries,
                retry_delay_ms=p.retry_delay_ms,
                retry_backoff=p.retry_backoff,  # type: ignore[arg-type]
                retry_jitter=p.retry_jitter,
                timeout_s=p.timeout_s,
                fallback=fallback if p.fallback is not None else None,
            )
        )
    return Workflow("props", tasks, max_concurrency=max_concurrency)


PROCESS_FILE = """\
import sys

if {tests!r} not in sys.path:
    sys.path.insert(0, {tests!r})

from scripted import perform_sync, plans_from_json, workflow_of

TALLY = {tally!r}
PLANS = {{p.id: p for p in plans_from_json({plans!r})}}
{functions}

workflow = workflow_of(list(PLANS.values()), {cap}, TALLY, globals())
"""

_PROCESS_FUNCTION = """
def {name}(context):
    perform_sync(PLANS[{id!r}], {kind!r}, context, TALLY)
"""


def write_process_file(path: Path, plans: list[TaskPlan], max_concurrency: int, tally: str) -> None:
    """A workflow file for `plans`, its process bodies as module-level functions."""
    functions = "".join(
        _PROCESS_FUNCTION.format(name=name, id=p.id, kind=kind)
        for p in plans
        if p.runner == "process"
        for name, kind in [(p.id, "body"), (f"{p.id}_fallback", "fallback")]
    )
    path.write_text(
        PROCESS_FILE.format(
            tests=str(Path(__file__).parent),
            tally=tally,
            plans=plans_to_json(plans),
            functions=functions,
            cap=max_concurrency,
        )
    )
