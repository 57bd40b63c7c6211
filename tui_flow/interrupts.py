"""Signals while runs go on, headless or in the app.

The first Ctrl-C cancels the run cleanly (exit 130). A second Ctrl-C, SIGTERM or SIGHUP cancel
it too, and if it has not ended `HARD_EXIT_S` later (a thread body that never returns, an async
body blocking the loop in C code), the process ends there and then, the run marked interrupted
in the store (exit 128 + the signal's number; 130 for Ctrl-C). The handlers are plain
`signal.signal` handlers, not the loop's: Python runs them in the main thread between two
bytecodes, so they work while a body holds the loop. A body found holding the loop is stopped
by raising `RunInterrupted` inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from .engine.attempts import body_holding_loop
from .engine.scheduler import Execution
from .engine.watchdog import RunInterrupted
from .status import EXIT_INTERRUPTED

HARD_EXIT_S = 1.5  # after SIGTERM/SIGHUP or a second Ctrl-C, the longest a clean end may take
SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


class Interrupts:
    """Signal handling while runs go on (see the module's docstring). `stop(signum)` is called
    on the loop for every signal (cancel the run; the app also quits); `execution()` and
    `store()` give the run going on now and its store; `before_exit()` runs just before a
    hard exit (the app puts the terminal back)."""

    def __init__(
        self,
        stop: Callable[[int], None],
        *,
        execution: Callable[[], Execution | None],
        store: Callable[[], Any] = lambda: None,
        before_exit: Callable[[], None] | None = None,
    ) -> None:
        self.stop = stop
        self.execution = execution
        self.store = store
        self.before_exit = before_exit
        self.loop = asyncio.get_running_loop()
        self.received: list[int] = []
        self._saved: dict[int, Any] = {}
        self._timer: threading.Timer | None = None

    @property
    def exit_code(self) -> int | None:
        """What the process should exit with because of a signal (None: no signal came)."""
        if not self.received:
            return None
        first = self.received[0]
        return EXIT_INTERRUPTED if first == signal.SIGINT else 128 + first

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                with contextlib.suppress(ValueError, OSError):
                    self._saved[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:  # the run ended in time after all
            self._timer.cancel()
        for sig, previous in self._saved.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, previous)
        self._saved.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        with contextlib.suppress(RuntimeError):  # the loop has closed: the run is over
            self.loop.call_soon_threadsafe(self.stop, signum)
        hard = signum != signal.SIGINT or self.received.count(signal.SIGINT) > 1
        if hard and self._timer is None:
            self._timer = threading.Timer(HARD_EXIT_S, self._hard_exit, (signum,))
            self._timer.daemon = True
            self._timer.start()
        found = body_holding_loop(frame)
        if found is not None and found[0] is self.execution():
            raise RunInterrupted  # a body holds the loop: stop it where it is

    def _hard_exit(self, signum: int) -> None:
        """The run did not end in time after a signal: end the process now (in the timer's
        thread; nothing here waits for the main thread, which may be stuck)."""
        execution, store = self.execution(), self.store()
        name = signal.Signals(signum).name
        why = f"ended by {name}: the run did not stop within {HARD_EXIT_S:g} s"
        tail = ""
        if execution is not None and store is not None and not execution.is_done:
            with contextlib.suppress(Exception):
                if store.mark_interrupted_now(execution.run_id, why):
                    tail = f"; tui-flow resume {execution.run_id} continues it"
        if self.before_exit is not None:
            with contextlib.suppress(Exception):
                self.before_exit()
        with contextlib.suppress(OSError):
            os.write(2, f"\ntui-flow: {why} (a task body does not return){tail}\n".encode())
        os._exit(self.exit_code or EXIT_INTERRUPTED)


def terminal_restorer() -> Callable[[], None] | None:
    """Call before a full-screen app takes the terminal: a function that puts it back as it
    is now (modes, alternate screen, cursor, mouse) when the process must end at once."""
    try:
        import termios

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        fd_out = (sys.__stdout__ or sys.stdout).fileno()
    except Exception:
        return None

    def restore() -> None:
        # leave the alternate screen, show the cursor, stop mouse reports, then the modes
        os.write(fd_out, b"\x1b[?1049l\x1b[?25h\x1b[?1000l\x1b[?1003l\x1b[?1006l")
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    return restore
