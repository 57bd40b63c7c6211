"""One attempt of a task: its body run once, in the place its runner says, under its timeout.

`run_attempt` never raises but `CancelledError` (the run or the task was cancelled): whatever
the body raises (any BaseException) becomes a failed `Attempt` with the exception's type, a
message and the traceback; a deadline that passed becomes "timed out". Where the body runs is
one function per place, chosen by a table (`RUNNERS`):

- `async`: on the event loop, inline (an `async def` body, or a plain one marked so);
- `thread`: in the run's thread pool (plain bodies);
- `process`: on a worker process of the pool (CPU work);
- `remote`: on a remote runner (a Dask cluster), for thread and process bodies.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from ..context import _MISSING, Context, returned_value
from ..tasks import source_of
from .events import WAITS_FOR_WORKER, TaskStateChanged
from .logs import AttemptSink, capture, enter_attempt, exit_attempt
from .retry import retry_refusal
from .runners import _Worker, get_process_pool
from .watchdog import BodyOverran, RunInterrupted
from .worker import ProcessJob, describe_error, retryable_error

if TYPE_CHECKING:
    from .lanes import Unit
    from .scheduler import Execution


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


class Attempt:
    """How one attempt went (what the lifecycle decides retries and fallbacks from)."""

    __slots__ = (
        "error",
        "future",
        "ok",
        "reason",
        "refusal",
        "retryable",
        "traceback",
        "value",
        "worker",
        "writes",
        "zombie",
    )

    def __init__(self) -> None:
        self.ok = False
        self.writes: dict[str, Any] = {}
        self.value: Any = None
        self.error: str | None = None
        self.traceback: str | None = None
        self.reason: str | None = None
        self.retryable = True
        self.refusal: str | None = None  # why the task's retry_on does not retry the error
        # a thread body's future; after a timeout, the body that still runs (it keeps its slot)
        self.future: concurrent.futures.Future[Any] | None = None
        self.zombie: concurrent.futures.Future[Any] | None = None
        self.worker: _Worker | None = None  # the worker process acquired for it

    @property
    def timed_out(self) -> bool:
        return self.reason == "timed out"


class _NoTimeout:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_TIMEOUT = _NoTimeout()


class _Raised(Exception):
    """Carries what a thread body raised back to the loop as it was. Raised out of an awaited
    future as they are, a GeneratorExit escapes every `except` of the coroutines awaiting it,
    and a TimeoutError is replaced by a new one without its traceback."""

    def __init__(self, raised: BaseException) -> None:
        super().__init__()
        self.raised = raised


_body_threads: set[int] = set()  # threads running a body now (see bodies_still_running)


def bodies_still_running() -> bool:
    """Whether a thread is still inside a body (one that timed out or was cancelled and never
    returned): the interpreter would wait for it at exit forever."""
    return bool(_body_threads)


def _run_sync_body(fn: Callable[[Context], Any], ctx: Context, sink: AttemptSink) -> Any:
    """In a worker thread: mark the thread as running this attempt, then run the body."""
    token = enter_attempt(sink)
    me = threading.get_ident()
    _body_threads.add(me)
    try:
        result = fn(ctx)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return result
    except BaseException as exc:
        raise _Raised(exc) from None
    finally:
        _body_threads.discard(me)
        exit_attempt(token)


def blocked_message(seconds: float) -> str:
    return (
        f"blocked the event loop for {seconds:.1f} s: nothing else could run meanwhile "
        f"(other tasks, timeouts, the app, the store); make it a plain def, which runs in a "
        f"thread, or use runner='process' for CPU work"
    )


# -- where a body runs ----------------------------------------------------------------------
# Each runner gets the attempt's parts and returns the body's value; it sets `out.writes`.

Runner = Callable[
    ["Execution", "Unit", int, Callable[..., Any], str, AttemptSink, Any, Attempt],
    Awaitable[Any],
]


async def _on_loop(
    ex: Execution,
    unit: Unit,
    attempt: int,
    fn: Callable[..., Any],
    kind: str,
    sink: AttemptSink,
    visible: Any,
    out: Attempt,
) -> Any:
    ctx = Context.for_task(unit.id, visible, sink, item=unit.item, index=unit.index)
    token = enter_attempt(sink)
    try:
        value = fn(ctx)
        if asyncio.iscoroutine(value):
            value = await value
    finally:
        watchdog = ex.watchdog
        if watchdog is not None:
            held = watchdog.take(ex, unit.id, attempt)
            if held is not None:
                sink.log("warning", blocked_message(held))
        exit_attempt(token)
    out.writes = ctx.writes
    return value


async def _in_thread(
    ex: Execution,
    unit: Unit,
    attempt: int,
    fn: Callable[..., Any],
    kind: str,
    sink: AttemptSink,
    visible: Any,
    out: Attempt,
) -> Any:
    ctx = Context.for_task(unit.id, visible, sink, item=unit.item, index=unit.index)
    assert ex.threads is not None
    out.future = ex.threads.submit(_run_sync_body, fn, ctx, sink)
    value = await asyncio.wrap_future(out.future)
    out.writes = ctx.writes
    return value


def _job(unit: Unit, fn: Callable[..., Any], kind: str, visible: Any) -> ProcessJob:
    task = unit.task
    return ProcessJob(
        # the file that defines the function being run: a fallback may live in another
        # module than the task's body
        source_file=source_of(fn)[0] or task.source_file or "",
        fn_name=getattr(fn, "__name__", task.id),
        task_id=task.id,
        kind=kind,
        display_id=unit.id,
        visible=visible,
        item=None if unit.item is _MISSING else unit.item,
        index=unit.index,
        has_item=unit.item is not _MISSING,
        log_level=capture.level,
    )


def _worker_message(sink: AttemptSink, msg: tuple[Any, ...]) -> None:
    """Log lines and progress a worker process (or a Dask worker) sent while a body runs."""
    if msg[0] == "logs":
        for _at, level, text, *source in msg[1]:  # source: logger, extra (a logging record)
            sink.buffer.add(sink.task_id, sink.attempt, level, text, *source)
    elif msg[0] == "progress":
        sink.progress(msg[1], msg[2], msg[3])


def _answer(msg: tuple[Any, ...], out: Attempt) -> Any:
    """A worker's answer: ("done", writes, value) or ("error", summary, traceback[, retry])."""
    if msg[0] == "error":
        out.error, out.traceback = msg[1], msg[2]
        verdict = msg[3] if len(msg) > 3 else True
        out.retryable = verdict is True
        if isinstance(verdict, str):
            out.refusal = verdict
        raise _Answered
    out.writes = msg[1]
    return msg[2]


