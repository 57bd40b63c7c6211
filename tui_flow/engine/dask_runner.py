"""Run task bodies on a Dask cluster (`--executor dask`).

tui-flow's scheduler still decides what runs when (the concurrency cap, retries, timeouts,
trigger rules, cancellation); this runner only moves each attempt's body to a Dask worker and
brings back its writes, its return value and its log lines. It is used like the process pool:
`await runner.run(job, on_message)` returns `("done", writes, value)` or
`("error", summary, traceback)`, and cancelling that await stops the attempt.

How an attempt travels:
- the job (the task's context slice as plain data, never Dask futures of upstream results:
  futures would pin every child to the worker holding its parent's result) and the text of
  the task's source file go to the worker pickled into one bytes argument, under a unique key
  per attempt with `pure=False`;
- the worker executes the source in a fresh module (cached by path and hash), so the file
  need not exist there; tui-flow and the flow's own imports must be installed there;
- log lines and progress are published on a Dask event topic while the body runs and routed
  back to the attempt by key; the result says how many messages were sent, so none is lost;
- a worker that dies mid-attempt fails that attempt (our LocalCluster sets the scheduler's
  `allowed-failures` to 0; on other clusters a second start of the same key is noticed);
- cancelling stops the body: its key is cancelled and the worker raises `TaskInterrupted`
  in the body's thread (pure-Python code stops at once; code blocked inside a C call stops
  when it returns to Python).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import pickle
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TuiFlowError
from .dask_worker import _interrupt, _one_line, _run_attempt, _warm
from .worker import ProcessJob, describe_error

SCHEDULER_ENV = "TUI_FLOW_DASK_SCHEDULER"
INSTALL_HINT = 'pip install "tui-flow[dask]"'
CONNECT_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 2.0  # how long a finished attempt waits for log messages still in flight


class DaskUnavailable(TuiFlowError):
    """dask.distributed is not installed."""


class ClusterUnreachable(TuiFlowError):
    """The Dask scheduler cannot be reached (or was lost during the run)."""


def _require_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise DaskUnavailable(
            f"--executor dask needs dask.distributed, which is not installed: {INSTALL_HINT}"
        ) from None


def make_dask_runner(
    address: str | None = None,
    *,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    connect_timeout: float = CONNECT_TIMEOUT_S,
) -> DaskRunner:
    """The runner for `--executor dask`: connect to `address` (or $TUI_FLOW_DASK_SCHEDULER),
    else start a LocalCluster sized to the machine. Connecting happens in `start()` (or on the
    first attempt); raises `DaskUnavailable` with the install command when Dask is missing."""
    _require_dask()
    return DaskRunner(
        address or os.environ.get(SCHEDULER_ENV) or None,
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        connect_timeout=connect_timeout,
    )


# ---------------------------------------------------------------------------------------------
# client side


@dataclass
class _Attempt:
    """What the client knows about one attempt in flight (by its key)."""

    on_message: Callable[[tuple[Any, ...]], None]
    received: int = 0
    expected: int | None = None
    worker: str | None = None
    all_in: asyncio.Event = field(default_factory=asyncio.Event)
    rerun: asyncio.Event = field(default_factory=asyncio.Event)

    def check_complete(self) -> None:
        if self.expected is not None and self.received >= self.expected:
            self.all_in.set()


class DaskRunner:
    """Runs sync and `runner="process"` bodies on a Dask cluster. See the module docstring."""

    name = "dask"

    def __init__(
        self,
        address: str | None = None,
        *,
        n_workers: int | None = None,
        threads_per_worker: int | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.requested_address = address
        self.address: str | None = address  # the scheduler's address once connected
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.connect_timeout = connect_timeout
        self.topic = f"tui-flow-{uuid.uuid4().hex[:12]}"
        self.dashboard_link: str | None = None
        self._client: Any = None
        self._cluster: Any = None
        self._starting: asyncio.Future[None] | None = None
        self._failure: str | None = None
        self._lost: str | None = None
        self._attempts: dict[str, _Attempt] = {}
        self._sources: dict[str, tuple[tuple[int, int], str, str]] = {}
        self._cleanups: set[asyncio.Task[Any]] = set()
        self.stopped: list[tuple[str, Any]] = []  # (key, what the worker said) per stop

    # -- cluster ---------------------------------------------------------------------------------

    @property
    def local(self) -> bool:
        """True when this runner started its own LocalCluster."""
        return self.requested_address is None

    @property
    def workers(self) -> int | None:
        """Workers in the cluster (None before connecting); refreshed every few seconds."""
        if self._client is None:
            return None
        return int(self._client.scheduler_info().get("n_workers", 0))

    @property
    def threads(self) -> int | None:
        """Worker threads in the cluster, i.e. how many bodies it runs at once."""
        if self._client is None:
            return None
        return int(self._client.scheduler_info().get("total_threads", 0))

    @property
    def started(self) -> bool:
        """Connected (or the LocalCluster up): an attempt need not wait for it."""
        return self._client is not None

    def describe(self) -> str:
        """One line for a header: `dask tcp://127.0.0.1:8786 · 2 workers, 2 threads`."""
        if self._client is None:
            where = self.requested_address or "LocalCluster (not started)"
            return f"dask {where}"
        kind = " (local)" if self.local else ""
        return f"dask {self.address}{kind} · {self.workers} workers, {self.threads} threads"

    async def start(self) -> DaskRunner:
        """Connect to the scheduler (or start the LocalCluster). Safe to call more than once;
        raises `ClusterUnreachable` with the address and the reason when it cannot."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        try:
            await asyncio.shield(self._starting)
        except ClusterUnreachable:
            raise
        except Exception as exc:  # pragma: no cover - _start converts what it knows
            raise ClusterUnreachable(str(exc)) from None
        return self

    async def _start(self) -> None:
        from distributed import Client, LocalCluster

        try:
            if self.requested_address is None:
                n, t = self._local_size()
                self._cluster = await LocalCluster(
                    n_workers=n,
                    threads_per_worker=t,
                    processes=True,
                    asynchronous=True,
                    dashboard_address=":0",
                    scheduler_kwargs={"allowed_failures": 0},
                )
                self._client = await Client(
                    self._cluster, asynchronous=True, timeout=self.connect_timeout
                )
            else:
                self._client = await Client(
                    self.requested_address, asynchronous=True, timeout=self.connect_timeout
                )
        except Exception as exc:
            where = self.requested_address or "a LocalCluster"
            verb = "start" if self.requested_address is None else "reach the Dask scheduler at"
            self._failure = f"cannot {verb} {where}: {_one_line(exc)}"
            if self._cluster is not None:
                with contextlib.suppress(Exception):
                    await self._cluster.close()
                self._cluster = None
            raise ClusterUnreachable(self._failure) from None
        self.address = self._client.scheduler.address
        with contextlib.suppress(Exception):
            self.dashboard_link = self._client.dashboard_link
        self._client.subscribe_topic(self.topic, self._on_event)
        await self._check_workers()

    async def _check_workers(self) -> None:
        """Import tui-flow on every worker now (not in the first attempt), and say so clearly
        when the workers cannot."""
        try:
            said = await self._client.run(_warm, on_error="return")
        except Exception:
            return
        bad = {w: r for w, r in said.items() if isinstance(r, BaseException)}
        if said and len(bad) == len(said):
            worker, exc = next(iter(bad.items()))
            self._failure = (
                f"the Dask workers at {self.address} cannot run tui-flow tasks "
                f"(worker {worker}: {_one_line(exc)}); install tui-flow and the flow's "
                "imports on the workers"
            )
            raise ClusterUnreachable(self._failure)

    def _local_size(self) -> tuple[int, int]:
        from distributed.deploy.utils import nprocesses_nthreads

        procs, threads = nprocesses_nthreads()
        return self.n_workers or procs, self.threads_per_worker or threads

    async def close(self) -> None:
        """Stop what is still being stopped, then disconnect (and stop our LocalCluster)."""
        if self._cleanups:
            await asyncio.gather(*self._cleanups, return_exceptions=True)
        if self._starting is not None and not self._starting.done():
            with contextlib.suppress(BaseException):
                await self._starting
        client, self._client = self._client, None
        if client is not None:
            with _quiet_distributed(), contextlib.suppress(Exception):
                if client.status == "running":
                    await client.close()
                else:  # lost: do not wait out its reconnection attempts, nor log them
                    await getattr(client, "_close", client.close)(fast=True)
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            with contextlib.suppress(Exception):
                await cluster.close()

    async def drain(self) -> None:
        """Wait until every cancelled attempt has been stopped on its worker."""
        while self._cleanups:
            await asyncio.gather(*list(self._cleanups), return_exceptions=True)

    async def __aenter__(self) -> DaskRunner:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- events from workers ---------------------------------------------------------------------

    def _on_event(self, event: tuple[float, Any]) -> None:
        try:
            msg = event[1]
            st = self._attempts.get(msg["k"])
            if st is None:
                return
            body = msg["m"]
            if body[0] == "start":
                if st.worker is not None:
                    st.rerun.set()  # Dask re-ran the key: the first worker died
                st.worker = body[1]
                return
            st.received += 1
            if body[0] == "logs":
                st.on_message(("logs", [tuple(line) for line in body[1]]))
            elif body[0] == "progress":
                st.on_message(("progress", body[1], body[2], body[3]))
            st.check_complete()
        except Exception:  # a malformed message must not break the client
            return

    # -- attempts --------------------------------------------------------------------------------

    def _source(self, path: str) -> tuple[str, str]:
        """The text of a task's source file and its hash (cached while the file is unchanged)."""
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._sources.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1], cached[2]
        text = Path(path).read_text(encoding="utf-8")
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        self._sources[path] = (stamp, text, digest)
        return text, digest

    async def run(
        self, job: ProcessJob, on_message: Callable[[tuple[Any, ...]], None]
    ) -> tuple[Any, ...]:
        """Run one attempt on the cluster; cancelling this stops it there."""
        try:
            await self.start()
        except ClusterUnreachable as exc:
            return ("error", f"ClusterUnreachable: {exc}", "")
        if self._client is None:
            return ("error", "ClusterUnreachable: the Dask runner was closed", "")
        if self._lost is not None or self._client.status != "running":
            why = self._lost or f"the Dask client is {self._client.status}"
            return ("error", f"ClusterUnreachable: {why}", "")
        try:
            text, digest = self._source(job.source_file)
        except (OSError, UnicodeDecodeError) as exc:
            return (
                "error",
                f"LoadError: task {job.task_id!r}: cannot read its source file "
                f"{job.source_file!r} to send to the Dask workers: {_one_line(exc)}",
                "",
            )
        key = f"{_slug(job.display_id)}-{uuid.uuid4().hex}"
        payload = pickle.dumps(
            (job, job.source_file, text, digest, self.topic, key), protocol=pickle.HIGHEST_PROTOCOL
        )
        st = _Attempt(on_message)
        self._attempts[key] = st
        fut = None
        waiter: asyncio.Task[Any] | None = None
        rerun: asyncio.Task[Any] | None = None
        finished = False
        try:
            fut = self._client.submit(_run_attempt, payload, key=key, pure=False, retries=0)
            waiter = asyncio.ensure_future(fut.result())
            rerun = asyncio.ensure_future(st.rerun.wait())
            await asyncio.wait({waiter, rerun}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                return (
                    "error",
                    f"WorkerDied: the Dask worker {st.worker} running {job.display_id} died; "
                    "the cluster started the attempt again elsewhere, which tui-flow counts "
                    "as a new attempt",
                    "",
                )
            finished = True
            return await self._outcome(waiter, st, job)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our caller cancelled (a timeout, a cancelled task or run)
            return ("error", "ClusterUnreachable: the Dask future was cancelled", "")
        finally:
            for t in (waiter, rerun):
                if t is not None and not t.done():
                    t.cancel()
            if fut is not None and not finished:
                self._stop_later(key, fut, st.worker)
            elif fut is not None:
                with contextlib.suppress(Exception):
                    fut.release()
            self._attempts.pop(key, None)

    async def _outcome(self, waiter: asyncio.Task[Any], st: _Attempt, job: ProcessJob) -> tuple:
        from distributed import KilledWorker
        from distributed.client import FutureCancelledError

        try:
            status, first, second, sent, retryable = waiter.result()
        except KilledWorker as exc:
            return (
                "error",
                f"WorkerDied: the Dask worker running {job.display_id} died "
                f"({exc.last_worker.address if exc.last_worker else 'unknown worker'})",
                "",
            )
        except FutureCancelledError as exc:
            if exc.reason == "scheduler-connection-lost":
                self._lost = f"lost the connection to the Dask scheduler at {self.address}"
                return ("error", f"ClusterUnreachable: {self._lost}", "")
            return (
                "error",
                f"ClusterUnreachable: the attempt was cancelled on the cluster ({exc.reason})",
                "",
            )
        except OSError as exc:  # includes distributed's CommClosedError
            why = f"lost the Dask scheduler at {self.address}: {_one_line(exc)}"
            if self._client is None or self._client.status != "running":
                self._lost = why
            return ("error", f"ClusterUnreachable: {why}", "")
        except Exception as exc:
            summary, tb = describe_error(exc)
            return ("error", f"Dask: {summary}", tb)
        st.expected = sent
        st.check_complete()
        if not st.all_in.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_TIMEOUT_S):
                    await st.all_in.wait()
        return (status, first, second) if status == "done" else (status, first, second, retryable)

    def _stop_later(self, key: str, fut: Any, worker: str | None) -> None:
        task = asyncio.ensure_future(self._stop(key, fut, worker))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _stop(self, key: str, fut: Any, worker: str | None) -> None:
        """Cancel the key, then stop the body's thread on its worker (or on every worker,
        when it has not said where it started: it then refuses to start)."""
        client = self._client
        if client is None or client.status != "running":
            return
        with contextlib.suppress(Exception):
            await client.cancel([fut], reason="cancelled by tui-flow")
        try:
            said = await client.run(
                _interrupt, key, workers=[worker] if worker else None, on_error="return"
            )
        except Exception as exc:
            said = exc
        self.stopped.append((key, said))


@contextlib.contextmanager
def _quiet_distributed() -> Iterator[None]:
    """Keep distributed's own error logging (tracebacks of a lost connection) off the
    terminal while we close: the run has already said what happened, in one line."""
    log = logging.getLogger("distributed")
    level = log.level
    log.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        log.setLevel(level)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "task"
