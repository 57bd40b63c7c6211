"""Where task bodies run when not on the event loop: a pool of worker processes (the parent
side; what a worker does with a job is `worker.py`).

The process pool is ours rather than `concurrent.futures`' so that one worker can be killed
(a timeout, a cancelled task) and replaced without breaking the others, and so that a body's
log lines stream back while it runs. Workers are forked from a forkserver that has tui_flow
preloaded, so a new worker costs milliseconds; the pool lives as long as the process, across
runs. A worker imports the task's file by path (cached while the file is unchanged), gets the
task's context slice as plain data, and sends back its writes, its return value and its logs.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.spawn
import os
import threading
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from ..errors import TuiFlowError
from .worker import _ABSENT, ProcessJob, worker_main


class WorkerDied(TuiFlowError):
    """The worker process running an attempt ended without answering."""


_spawn_lock = threading.Lock()


def _preparation_without_main(name: str) -> dict[str, Any]:
    """Like multiprocessing's, minus re-running the parent's __main__ in the worker: workers
    import task files by path, and a user's script without a main guard must not run twice."""
    data = _original_preparation(name)
    data.pop("init_main_from_path", None)
    data.pop("init_main_from_name", None)
    return data


_original_preparation = multiprocessing.spawn.get_preparation_data


def prepare_for_subprocesses() -> None:
    """Start multiprocessing's resource tracker now, before a full-screen app takes over the
    standard streams (Dask's LocalCluster needs it too).

    Starting it is the one moment multiprocessing reads a standard stream: it passes
    `sys.stderr.fileno()` to the tracker. Under the app, sys.stderr is Textual's capture,
    whose fileno is -1, which `spawnv_passfds` refuses. The streams are never swapped for the
    real ones to get round that (a body printing meanwhile would write over the screen and
    its line would be lost): while a run is active, the task-output proxy on sys.stderr
    raises `io.UnsupportedOperation` for a missing descriptor, which multiprocessing skips
    (the tracker inherits descriptors 0-2 anyway)."""
    from multiprocessing import resource_tracker

    with _spawn_lock:
        resource_tracker.ensure_running()


