"""The worker side of the process runner: what a worker process (or a Dask worker, through
`dask_worker.py`) does with one attempt.

A `ProcessJob` is everything a worker needs, as plain picklable data. `worker_main` is a worker
process's loop: receive a job, import the task's file by path (cached while it is unchanged),
run the body with the task's context slice (values fetched from the parent when read), stream
its prints and log records back in batches, answer with its writes and return value, or with
the error described (`describe_error`) and whether another attempt may go otherwise
(`retryable_error`). The parent side, the pool of these processes, is `runners.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..errors import TuiFlowError
from .logs import TASK_LOG_FORMAT, StreamLines, record_fields, record_lines


@dataclass(frozen=True)
class ProcessJob:
    """Everything a worker needs to run one attempt (plain, picklable data)."""

    source_file: str
    fn_name: str
    task_id: str  # the Task's id in its module (used when fn_name is not a module global)
    kind: str  # "body" | "fallback"
    display_id: str  # the id in events (`task[3]` for a map_over instance)
    visible: dict[str, Any]
    item: Any = None
    index: int | None = None
    has_item: bool = False
    # set on the way to a pool worker: the context's keys travel, values are fetched when read
    lazy_keys: tuple[str, ...] | None = None
    log_level: int = logging.INFO  # the lowest level of the records the task's log keeps


def describe_error(exc: BaseException) -> tuple[str, str]:
    """A one-line summary and the full traceback of an exception. Never raises: an exception
    whose `str()` (or whose traceback's formatting) fails is still described."""
    name = _type_name(exc)
    try:
        text = str(exc)
    except BaseException as failure:  # a broken __str__ must not take the run down with it
        text = f"<str() of the exception raised {_type_name(failure)}>"
    summary = f"{name}: {text}".strip().rstrip(":")
    first = summary.splitlines()[0] if summary else name
    try:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except BaseException:
        frames = traceback.format_tb(exc.__traceback__) if exc.__traceback__ else []
        tb = "Traceback (most recent call last):\n" + "".join(frames) + first + "\n"
    return first, tb


def retryable_error(exc: BaseException) -> bool | str:
    """Whether another attempt may go otherwise: not for a context error (a missing key, a
    value of the wrong type, a write conflict), which would be the same every time; nor for
    an error the task's `retry_on` refuses (noted on it by `run_job_in_worker`): then why,
    as text."""
    from ..errors import ContextError
    from .retry import REFUSAL_ATTR

    if isinstance(exc, ContextError):
        return False
    refusal = getattr(exc, REFUSAL_ATTR, None)
    return refusal if isinstance(refusal, str) else True


def _type_name(exc: BaseException) -> str:
    try:
        return type(exc).__name__
    except BaseException:
        return "Exception"


# lines written within this long of the last batch wait to go with the next ones, but no longer
_BATCH_S = 0.05


class _WorkerSink(StreamLines):
    """Context sink in a worker: batches log lines and sends them to the parent.

    A line that waits for company goes out at most `_BATCH_S` later even if none follows (a
    thread sends it): a body that prints, then computes or hangs until it is killed at its
    timeout, still has its line shown while it runs, and kept."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        # (at, level, text) or, for a logging record, (at, level, text, logger, extra)
        self.lines: list[tuple[Any, ...]] = []
        self.last_send = time.monotonic()
        self._partial: dict[str, str] = {}
        self._held = threading.Condition(self.lock)
        self._sender: threading.Thread | None = None

    def _lines(self, level: str, lines: list[str]) -> None:
        now = time.time()
        with self.lock:
            waiting = bool(self.lines)
            for line in lines:
                self.lines.append((now, level, line))
            if len(self.lines) >= 500 or time.monotonic() - self.last_send > _BATCH_S:
                self._send_locked()
            elif not waiting:
                self._hold_locked()

    def _hold_locked(self) -> None:
        """Lines wait for the next batch (called with the lock held): see they go out."""
        if self._sender is None:
            self._sender = threading.Thread(
                target=self._send_held, name="tui-flow worker logs", daemon=True
            )
            self._sender.start()
        self._held.notify()

    def _send_held(self) -> None:
        with self._held:
            while True:
                if not self.lines:
                    self._held.wait()
                    continue
                left = self.last_send + _BATCH_S - time.monotonic()
                if left > 0:
                    self._held.wait(left)
                    continue
                try:
                    self._send_locked()
                except (OSError, ValueError):  # the pipe is gone (the parent ended)
                    return

    def answer(self, msg: tuple[Any, ...]) -> None:
        """Send the job's answer, after the lines it wrote."""
        with self.lock:
            self._send_locked()
            self.conn.send(msg)

    def log(
        self,
        level: str,
        text: str,
        logger: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if logger is None and extra is None:
            self._lines(level, str(text).splitlines() or [""])
            return
        now = time.time()
        with self.lock:
            for line, name, fields in record_lines(text, logger, extra):
                self.lines.append((now, level, line, name, fields))
            self._send_locked()

    def progress(self, done: float, total: float | None, message: str | None) -> None:
        with self.lock:
            self._send_locked()
            self.conn.send(("progress", done, total, message))

    def close(self) -> None:
        self.close_streams()
        with self.lock:
            self._send_locked()

    def _send_locked(self) -> None:
        if self.lines:
            self.conn.send(("logs", self.lines))
            self.lines = []
        self.last_send = time.monotonic()


class _WorkerStream:
    def __init__(self, sink: _WorkerSink, name: str, real: Any) -> None:
        self.sink, self.name, self.real = sink, name, real

    def write(self, text: str) -> int:
        self.sink.write(self.name, text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class _WorkerLogHandler(logging.Handler):
    def __init__(self, sink: _WorkerSink) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink
        self.setFormatter(logging.Formatter(TASK_LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.log(record.levelname.lower(), *record_fields(record, self.formatter))  # type: ignore[arg-type]


_module_cache: dict[str, tuple[tuple[int, int], Any]] = {}


def _find_function(job: ProcessJob) -> Callable[..., Any]:
    from ..fresh_import import import_fresh

    path = Path(job.source_file)
    st = path.stat()
    key = (st.st_mtime_ns, st.st_size)
    cached = _module_cache.get(job.source_file)
    if cached is None or cached[0] != key:
        module = import_fresh(path)
        _module_cache[job.source_file] = (key, module)
    else:
        module = cached[1]
    return find_in_module(module, job)


def find_in_module(module: Any, job: ProcessJob) -> Callable[..., Any]:
    """The body (or fallback) a job names, looked up in an imported task module."""
    from ..tasks import Task
    from ..workflow import Workflow

    found = vars(module).get(job.fn_name)
    if isinstance(found, Task):
        found = found.fn if job.kind == "body" else found.fallback_fn
    found = getattr(found, "__tui_flow_body__", found)  # a compat body (taskinity's @task)
    if callable(found):
        return found
    candidates: list[Task] = [v for v in vars(module).values() if isinstance(v, Task)]
    for wf in (v for v in vars(module).values() if isinstance(v, Workflow)):
        candidates += list(wf.tasks.values())
    for t in candidates:
        if t.id == job.task_id:
            fn = t.fn if job.kind == "body" else t.fallback_fn
            if fn is not None:
                return fn
    raise TuiFlowError(
        f"task {job.task_id!r}: runner='process' could not find function {job.fn_name!r} at "
        f"module level of {job.source_file}; process bodies must be module-level functions"
    )


def run_job_in_worker(job: ProcessJob, sink: Any, module: Any = None) -> tuple[dict[str, Any], Any]:
    """Run one attempt's body here (also used by the Dask runner on its workers).

    `module` is the task's module when the caller has already imported it (the Dask runner
    executes the file's source on the worker); otherwise the file is imported by path.
    """
    from ..context import _MISSING, Context, returned_value

    fn = _find_function(job) if module is None else find_in_module(module, job)
    visible: Mapping[str, Any] = job.visible
    if job.lazy_keys is not None:
        visible = _LazyContext(sink, job.lazy_keys)
    ctx = Context.for_task(
        job.display_id,
        visible,
        sink,
        item=job.item if job.has_item else _MISSING,
        index=job.index,
    )
    try:
        result = fn(ctx)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
    except BaseException as exc:
        _note_refusal(exc, job, module)
        raise
    return ctx.writes, returned_value(job.display_id, result)


def _note_refusal(exc: BaseException, job: ProcessJob, module: Any) -> None:
    """Note on a body's error why its task's `retry_on` does not retry it, if it does not
    (`retryable_error` sends that to the parent)."""
    from ..tasks import Task
    from ..workflow import Workflow
    from .retry import REFUSAL_ATTR, retry_refusal

    if job.kind != "body":
        return
    if module is None:
        module = _module_cache.get(job.source_file, (None, None))[1]
    found = vars(module).get(job.fn_name) if module is not None else None
    task = found if isinstance(found, Task) and found.id == job.task_id else None
    if task is None and module is not None:
        for v in vars(module).values():
            tasks = v.tasks.values() if isinstance(v, Workflow) else [v]
            task = next((t for t in tasks if isinstance(t, Task) and t.id == job.task_id), None)
            if task is not None:
                break
    if task is None or task.retry_on is None:
        return
    refusal = retry_refusal(task, exc)
    if refusal is not None:
        with contextlib.suppress(Exception):
            setattr(exc, REFUSAL_ATTR, refusal)


_ABSENT = "<tui-flow: no such key>"


class _LazyContext(Mapping[str, Any]):
    """A worker's view of the task's context: keys known up front, each value asked of the
    parent the first time the body reads it, so a task moves only the data it uses."""

    def __init__(self, sink: _WorkerSink, keys: tuple[str, ...]) -> None:
        self._sink = sink
        self._keys = keys
        self._known = frozenset(keys)
        self._values: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self._values:
            return self._values[key]
        if key not in self._known:
            raise KeyError(key)
        sink = self._sink
        with sink.lock:
            sink._send_locked()  # log lines written so far go first, in order
            sink.conn.send(("get", key))
            reply = sink.conn.recv()
        if reply[0] != "value" or reply[1] == _ABSENT:
            raise KeyError(key)
        self._values[key] = reply[2]
        return reply[2]

    def __contains__(self, key: object) -> bool:
        return key in self._known

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def worker_main(conn: Connection) -> None:
    """The loop of a worker process: receive a job, run it, answer; until told to stop."""
    # Ctrl-C in a terminal reaches the whole process group: the parent decides what it means
    # (it cancels the run, and kills the workers it must), so a KeyboardInterrupt seen here
    # can only come from a body, and fails that attempt like any other exception
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sink = _WorkerSink(conn)
    sys.stdout = _WorkerStream(sink, "stdout", sys.stdout)
    sys.stderr = _WorkerStream(sink, "stderr", sys.stderr)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(_WorkerLogHandler(sink))
    root.setLevel(logging.INFO)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        root.setLevel(job.log_level)
        try:
            writes, value = run_job_in_worker(job, sink)
            sink.close()
            sink.answer(("done", writes, value))
        except BaseException as exc:
            sink.close()
            summary, tb = describe_error(exc)
            try:
                sink.answer(("error", summary, tb, retryable_error(exc)))
            except Exception:
                return
