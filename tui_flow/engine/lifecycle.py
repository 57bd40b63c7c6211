"""A task's lifecycle: its attempts, the retry delays between them, its fallback, its end.

A mixin of `Execution` (scheduler.py): one lifecycle runs on a lane per task (or map_over
instance), from its first attempt to its final state; a task waiting out a retry delay gives
its slot back; a timed-out thread body, which cannot be stopped, keeps its slot until it ends,
and the next attempt never overlaps it; a fallback runs once the attempts are used up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import TYPE_CHECKING, Any, cast

from .attempts import Attempt, blocked_message, run_attempt
from .events import FINAL_STATES, ContextWritten, RetryScheduled
from .retry import retry_delay_s

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from .lanes import Unit
    from .ledger import Ledger
    from .logs import LogBuffer
    from .scheduler import Execution


class Lifecycle:
    run_id: str
    clock: Callable[[], float]
    rng: random.Random
    state: dict[str, str]
    cancelled: bool
    cancel_asked: set[str]
    ledger: Ledger
    buffer: LogBuffer | None

    @property
    def _ex(self) -> Execution:
        """This object as the `Execution` it is a part of (for the type checker)."""
        return cast("Execution", self)

    if TYPE_CHECKING:

        def set_state(self, tid: str, state: str, attempt: int = 0, **extra: Any) -> None: ...
        def cancel(self) -> None: ...
        def release_slot(self, unit: Unit) -> None: ...
        def _emit(self, event: Any) -> None: ...
        def _settle(self, finals: list[str], propagate_only: bool = False) -> None: ...
        def _release_final(self, unit: Unit) -> None: ...
        @property
        def is_done(self) -> bool: ...
        def _hand_slot_to_thread(
            self, unit: Unit, zombie: concurrent.futures.Future[Any]
        ) -> None: ...
        async def _wait_slot(self, unit: Unit) -> None: ...

    async def lifecycle(self, unit: Unit) -> None:
        spec = unit.task.spec
        attempt = 0
        try:
            while True:
                attempt += 1
                result = await run_attempt(self._ex, unit, attempt, unit.task.fn, "body")
                if unit.id in self.cancel_asked:
                    self._cancelled_after_body(unit, attempt)
                    return
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
                        self._ex, unit, attempt + 1, unit.task.fallback_fn, "fallback"
                    )
                    if unit.id in self.cancel_asked:
                        self._cancelled_after_body(unit, attempt + 1)
                        return
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
                refused = result.refusal if attempt < spec.max_attempts else None
                self._fail(
                    unit,
                    attempt,
                    # a retry_on that refused a retry there was left says so, in the error
                    # (the report, the JSON, the attempt's record) and the reason
                    error=f"{result.error} ({refused})" if refused else result.error,
                    traceback=result.traceback,
                    reason=refused if refused and not result.timed_out else result.reason,
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

    def _cancelled_after_body(self, unit: Unit, attempt: int) -> None:
        """`x` on a thread body: now that it returned, the task is cancelled (what it did is
        dropped, as for any cancelled task)."""
        self.cancel_asked.discard(unit.id)
        self._flush_logs()
        self.set_state(
            unit.id, "cancelled", attempt, reason="cancelled by user (its body ran to its end)"
        )
        self._release_final(unit)
        self._settle([unit.id])

    def _succeed(self, unit: Unit, attempt: int, result: Attempt, via_fallback: bool) -> None:
        self._flush_logs()
        if unit.parent is None and result.value is not None:
            # a task's return value is kept under its id, as an instance's is (in a list)
            if unit.id in result.writes:
                self._fail(
                    unit,
                    attempt,
                    error=f"ConflictError: task {unit.id!r} returned a value and also wrote the "
                    f"context key {unit.id!r}; the return value is kept under the task's id, so "
                    "write another key or return None",
                )
                return
            result.writes = {**result.writes, unit.id: result.value}
        if unit.parent is not None:
            conflict = self.ledger.claim_instance_keys(unit.parent, unit.id, result.writes)
        else:
            conflict = self.ledger.conflict(unit.id, result.writes)
        if conflict is not None:
            self._fail(unit, attempt, error=f"ConflictError: {conflict}")
            return
        if unit.parent is not None:  # an instance: its writes join its task's, at the end
            unit.writes = result.writes
            unit.value = result.value
        else:
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

    def loop_blocked(self, unit_id: str, attempt: int, seconds: float) -> None:
        """The watchdog saw this attempt's body hold the event loop: say so in its log."""
        if self.buffer is not None and not self.is_done:
            self.buffer.add(unit_id, attempt, "warning", blocked_message(seconds))
