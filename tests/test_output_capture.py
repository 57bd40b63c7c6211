"""Nothing a body prints is lost: not even while worker processes start beside it."""

from __future__ import annotations

import asyncio
import io
import sys

import pytest

from tui_flow import load
from tui_flow.engine import Execution, TaskLogs, runners
from tui_flow.engine.logs import capture

LIMIT = 30  # seconds: a guard against a hung test, never reached when the code is right

CHATTER_FLOW = """
import threading
from tui_flow import task, Context

stop = threading.Event()
printing = threading.Event()
go = threading.Event()

@task
def chatter(ctx: Context) -> None:
    i = 0
    while not stop.is_set():
        print(f"chatter {i}")
        i += 1
        printing.set()
    ctx.set("printed", i)

@task
def gate(ctx: Context) -> None:
    go.wait(30)

@task(runner="process", dependencies=[gate])
def p0(ctx: Context) -> None:
    print("from p0")

@task(runner="process", dependencies=[gate])
def p1(ctx: Context) -> None:
    print("from p1")

@task(runner="process", dependencies=[gate])
def p2(ctx: Context) -> None:
    print("from p2")
"""


class WatchedPool(runners.ProcessPool):
    """A pool that says when all its workers have started."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.all_started = asyncio.Event()

    def _wake(self) -> None:
        super()._wake()
        if len(self._idle) >= self.size:
            self.all_started.set()


async def test_a_print_while_worker_processes_start_reaches_the_task_log(
    tmp_path, monkeypatch, capfd
):
    flow = tmp_path / "chatter.py"
    flow.write_text(CHATTER_FLOW)
    wf = load(flow).workflow()
    names = wf.tasks["chatter"].fn.__globals__
    pool = WatchedPool(3)
    monkeypatch.setattr(runners, "_pool", pool)
    lines: list[tuple[str, str]] = []

    def on_event(e: object) -> None:
        if isinstance(e, TaskLogs):
            lines.extend((ln.task_id, ln.text) for ln in e.lines)

    capfd.readouterr()
    execution = Execution(wf, {}, max_concurrency=5, subscribers=[on_event])
    try:
        execution.start()
        # the run warms the pool (3 process tasks) while chatter prints in a tight loop
        assert await asyncio.to_thread(names["printing"].wait, LIMIT)
        await asyncio.wait_for(pool.all_started.wait(), LIMIT)
        names["stop"].set()
        names["go"].set()
        result = await asyncio.wait_for(execution.wait(), LIMIT)
    finally:
        names["stop"].set()
        names["go"].set()
        pool.shutdown()
    assert result.status == "completed", result.tasks
    assert pool.workers == 0
    printed = result.context["printed"]
    chatter = [text for tid, text in lines if tid == "chatter"]
    assert chatter == [f"chatter {i}" for i in range(printed)]
    for i in range(3):
        assert (f"p{i}", f"from p{i}") in lines
    out, err = capfd.readouterr()
    assert "chatter" not in out and "chatter" not in err


class AppCapture:
    """What a full-screen app (Textual) puts on sys.stderr: text goes to the app, and its
    fileno is -1."""

    def __init__(self) -> None:
        self.text: list[str] = []

    def write(self, text: str) -> int:
        self.text.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return -1


def test_helper_processes_start_while_an_app_holds_the_streams(monkeypatch):
    """multiprocessing passes sys.stderr's descriptor to the resource tracker it starts; the
    task-output proxy over an app's capture must not hand it -1 (the streams are no longer
    swapped for the real ones around a start)."""
    from multiprocessing import resource_tracker

    monkeypatch.setattr(sys, "stderr", AppCapture())
    capture.install()
    try:
        with pytest.raises(io.UnsupportedOperation):
            sys.stderr.fileno()
        tracker = resource_tracker.ResourceTracker()
        tracker.ensure_running()  # raised "bad value(s) in fds_to_keep" with fileno -1
        assert tracker._pid is not None
        tracker._stop()
    finally:
        capture.uninstall()


def test_a_thread_printing_while_capture_comes_and_goes_does_not_crash(capfd) -> None:
    """print() holds a borrowed reference to sys.stdout while it writes: a proxy taken away
    (a run ending) while a body outlives its run and prints must stay alive."""
    import threading

    from tui_flow.engine.logs import capture

    stop = threading.Event()
    printed = 0

    def body() -> None:
        nonlocal printed
        while not stop.is_set():
            print("outlived its run", "and printed", sep=" ")
            printed += 1

    thread = threading.Thread(target=body)
    capture.install()
    thread.start()
    try:
        for _ in range(300):  # runs ending and starting while the body prints
            capture.uninstall()
            capture.install()
    finally:
        capture.uninstall()
        stop.set()
        thread.join()
    assert printed > 0 and "outlived its run and printed" in capfd.readouterr().out
