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

    def __init__(self) -> None:
        self.next: Unit | None = None
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
    """The lanes of one execution, and the slice of each turn of the loop they share.

    Lanes are made as they are needed, not one per slot: a lane that ends a unit takes the
    next ready one in the same step, so bodies that never wait run on one lane however high
    the concurrency cap. When ready units wait for a lane (`short`), a check at the next turn
    of the loop (`_spawn`) makes more only if every lane is held up inside a body (awaiting
    I/O, a thread, a worker process): as many again as there are, so a thousand waiting
    bodies have their lanes in about ten turns."""

    __slots__ = (
        "clock",
        "count",
        "ex",
        "free",
        "fresh",
        "idle",
        "pausing",
        "short",
        "slice_armed",
        "slice_s",
        "slice_start",
        "spawn_due",
    )

    def __init__(self, ex: Execution, slice_s: float, clock: Callable[[], float]) -> None:
        self.ex = ex
        self.slice_s = slice_s
        self.clock = clock
        self.count = 0  # lanes made
        self.idle: list[Lane] = []  # lanes waiting for a unit
        self.free: Lane | None = None  # a lane whose unit is ending (see `freed`)
        self.fresh = 0  # lanes made whose task has not begun yet
        self.pausing = 0  # lanes yielding the rest of a slice (they go on by themselves)
        self.short = False  # ready units wait for a lane
        self.spawn_due = False  # a `_spawn` check is scheduled
        self.slice_armed = False  # the lanes' share of this turn of the loop: begun, and when
        self.slice_start = 0.0

    def available(self) -> Lane | None:
        """A lane to hand a unit to now: the one whose unit just ended, else an idle one."""
        lane = self.free
        if lane is not None:
            self.free = None
            return lane
        while self.idle:
            lane = self.idle.pop()
            if lane.wake is not None and not lane.wake.done():
                return lane  # (one cancelled while idle has ended: passed over)
        return None

    def give(self, lane: Lane, unit: Unit) -> None:
        """Hand `unit` (which holds a slot) to `lane`, waking it if it is idle."""
        lane.next = unit
        if lane.wake is not None and not lane.wake.done():
            lane.wake.set_result(None)

    def wanted(self) -> None:
        """Ready units wait for a lane: look at the next turn of the loop whether to make more."""
        if not self.spawn_due:
            self.spawn_due = True
            loop = self.ex.loop
            assert loop is not None
            loop.call_soon(self._spawn)

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

    def _spawn(self) -> None:
        self.spawn_due = False
        ex = self.ex
        if not self.short or ex.is_done or ex.cancelled:
            return
        if self.idle or self.free is not None:
            ex._pump()  # a lane is free after all: hand it a unit
            return
        if self.fresh or self.pausing:
            return  # a lane that will take the waiting units by itself
        room = ex.cap - ex.running
        for _ in range(min(max(1, self.count), room, len(ex._ready))):
            self._new()
        ex._pump()

    def _new(self) -> None:
        """A new lane, idle until it is handed a unit."""
        ex = self.ex
        assert ex.loop is not None
        lane = Lane()
        lane.wake = ex.loop.create_future()
        self.idle.append(lane)
        self.count += 1
        self.fresh += 1
        lane.task = ex.loop.create_task(
            self._run(lane), name=f"tui-flow lane {self.count}", context=ex.context.copy()
        )

    async def _run(self, lane: Lane) -> None:
        ex = self.ex
        self.fresh -= 1
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
                if lane.wake is None or lane.wake.done():
                    lane.wake = loop.create_future()
                    self.idle.append(lane)
                    if self.short:
                        ex._pump()  # units wait for a lane: this one
                        if lane.next is not None:
                            continue
                await lane.wake
                lane.wake = None
                continue
            lane.next = None
            if state[unit.id] != "pending":
                # cancelled after it was handed over, before it began: give its slot back
                ex.release_slot(unit)
                continue
            unit.lane = lane
            if self.short:
                self.wanted()  # should this body wait, more lanes may be needed
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
                    replacement = self._replacement()
                    self.give(replacement, lane.next)
                    lane.next = None
                return
            if lane.next is None:
                continue
            if not self.slice_armed:
                self.slice_armed = True
                self.slice_start = clock()
                loop.call_soon(self._end_slice)
            elif clock() - self.slice_start > self.slice_s:
                self.pausing += 1
                try:
                    await asyncio.sleep(0)
                finally:
                    self.pausing -= 1

    def _replacement(self) -> Lane:
        self._new()
        return self.idle.pop()

    def _end_slice(self) -> None:
        self.slice_armed = False
