"""The end of a run: every way a run ends resolves it, once.

A mixin of `Execution` (scheduler.py). A run ends when its last task reaches a final state
(`_finish`), or at once when something inside the engine goes wrong (`crash`: failed, "internal
error", the traceback kept) or the run cannot start (`_end_now`). Even an end that fails
itself resolves the run (`_last_resort`): nothing waits on a run forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from .events import FINAL_STATES, RunFinished
from .logs import capture
from .report import Report
from .result import RunResult, TaskOutcomes
from .worker import describe_error

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable

    from ..workflow import Workflow
    from .lanes import Lanes, Unit
    from .ledger import Ledger
    from .logs import LogBuffer
    from .progress import Progress
    from .state import RunView
    from .watchdog import Watchdog


class Ending:
    wf: Workflow
    run_id: str
    cap: int
    clock: Callable[[], float]
    remote: Any
    view: RunView
    state: dict[str, str]
    units: dict[str, Unit]
    progress: Progress
    ledger: Ledger
    lanes: Lanes
    cancelled: bool
    buffer: LogBuffer | None
    threads: concurrent.futures.ThreadPoolExecutor | None
    watchdog: Watchdog | None
    subscriber_errors: list[str]
    started_at: float
    _ready: list[Any]
    _finished: asyncio.Future[RunResult] | None
    _internal: tuple[str, str] | None
    _gc_unhold: Callable[[], Any]

    if TYPE_CHECKING:

        @property
        def is_done(self) -> bool: ...
        def set_state(self, tid: str, state: str, attempt: int = 0, **extra: Any) -> None: ...
        def _emit(self, event: Any) -> None: ...
        def _flush_logs(self) -> None: ...

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
        return self.progress.status(cancelled=self.cancelled)

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

    def _stop_threads(self) -> None:
        if self.threads is not None:
            self.threads.shutdown(wait=False, cancel_futures=True)