class _Answered(Exception):
    """The worker answered with the body's error (already in the attempt)."""


async def _elsewhere(
    ex: Execution,
    unit: Unit,
    attempt: int,
    fn: Callable[..., Any],
    kind: str,
    sink: AttemptSink,
    visible: Any,
    out: Attempt,
) -> Any:
    """On the worker process acquired for the attempt, else on the remote runner: the same
    job travels either way, and the answer comes back in the same shape."""
    job = _job(unit, fn, kind, visible)

    def on_message(msg: tuple[Any, ...]) -> None:
        _worker_message(sink, msg)

    if out.worker is not None:
        answer = await get_process_pool().run_on(out.worker, job, on_message)
    else:
        assert ex.remote is not None
        answer = await ex.remote.run(job, on_message)
    return _answer(answer, out)


RUNNERS: dict[str, Runner] = {
    "async": _on_loop,
    "thread": _in_thread,
    "process": _elsewhere,
    "remote": _elsewhere,
}


# -- one attempt ------------------------------------------------------------------------------


def _say_waits_for_worker(ex: Execution, unit: Unit, attempt: int) -> None:
    """The task holds its slot but waits for a worker process (or a cluster) to start or free
    up: an event only (to the scheduler it is what it was, pending or retrying)."""
    ex._emit(
        TaskStateChanged.trusted(
            ex.run_id,
            ex.clock(),
            unit.id,
            "pending",
            attempt,
            unit.task.spec.max_attempts,
            reason=WAITS_FOR_WORKER,
        )
    )


