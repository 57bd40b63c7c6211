"""Lanes: the few long-lived asyncio tasks that run task lifecycles one after another.

Starting an asyncio task for every task costs more than a no-op body itself (~6 us: the
task, a copy of the context, a trip through the loop's ready queue). A lane instead awaits
each lifecycle inline, and a lane whose unit ends takes the next ready unit at once, in the
same step. Lanes are made on demand (never more than units running at once plus those waiting
out a retry delay) and park, idle, until the scheduler hands them a unit.

The lanes share one slice of each turn of the loop: the first lane to end a unit in a turn
starts it (and has it end at the head of the next turn); once it is used up, every lane yields
after its current unit until then. (A slice per lane would let 16 busy lanes hold the loop for
32 ms: keys and store writes would wait that long.)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..context import _MISSING

if TYPE_CHECKING:
    from ..tasks import Task
    from .scheduler import Execution

_NO_WRITES: Mapping[str, Any] = MappingProxyType({})


class Unit:
    """Something that takes a slot: a task, or one instance of a map_over task."""

    __slots__ = (
        "holds_slot",
        "id",
        "index",
        "item",
        "lane",
        "parent",
        "task",
        "value",
        "writes",
    )

    def __init__(
        self,
        id: str,
        task: Task,
        parent: str | None = None,
        item: Any = _MISSING,
        index: int | None = None,
    ) -> None:
        self.id = id
        self.task = task
        self.parent = parent
        self.item = item
        self.index = index
        self.holds_slot = False
        self.lane: Lane | None = None  # the lane running its lifecycle, while it runs
        self.value: Any = None
        self.writes: Mapping[str, Any] = _NO_WRITES  # an instance's, once it completed


# the lanes together run lifecycles back to back for at most this long in one turn of the loop
# before they let it run other callbacks
SLICE_S = 0.002


class Lane:
    """One long-lived asyncio task running unit lifecycles."""

    __slots__ = ("cancels", "next", "task", "wake")

    def __init__(self, unit: Unit) -> None:
        self.next: Unit | None = unit
        self.task: asyncio.Task[None] | None = None
        self.wake: asyncio.Future[None] | None = None
        self.cancels = 0  # cancels the execution asked for (of the unit it runs)

    def cancel(self) -> None:
        assert self.task is not None
        self.cancels += 1
        self.task.cancel()

    @property
    def cancelled_from_outside(self) -> bool:
        """Cancelled by someone else than the execution (the loop shutting down)."""
        return self.task is not None and self.task.cancelling() > self.cancels


class Lanes:
    """The lanes of one execution, and the slice of each turn of the loop they share."""

    __slots__ = ("clock", "count", "ex", "free", "idle", "slice_armed", "slice_s", "slice_start")

    def __init__(self, ex: Execution, slice_s: float, clock: Callable[[], float]) -> None:
        self.ex = ex
        self.slice_s = slice_s
        self.clock = clock
        self.count = 0  # lanes made
        self.idle: list[Lane] = []  # lanes waiting for a unit
        self.free: Lane | None = None  # a lane whose unit is ending (see `freed`)
        self.slice_armed = False  # the lanes' share of this turn of the loop: begun, and when
        self.slice_start = 0.0

    def start(self, unit: Unit) -> None:
        """Hand a unit that holds a slot to a lane: the one whose unit just ended, an idle
        one, or a new one."""
        lane = self.free
        if lane is not None:
            self.free = None
            lane.next = unit
            return
        while self.idle:
            lane = self.idle.pop()
            if lane.wake is None or lane.wake.done():
                continue  # cancelled while idle: it has ended
            lane.next = unit
            lane.wake.set_result(None)
            return
        self._new(unit)

    def freed(self, unit: Unit) -> None:
        """`unit` reached its final state holding a slot: its lane is the first to be handed
        the next unit that gets a slot (it takes it once the lifecycle returns, without a
        trip through the loop)."""
        if unit.lane is not None:
            self.free = unit.lane

    def stop(self) -> None:
        """The run is over: idle lanes end."""
        for lane in self.idle:
            if lane.wake is not None and not lane.wake.done():
                lane.wake.set_result(None)
        self.idle.clear()

    def _new(self, unit: Unit) -> None:
        ex = self.ex
        assert ex.loop is not None
        lane = Lane(unit)
        self.count += 1
        lane.task = ex.loop.create_task(
            self._run(lane), name=f"tui-flow lane {self.count}", context=ex.context.copy()
        )

    async def _run(self, lane: Lane) -> None:
        ex = self.ex
        try:
            await self._loop(lane)
        except asyncio.CancelledError:
            # cancelled from outside (the loop is shutting down): the run ends with the lane
            unit, lane.next = lane.next, None
            ex.cancel()
            if unit is not None:
                ex.release_slot(unit)
            raise
        except BaseException as exc:  # a bug of the engine's own: the run ends, never waits
            ex.crash(exc, "the scheduler")

    async def _loop(self, lane: Lane) -> None:
        ex = self.ex
        loop = ex.loop
        assert loop is not None and lane.task is not None
        me = lane.task
        base = contextvars.copy_context()
        clock = self.clock
        state = ex.state
        while True:
            unit = lane.next
            if unit is None:
                if ex.is_done or ex.cancelled:
                    return
                lane.wake = loop.create_future()
                self.idle.append(lane)
                await lane.wake
                lane.wake = None
                continue
            lane.next = None
            if state[unit.id] != "pending":
                # cancelled after it was handed over, before it began: give its slot back
                ex.release_slot(unit)
                continue
            unit.lane = lane
            try:
                await ex.lifecycle(unit)
            finally:
                unit.lane = None
                if self.free is lane:
                    self.free = None
            if lane.cancels:
                # the cancels the execution asked for were meant for this unit alone. One
                # asked while the lane itself was running (by a subscriber or the body, on
                # this lane) is still pending if the body never waited after it: take it
                # here, or it would land in the next unit. Then the lane goes on.
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(0)
                for _ in range(lane.cancels):
                    me.uncancel()
                lane.cancels = 0
            if me.cancelling():
                raise asyncio.CancelledError
            if contextvars.copy_context() != base:
                # the body set a context variable and left it set: the next unit must not
                # see it (as it would not with a task of its own), so this lane ends
                if lane.next is not None:
                    self._new(lane.next)
                    lane.next = None
                return
            if lane.next is None:
                continue
            if not self.slice_armed:
                self.slice_armed = True
                self.slice_start = clock()
                loop.call_soon(self._end_slice)
            elif clock() - self.slice_start > self.slice_s:
                await asyncio.sleep(0)

    def _end_slice(self) -> None:
        self.slice_armed = False
