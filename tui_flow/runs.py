"""Starting a run: the store, the subscribers, the remote runner and the signals, in one place.

`run_headless` is what `tui-flow run`, `resume` and `rerun` do: open the store (refusing one
that cannot be written before anything runs), start the execution behind the store's start
gate (the run is on disk before its first body starts), print it, and end it cleanly whatever
happens: Ctrl-C, SIGTERM, a closed stdout, a body that never returns.

Signals (`Interrupts`): the first Ctrl-C cancels the run cleanly (exit 130). A second Ctrl-C,
SIGTERM or SIGHUP cancels it too, and if it has not ended `HARD_EXIT_S` later (a thread body
that never returns, an async body blocking the loop in C code), the process ends there and
then, the run marked interrupted in the store (exit 128 + the signal's number; 130 for Ctrl-C).
The handlers are plain `signal.signal` handlers, not the loop's: Python runs them in the main
thread between two bytecodes, so they work while a body holds the loop. A body found holding
the loop is stopped by raising `RunInterrupted` inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from .engine.scheduler import Execution, body_holding_loop
from .engine.watchdog import RunInterrupted
from .errors import BadInput
from .status import EXIT_CLOSED_PIPE, EXIT_INTERRUPTED, exit_code

HARD_EXIT_S = 1.5  # after SIGTERM/SIGHUP or a second Ctrl-C, the longest a clean end may take
SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


def err(msg: str) -> None:
    print(f"tui-flow: {msg}", file=sys.stderr)


async def open_store(db: str | None, *, enabled: bool = True) -> Any:
    """The run store (checked writable), or None when recording is off or not installed.
    Raises `StoreError` (a one-line message) for a database that cannot be used."""
    if not enabled:
        return None
    try:
        from .store.sqlite import RunStore
    except ImportError:
        return None
    return await RunStore.open(db)


EXECUTORS = ("local", "dask")


def executor_name(executor: str | None) -> str:
    """Where sync bodies run: `executor` (--executor), else $TUI_FLOW_EXECUTOR, else local."""
    name = executor or os.environ.get("TUI_FLOW_EXECUTOR") or "local"
    if name not in EXECUTORS:
        allowed = " or ".join(EXECUTORS)
        raise BadInput(f"$TUI_FLOW_EXECUTOR must be {allowed}, not {name!r}")
    return name


def remote_runner(executor: str | None, scheduler: str | None) -> Any:
    """The remote runner asked for (None for local)."""
    if executor_name(executor) == "local":
        return None
    from .engine.dask_runner import make_dask_runner

    return make_dask_runner(scheduler)


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
    except Exception:
        return None

    def restore() -> None:
        # leave the alternate screen, show the cursor, stop mouse reports, then the modes
        os.write(sys.__stdout__.fileno(), b"\x1b[?1049l\x1b[?25h\x1b[?1000l\x1b[?1003l\x1b[?1006l")
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    return restore


async def run_headless(
    args: Any,
    workflow: Any,
    *,
    context: dict[str, Any] | None = None,
    reuse: dict[str, dict[str, Any]] | None = None,
    resumed_from: str | None = None,
    run_id: str | None = None,
    store: Any = None,
) -> int:
    """Run with console output (or JSON); return the exit code."""
    from .console import ConsoleReporter, print_report, printed

    as_json = getattr(args, "json", False)
    plain = True if getattr(args, "plain", False) else None
    subscribers: list[Any] = []
    reporter = None
    started: list[Execution] = []  # the run, once made (a closed stdout cancels it)

    def stdout_closed() -> None:
        for ex in started:
            asyncio.get_running_loop().call_soon(ex.cancel)

    if not as_json:
        reporter = ConsoleReporter(
            plain=plain, logs=not getattr(args, "no_logs", False), on_closed=stdout_closed
        )
        subscribers.append(reporter)
    own_store = store is None
    # the remote runner first: a bad $TUI_FLOW_EXECUTOR leaves no store open
    remote = remote_runner(getattr(args, "executor", None), getattr(args, "scheduler", None))
    if store is None:
        store = await open_store(
            getattr(args, "db", None), enabled=not getattr(args, "no_store", False)
        )
    interrupts: Interrupts | None = None
    try:
        if remote is not None and hasattr(remote, "start"):
            await remote.start()  # connect before the run, so no attempt pays for it
        execution = Execution(
            workflow,
            context or {},
            max_concurrency=getattr(args, "max_concurrency", None),
            subscribers=subscribers,
            reuse=reuse,
            resumed_from=resumed_from,
            run_id=run_id,
            remote=remote,
        )
        started.append(execution)
        if store is not None:
            execution.subscribe(store.recorder(execution.view))
        with Interrupts(
            lambda _: execution.cancel(), execution=lambda: execution, store=lambda: store
        ) as interrupts:
            execution.start(gate=store.flush() if store is not None else None)
            result = await execution.wait()
    finally:
        if store is not None and own_store:
            await store.close()
        if remote is not None and hasattr(remote, "close"):
            await remote.close()
    if reporter is not None:
        reporter.flush()  # whatever the last events wrote goes before the report
    if as_json:
        line = json.dumps(result.to_json(), default=str) + "\n"
        shown = printed(lambda: sys.stdout.write(line))
    else:
        shown = not (reporter is not None and reporter.closed) and printed(
            lambda: print_report(
                result.report, result.workflow, result.status, result.run_id, plain=plain
            )
        )
    if result.error:
        err(f"run {result.run_id} {result.status}: {result.error}")
    for msg in result.subscriber_errors:
        err(f"warning: {msg}")
    if interrupts is not None and interrupts.exit_code is not None:
        return interrupts.exit_code
    if not shown:
        return EXIT_CLOSED_PIPE  # as a process killed by SIGPIPE would
    return exit_code(result.status)
