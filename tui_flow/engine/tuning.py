"""The process-wide knobs a run turns, each with one owner that counts its users.

- The GC hold: while runs are active, the cyclic garbage collector leaves the objects that
  existed before alone (`gc.freeze()`). A run allocates many short-lived objects; every full
  collection would also walk everything the program already holds, a third of a no-op task's
  cost at 10,000 tasks. The last run to end hands them back (`gc.unfreeze()`).
- The switch interval: a thread waiting for the GIL asks for it only after
  `sys.getswitchinterval()` (5 ms by default) without being woken; a busy event loop lets go
  of the GIL briefly at every turn, which wakes the waiter and restarts its wait, so it never
  gets its turn. The store's writer thread and the app's screen (under a body spinning in a
  thread) need it, so while either is active the interval is at most `SWITCH_INTERVAL_S`;
  the last user puts back what was there.

Each `hold_*()` returns a release function; calling it more than once releases once.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable

SWITCH_INTERVAL_S = 0.001

_lock = threading.Lock()
_gc_users = 0
_switch_users = 0
_switch_before: float | None = None


def _once(release: Callable[[], None]) -> Callable[[], None]:
    done = False

    def once() -> None:
        nonlocal done
        if not done:
            done = True
            release()

    return once


def hold_gc() -> Callable[[], None]:
    """Freeze what the GC tracks now until the returned function is called (counted)."""
    global _gc_users
    with _lock:
        if _gc_users == 0:
            gc.freeze()
        _gc_users += 1

    def release() -> None:
        global _gc_users
        with _lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.unfreeze()

    return _once(release)


def hold_short_switch_interval() -> Callable[[], None]:
    """Lower the switch interval to at most `SWITCH_INTERVAL_S` until the returned function
    is called (counted; a lower interval someone set is left alone)."""
    global _switch_users, _switch_before
    with _lock:
        if _switch_users == 0:
            current = sys.getswitchinterval()
            if current > SWITCH_INTERVAL_S:
                _switch_before = current
                sys.setswitchinterval(SWITCH_INTERVAL_S)
        _switch_users += 1

    def release() -> None:
        global _switch_users, _switch_before
        with _lock:
            _switch_users -= 1
            if _switch_users == 0 and _switch_before is not None:
                sys.setswitchinterval(_switch_before)
                _switch_before = None

    return _once(release)