class _Worker:
    def __init__(self, mp: Any) -> None:
        parent, child = mp.Pipe(duplex=True)
        self.conn: Connection = parent
        self.proc = mp.Process(target=worker_main, args=(child,), daemon=True)
        with _spawn_lock:
            multiprocessing.spawn.get_preparation_data = _preparation_without_main
            try:
                self.proc.start()
            finally:
                multiprocessing.spawn.get_preparation_data = _original_preparation
        child.close()
        self.dead = False
        self.served: list[str] = []  # context keys sent on request during the last job

    async def run(self, job: ProcessJob, on_message: Callable[[tuple[Any, ...]], None]) -> Any:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        fd = self.conn.fileno()

        def readable() -> None:
            try:
                while self.conn.poll():
                    msg = self.conn.recv()
                    if msg[0] in ("done", "error"):
                        if not done.done():
                            done.set_result(msg)
                        return
                    if msg[0] == "get":  # the body reads a context value: send just that
                        key = msg[1]
                        self.served.append(key)
                        if key in job.visible:
                            self.conn.send(("value", key, job.visible[key]))
                        else:
                            self.conn.send(("value", _ABSENT, None))
                        continue
                    on_message(msg)
            except (EOFError, OSError):
                self.dead = True
                self.proc.join(timeout=0.5)
                if not done.done():
                    code = self.proc.exitcode
                    done.set_exception(
                        WorkerDied(f"worker process died (exit code {code}) while running")
                    )
                loop.remove_reader(fd)

        self.served = []
        self.conn.send(dataclasses.replace(job, visible={}, lazy_keys=tuple(job.visible)))
        loop.add_reader(fd, readable)
        try:
            return await done
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)

    def kill(self) -> None:
        self.dead = True
        with contextlib.suppress(Exception):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.conn.close()

    async def kill_and_wait(
        self,
        limit: float = 5.0,
        on_message: Callable[[tuple[Any, ...]], None] | None = None,
    ) -> None:
        """Kill the worker and return once it has really ended (its sentinel fires). Then
        what it sent that was not read yet (the last lines of the body it ran) goes to
        `on_message`, before the pipe is closed."""
        self.dead = True
        with contextlib.suppress(Exception):
            self.proc.kill()
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()
        try:
            sentinel = self.proc.sentinel
            loop.add_reader(sentinel, lambda: None if ended.done() else ended.set_result(None))
        except (ValueError, OSError):
            self.kill()
            return
        try:
            await asyncio.wait_for(asyncio.shield(ended), limit)
        except (TimeoutError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(sentinel)
            if on_message is not None and ended.done():
                self._drain(on_message)  # the worker has ended: every message is whole
            self.kill()

    def _drain(self, on_message: Callable[[tuple[Any, ...]], None]) -> None:
        with contextlib.suppress(Exception):  # EOFError: nothing more
            while self.conn.poll():
                msg = self.conn.recv()
                if msg[0] in ("logs", "progress"):
                    on_message(msg)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(None)
        with contextlib.suppress(Exception):
            self.proc.join(timeout=1)
        if self.proc.is_alive():
            self.kill()


class ProcessPool:
    """A fixed number of reusable worker processes; one attempt per worker at a time."""

    def __init__(self, size: int | None = None) -> None:
        self.size = max(1, size or os.cpu_count() or 1)
        self._mp = multiprocessing.get_context("forkserver")
        self._mp.set_forkserver_preload(["tui_flow.engine.worker", "tui_flow.loader"])
        self._idle: list[_Worker] = []
        self._count = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._lock = threading.Lock()

    @property
    def workers(self) -> int:
        return self._count

    async def warm(self, n: int | None = None) -> None:
        """Start workers ahead of need (in a thread: starting one may block briefly)."""
        want = min(self.size, n or self.size)
        while self._count < want:
            self._count += 1
            try:
                w = await asyncio.to_thread(_Worker, self._mp)
            except BaseException:
                self._count -= 1
                raise
            self._idle.append(w)
            self._wake()

    async def run(
        self, job: ProcessJob, on_message: Callable[[tuple[Any, ...]], None]
    ) -> tuple[Any, ...]:
        """Run a job on a free worker; cancelling this kills the worker (then replaced)."""
        return await self.run_on(await self.acquire(), job, on_message)

    def has_idle(self) -> bool:
        """Whether `acquire` would hand out a started worker at once."""
        return any(w.proc.is_alive() for w in self._idle)

    async def acquire(self) -> _Worker:
        """Wait for a free worker (starting one if the pool is not full)."""
        return await self._acquire()

    async def run_on(
        self, w: _Worker, job: ProcessJob, on_message: Callable[[tuple[Any, ...]], None]
    ) -> tuple[Any, ...]:
        """Run a job on an acquired worker, then give it back (or kill it if interrupted)."""
        ok = False
        try:
            msg = await w.run(job, on_message)
            ok = True
            return msg
        finally:
            if ok and not w.dead:
                self._idle.append(w)
                self._wake()
            else:
                self._count -= 1
                self._wake()
                await w.kill_and_wait(on_message=on_message)

    async def _acquire(self) -> _Worker:
        while True:
            while self._idle:
                w = self._idle.pop()
                if w.proc.is_alive():
                    return w
                self._count -= 1
            if self._count < self.size:
                self._count += 1
                try:
                    return await asyncio.to_thread(_Worker, self._mp)
                except BaseException:
                    self._count -= 1
                    raise
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except BaseException:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
                raise

    def _wake(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def shutdown(self) -> None:
        idle, self._idle = self._idle, []
        for w in idle:
            w.stop()
        self._count = 0


_pool: ProcessPool | None = None


def get_process_pool() -> ProcessPool:
    """The process-wide pool, created on first use, sized to the machine."""
    global _pool
    if _pool is None:
        _pool = ProcessPool()
        atexit.register(_pool.shutdown)
    return _pool