async def run_attempt(
    ex: Execution, unit: Unit, attempt: int, fn: Callable[..., Any], kind: str
) -> Attempt:
    """Run the body once, under the task's timeout. Never raises but CancelledError."""
    loop = ex.loop
    assert ex.buffer is not None and loop is not None
    out = Attempt()
    timeout = unit.task.spec.timeout_s
    runner = unit.task.runner
    if ex.remote is not None and runner in ("thread", "process"):
        runner = "remote"
    if runner == "process":
        # wait for a free worker first: queueing is not running, and not under the timeout
        pool = get_process_pool()
        if not pool.has_idle():  # say so: it holds a slot, but no body runs yet
            _say_waits_for_worker(ex, unit, attempt)
        try:
            out.worker = await pool.acquire()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            summary, out.traceback = describe_error(exc)
            out.error = f"could not start a worker process: {summary}"
            ex.set_state(unit.id, "running", attempt)
            return out
    elif runner == "remote" and not getattr(ex.remote, "started", True):
        # the cluster is still starting (the app starts it with the first attempt): that is
        # worker start-up, not the body running
        _say_waits_for_worker(ex, unit, attempt)
        try:
            await ex.remote.start()
        except asyncio.CancelledError:
            raise
        except Exception:
            pass  # the attempt itself reports the cluster it cannot reach
    ex.set_state(unit.id, "running", attempt, reason="fallback" if kind == "fallback" else None)
    sink = AttemptSink(ex.buffer, unit.id, attempt)
    visible = ex.ledger.visible_for(unit.parent or unit.id)
    deadline = asyncio.timeout(timeout) if timeout else None
    began = loop.time()  # (the loop's clock is monotonic, as the watchdog's)
    try:
        async with deadline if deadline is not None else _NO_TIMEOUT:
            value = await RUNNERS[runner](ex, unit, attempt, fn, kind, sink, visible, out)
        if deadline is not None and loop.time() - began > timeout:  # type: ignore[operator]
            # the body returned past its deadline without awaiting in between (it blocked
            # the loop, so the timeout could not fire): it timed out all the same
            raise BodyOverran
        out.value = returned_value(unit.id, value)
        out.ok = True
    except _Answered:
        pass  # the worker's answer is the attempt's error
    except RunInterrupted:
        # a signal stopped the body where it held the loop: the run is being cancelled
        # (cancelled here, in the engine's own flow, not in the signal's handler)
        ex.cancel()
        raise asyncio.CancelledError from None
    except asyncio.CancelledError as exc:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # the run or this task was cancelled
        # the body raised CancelledError itself: a failed attempt like any other
        out.error, out.traceback = describe_error(exc)
    except BaseException as exc:
        # Whatever the body raised (KeyboardInterrupt, SystemExit and GeneratorExit too) is a
        # failed attempt of this task: a body cannot stop the engine.
        if isinstance(exc, _Raised):
            exc = exc.raised
        if deadline is not None and (deadline.expired() or isinstance(exc, BodyOverran)):
            out.error = f"TimeoutError: timed out after {timeout:g} s"
            out.reason = "timed out"
            out.refusal = retry_refusal(unit.task, TimeoutError(out.error))
            out.retryable = out.refusal is None
            if out.future is not None and not out.future.done():
                out.zombie = out.future
            return out
        out.error, out.traceback = describe_error(exc)
        verdict = retryable_error(exc)
        if verdict is True:
            out.refusal = retry_refusal(unit.task, exc)
        elif isinstance(verdict, str):
            out.refusal = verdict
        out.retryable = verdict is True and out.refusal is None
    return out


# -- which body holds the loop (for the watchdog and the signal handlers) -------------------


def body_holding_loop(
    frame: FrameType | None,
) -> tuple[Execution, str, int, float, float | None, object] | None:
    """Whether `frame` (where the loop's thread is now) is inside a body that runs on the loop:
    (its execution, unit id, attempt, monotonic start and deadline, a token for the attempt).

    Called in the loop's own thread (a signal handler), so reading the frames is safe."""
    child = None
    f = frame
    while f is not None:
        if f.f_code is _ON_LOOP_CODE:
            if child is None or child.f_code is not _code_of(f.f_locals.get("fn")):
                return None  # the runner's own code runs, not the body
            return _holding(f.f_back)
        child = f
        f = f.f_back
    return None


def _holding(frame: FrameType | None) -> tuple[Any, str, int, float, float | None, object] | None:
    """What `run_attempt`'s frame (the caller of `_on_loop`) says of its attempt."""
    if frame is None or frame.f_code is not run_attempt.__code__:
        return None
    loc = frame.f_locals
    ex, unit, timeout = loc.get("ex"), loc.get("unit"), loc.get("timeout")
    if ex is None or unit is None:
        return None
    began = loc.get("began", 0.0)
    deadline = began + timeout if timeout else None
    return ex, unit.id, loc.get("attempt", 0), began, deadline, loc.get("out")


_ON_LOOP_CODE = _on_loop.__code__


def _code_of(fn: Any) -> Any:
    code = getattr(fn, "__code__", None)
    if code is None and callable(fn):  # an object with __call__
        code = getattr(type(fn).__call__, "__code__", None)
    return code
