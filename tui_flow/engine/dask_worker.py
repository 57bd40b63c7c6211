"""What runs on a Dask worker for the Dask runner (`dask_runner.py`): one attempt of one body,
its log lines published back while it runs, and the interrupt that stops it.

Dask ships these functions to the workers by reference: tui-flow must be installed there.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import linecache
import os
import pickle
import re
import sys
import threading
import time
import types
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .worker import _WorkerSink, describe_error, retryable_error, run_job_in_worker


class TaskInterrupted(BaseException):
    """Raised in a body's thread on the worker when its attempt is cancelled or timed out."""


@dataclass
class _Running:
    thread: int
    done: threading.Event = field(default_factory=threading.Event)
    interrupted: bool = False
    delivered: bool = False


_running: dict[str, _Running] = {}
_doomed: OrderedDict[str, None] = OrderedDict()  # keys stopped before they started
_running_lock = threading.Lock()
_modules: dict[tuple[str, str], types.ModuleType] = {}
_modules_lock = threading.Lock()
_capture_lock = threading.Lock()
_capture_on = False


class _EventConn:
    """Stands in for the process pool's pipe: publishes messages on the runner's topic."""

    def __init__(self, worker: Any, topic: str, key: str) -> None:
        self.worker, self.topic, self.key = worker, topic, key
        self.sent = 0

    def send(self, msg: tuple[Any, ...]) -> None:
        self.worker.log_event(self.topic, {"k": self.key, "m": list(msg)})
        if msg[0] != "start":
            self.sent += 1


class _DaskSink(_WorkerSink):
    """The process worker's sink, plus a flush a moment after the last line, so a line
    printed before a long computation shows while it runs."""

    def __init__(self, conn: _EventConn) -> None:
        super().__init__(conn)  # type: ignore[arg-type]
        self._timer_set = False
        self._closed = False

    def _hold_locked(self) -> None:
        # lines wait for company: here the worker's loop sends them a moment later
        if not self._timer_set and not self._closed:
            self._timer_set = True
            loop = self.conn.worker.loop  # type: ignore[attr-defined]
            loop.add_callback(lambda: loop.call_later(0.1, self._flush))

    def _flush(self) -> None:
        with self.lock:
            self._timer_set = False
            if not self._closed:
                self._send_locked()

    def close(self) -> None:
        super().close()
        with self.lock:
            self._closed = True


def _ensure_capture() -> None:
    """Route print/logging of task threads to their attempt (once per worker process)."""
    global _capture_on
    with _capture_lock:
        if not _capture_on:
            from .logs import capture

            capture.install()
            _capture_on = True


def _module_from_source(path: str, text: str, digest: str) -> types.ModuleType:
    """Execute a task file's source in a fresh module, once per (path, hash) per worker."""
    from ..errors import LoadError
    from ..fresh_import import compat_modules

    with _modules_lock:
        cached = _modules.get((path, digest))
        if cached is not None:
            return cached
        stem = re.sub(r"\W", "_", Path(path).stem)
        name = f"tui_flow_dask_{stem}_{digest}"
        module = types.ModuleType(name)
        module.__file__ = path
        # tracebacks show the source even where the file does not exist
        linecache.cache[path] = (len(text), None, text.splitlines(True), path)
        folder = str(Path(path).parent)
        added = os.path.isdir(folder) and folder not in sys.path
        if added:
            sys.path.insert(0, folder)  # sibling modules, where the folder exists here too
        sys.modules[name] = module
        try:
            with compat_modules():  # `import cloaca` in the file, as when the loader loads it
                exec(compile(text, path, "exec"), module.__dict__)
        except SyntaxError as exc:
            raise LoadError(path, f"syntax error: {exc.msg}", exc.lineno) from None
        except Exception as exc:
            line = None
            for frame in _frames(exc):
                if frame[0] == path:
                    line = frame[1]
            raise LoadError(
                path, f"error while importing on the Dask worker: {_one_line(exc)}", line
            ) from None
        finally:
            sys.modules.pop(name, None)
            if added:
                with contextlib.suppress(ValueError):
                    sys.path.remove(folder)
        _modules[(path, digest)] = module
        return module


def _warm() -> str:
    """Run on each worker when connecting: the import of this module is the point."""
    from .. import __version__
    from ..engine import runners  # noqa: F401

    return __version__


def _frames(exc: BaseException) -> list[tuple[str, int | None]]:
    import traceback

    return [(f.filename, f.lineno) for f in traceback.extract_tb(exc.__traceback__)]


def _run_attempt(payload: bytes) -> tuple[str, Any, Any, int, bool]:
    """The function Dask runs: one attempt of one body. Never raises for the body's errors."""
    from distributed import get_worker

    from .logs import enter_attempt, exit_attempt

    job, path, text, digest, topic, key = pickle.loads(payload)
    worker = get_worker()
    conn = _EventConn(worker, topic, key)
    conn.send(("start", worker.address, os.getpid()))
    rec = _Running(threading.get_ident())
    with _running_lock:
        if key in _doomed:
            return ("error", "TaskInterrupted: cancelled before it started", "", 0, True)
        _running[key] = rec
    out: tuple[str, Any, Any]
    retryable: bool | str = True
    try:
        try:
            _ensure_capture()
            from .logs import capture

            capture.set_level(job.log_level)
            sink = _DaskSink(conn)
            token = enter_attempt(sink)  # type: ignore[arg-type]
            try:
                module = _module_from_source(path, text, digest)
                writes, value = run_job_in_worker(job, sink, module=module)
                out = ("done", writes, value)
            except TaskInterrupted:
                rec.delivered = True
                out = ("error", "TaskInterrupted: stopped on the worker", "")
            except BaseException as exc:
                out = ("error", *describe_error(exc))
                retryable = retryable_error(exc)
            finally:
                exit_attempt(token)
        finally:
            with _running_lock:
                _running.pop(key, None)
                pending = rec.interrupted and not rec.delivered
            if pending:
                _absorb()
    except TaskInterrupted:
        out = ("error", "TaskInterrupted: stopped on the worker", "")
    finally:
        rec.done.set()
    return (*out, conn.sent, retryable)


def _absorb() -> None:
    """Let an interrupt that was sent but not yet raised go off here, not in Dask's code."""
    deadline = time.monotonic() + 0.05
    with contextlib.suppress(TaskInterrupted):
        while time.monotonic() < deadline:
            pass


async def _interrupt(key: str, wait_s: float = 5.0) -> str:
    """On a worker (through `client.run`): stop the attempt `key` if it runs here."""
    with _running_lock:
        rec = _running.get(key)
        if rec is None:
            _doomed[key] = None
            while len(_doomed) > 1000:
                _doomed.popitem(last=False)
            return "not running"
        rec.interrupted = True
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(rec.thread), ctypes.py_object(TaskInterrupted)
        )
    deadline = time.monotonic() + wait_s
    while not rec.done.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return "stopped" if rec.done.is_set() else "still running"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
