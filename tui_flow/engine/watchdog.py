"""The loop watchdog: notices a task body that blocks the event loop.

An `async def` body that computes without awaiting (or calls `time.sleep`, or a blocking
client) holds the loop: nothing else runs, its `timeout_s` cannot fire, keys and the store
wait. While runs with bodies on the loop go on, the loop beats every `BEAT_S`; a thread
watches the beat. When the loop has not beaten for `BLOCKED_S`, the thread pokes the loop's
thread with a signal. The signal's handler runs *in* the blocking code (Python runs handlers
in the main thread between two bytecodes), so it can look at its own stack, safely: the
scheduler says whether a body of one of its attempts is what runs there (`locate`). If so, the
block is noted against that attempt (reported on the task when it ends: "blocked the event
loop for 4.2 s"), and a body past its `timeout_s` is stopped by raising `BodyOverran` inside
it, as a timeout would have.

Signals reach only the main thread, so the watchdog runs only for a loop on the main thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

BEAT_S = 0.1
BLOCKED_S = 1.0  # a body that holds the loop this long is reported on its task
POKE_EVERY_S = 0.25  # while the loop stays blocked, how often the thread looks again
SIGNAL = getattr(signal, "SIGUSR2", None)


class BodyOverran(Exception):
    """Raised inside a body that blocked the loop past its task's `timeout_s`."""


class RunInterrupted(BaseException):
    """Raised inside a body that held the loop when a signal asked to stop the run (it is
    cancelled, not failed: see `Execution._attempt`)."""


@dataclass
class Blocking:
    """A body found holding the loop: whose attempt, since when (monotonic), its deadline."""

    owner: Any  # the Execution
    unit_id: str
    attempt: int
    since: float
    deadline: float | None  # monotonic time past which the body is stopped
    token: object  # identifies the attempt (the scheduler's attempt record)


Locate = Callable[[FrameType | None], tuple[Any, str, int, float, float | None, object] | None]


class Watchdog:
    """One per event loop on the main thread; shared by the runs on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, locate: Locate) -> None:
        self.loop = loop
        self.locate = locate
        self.owners: set[Any] = set()
        self.last_beat = time.monotonic()
        self.blocking: Blocking | None = None
        self._poked = False
        self._stop = threading.Event()
        # held while the thread pokes and while the handler is put back: a poke never lands
        # after the handler is gone (SIGUSR2's default action ends the process)
        self._poking = threading.Lock()
        self._thread: threading.Thread | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._previous: Any = None

    # -- on the loop ---------------------------------------------------------------------------

    def add(self, owner: Any) -> None:
        self.owners.add(owner)
        if self._thread is None:
            self._start()

    def remove(self, owner: Any) -> None:
        self.owners.discard(owner)
        if not self.owners and self._thread is not None:
            self._shut()

    def take(self, owner: Any, unit_id: str, attempt: int) -> float | None:
        """How long the attempt's body blocked the loop (None: it did not), once."""
        b = self.blocking
        if b is None or b.owner is not owner or b.unit_id != unit_id or b.attempt != attempt:
            return None
        self.blocking = None
        return time.monotonic() - b.since

    def _start(self) -> None:
        assert SIGNAL is not None
        self._previous = signal.signal(SIGNAL, self._on_signal)
        self._stop.clear()
        self.last_beat = time.monotonic()
        self._timer = self.loop.call_later(BEAT_S, self._beat)
        self._thread = threading.Thread(target=self._watch, name="tui-flow watchdog", daemon=True)
        self._thread.start()

    def _shut(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._thread = None
        # a poke in flight is delivered, to our handler, before this thread gets the lock (a
        # signal sent to a thread blocked in a system call lands when the call returns)
        with self._poking:
            self._stop.set()
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(SIGNAL, self._previous or signal.SIG_DFL)  # type: ignore[arg-type]
        _watchdogs.pop(self.loop, None)

    def _beat(self) -> None:
        self.last_beat = time.monotonic()
        b = self.blocking
        if b is not None and b.owner in self.owners:
            # the body awaited at last and the loop runs again: say so on its task now
            self.blocking = None
            b.owner.loop_blocked(b.unit_id, b.attempt, self.last_beat - b.since)
        self._timer = self.loop.call_later(BEAT_S, self._beat)

    # -- in the watching thread ----------------------------------------------------------------

    def _watch(self) -> None:
        stop = self._stop
        pause = BEAT_S
        while not stop.wait(pause):
            stalled = time.monotonic() - self.last_beat
            if stalled < BLOCKED_S:
                pause = BEAT_S
                continue
            with self._poking:
                if stop.is_set():
                    return
                self._poked = True
                with contextlib.suppress(Exception):
                    signal.pthread_kill(threading.main_thread().ident, SIGNAL)  # type: ignore[arg-type]
            pause = POKE_EVERY_S

    # -- in the loop's (main) thread, inside whatever holds it ---------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self._poked:  # not ours: hand it to whoever had the signal before
            if callable(self._previous):
                self._previous(signum, frame)
            return
        self._poked = False
        found = self.locate(frame)
        if found is None:
            return  # the loop is held by something else than a body (or not held any more)
        owner, unit_id, attempt, began, deadline, token = found
        b = self.blocking
        if b is None or b.token is not token:
            since = max(self.last_beat, began)
            b = self.blocking = Blocking(owner, unit_id, attempt, since, deadline, token)
        if deadline is not None and time.monotonic() > deadline:
            raise BodyOverran


_watchdogs: dict[asyncio.AbstractEventLoop, Watchdog] = {}


def watchdog_for(loop: asyncio.AbstractEventLoop, locate: Locate) -> Watchdog | None:
    """The watchdog of `loop`, made on first use; None where it cannot work (the loop is not
    on the main thread, or the platform has no SIGUSR2)."""
    if SIGNAL is None or threading.current_thread() is not threading.main_thread():
        return None
    dog = _watchdogs.get(loop)
    if dog is None:
        dog = _watchdogs[loop] = Watchdog(loop, locate)
    return dog
