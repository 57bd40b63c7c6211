"""The headless console: the same lines Rich printed (plain and styled), written in batches,
safe on a terminal, and quiet when the pipe it writes to is closed."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import re
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from tui_flow.console import Clock, ConsoleReporter
from tui_flow.engine.events import (
    LogLine,
    RetryScheduled,
    RunFinished,
    RunStarted,
    TaskInfo,
    TaskLogs,
    TasksAdded,
    TaskStateChanged,
)
from tui_flow.status import fmt_seconds, glyph, style

ROOT = Path(__file__).resolve().parent.parent
AT = 1796186443.5710485


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class CountingOut(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def events(texts: list[str], error: str = "KeyError: 'k'") -> list[Any]:
    tasks = [TaskInfo(id="extract", retry_attempts=2), TaskInfo(id="a_rather_long_task_name")]
    lines = [
        LogLine(task_id="extract", attempt=1, at=AT + i * 0.00013, level=lv, text=t)
        for i, t in enumerate(texts)
        for lv in ("info", "error")
    ]
    return [
        RunStarted(run_id="r1", at=AT, workflow="wf", tasks=tasks, max_concurrency=4),
        TaskStateChanged(run_id="r1", at=AT + 0.0015, task_id="extract", state="running"),
        TaskLogs(run_id="r1", at=AT + 0.002, lines=lines),
        RetryScheduled(
            *(),
            run_id="r1",
            at=AT + 0.5,
            task_id="extract",
            attempt=1,
            max_attempts=3,
            next_attempt=2,
            error="ValueError: x",
            delay_s=1.0,
        ),
        TaskStateChanged(
            run_id="r1", at=AT + 1.5, task_id="extract", state="running", attempt=2, max_attempts=3
        ),
        TaskStateChanged(
            run_id="r1", at=AT + 1.6, task_id="extract", state="failed", attempt=2, error=error
        ),
        TaskStateChanged(
            *(),
            run_id="r1",
            at=AT + 1.6,
            task_id="a_rather_long_task_name",
            state="skipped",
            reason="upstream failed",
        ),
        TasksAdded(run_id="r1", at=AT + 1.7, parent="extract", tasks=[TaskInfo(id="extract[0]")]),
        TaskStateChanged(
            *(),
            run_id="r1",
            at=AT + 1.8,
            task_id="extract[0]",
            state="completed",
            attempt=1,
            via_fallback=True,
        ),
        RunFinished(run_id="r1", at=AT + 2.0, status="failed", report={}),
    ]


def rich_reference(evs: list[Any], out: io.StringIO, plain: bool) -> None:
    """What the console printed when each line went through Rich (before it was rebuilt)."""
    console = Console(
        file=out, highlight=False, no_color=plain, force_terminal=not plain, soft_wrap=True
    )

    def clock(at: float) -> str:
        return dt.datetime.fromtimestamp(at).strftime("%H:%M:%S.%f")[:-3]

    def line(at: float, status: str, text: str) -> None:
        t = Text(f"{clock(at)}  ")
        t.append(f"{glyph(status)} {status:<10}", style=style(status))
        t.append(" " + text)
        console.print(t)

    width = 12
    for e in evs:
        if e.kind == "run_started":
            width = max([12, *(len(t.id) for t in e.tasks)])
            console.print(
                Text(
                    f"{clock(e.at)}  run {e.run_id} of {e.workflow!r}: {len(e.tasks)} tasks, "
                    f"max concurrency {e.max_concurrency}",
                    style="bold",
                )
            )
        elif e.kind == "task_state":
            detail = ""
            if e.state == "running" and e.attempt > 1:
                detail = f"attempt {e.attempt}/{e.max_attempts}"
            elif e.state == "completed":
                detail = "via fallback" if e.via_fallback else ""
            elif e.state in ("failed", "skipped"):
                detail = e.error or e.reason or ""
            line(e.at, e.state, f"{e.task_id.ljust(width)} {detail}".rstrip())
        elif e.kind == "retry_scheduled":
            line(
                e.at,
                "retrying",
                f"{e.task_id.ljust(width)} attempt {e.attempt}/{e.max_attempts} failed: "
                f"{e.error}; retry in {fmt_seconds(e.delay_s)}",
            )
        elif e.kind == "task_logs":
            for ln in e.lines:
                t = Text(f"{clock(ln.at)}  ")
                t.append(f"  │ {ln.task_id}: ", style="dim")
                t.append(ln.text, style="red" if ln.level in ("error", "critical") else "")
                console.print(t)
        elif e.kind == "tasks_added":
            width = max([width, *(len(t.id) for t in e.tasks)])
            console.print(Text(f"{clock(e.at)}  {e.parent}: {len(e.tasks)} instances", style="dim"))


# text Rich prints as it is: no control characters (Rich drops some, expands tabs)
printable = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(printable, max_size=5), error=printable)
def test_the_lines_are_the_ones_rich_printed(texts: list[str], error: str) -> None:
    evs = events(texts, error)
    for plain, Out in ((True, io.StringIO), (False, FakeTerminal)):
        expected, got = Out(), Out()
        rich_reference(evs, expected, plain)
        reporter = ConsoleReporter(got, plain=plain)
        for e in evs:
            reporter(e)
        assert got.getvalue() == expected.getvalue()


@settings(max_examples=300, deadline=None)
@given(
    at=st.one_of(
        st.floats(min_value=0, max_value=4e9),
        st.integers(0, 4_000_000_000).map(lambda s: s + 0.9999995),
        st.integers(0, 4_000_000_000).map(lambda s: s + 0.0009995),
    )
)
def test_the_clock_reads_as_datetime_does(at: float) -> None:
    clock = Clock()
    expected = dt.datetime.fromtimestamp(at).strftime("%H:%M:%S.%f")[:-3]
    assert clock(at) == expected
    assert clock(at) == expected  # again, from what it remembers of that second
    assert clock(at + 1e-4) == dt.datetime.fromtimestamp(at + 1e-4).strftime("%H:%M:%S.%f")[:-3]


NASTY = "\x1b[2J\x1b[H wiped\r bell\x07 \x1b[31mred\x1b[0m\ttab"


def test_on_a_terminal_a_task_cannot_move_the_cursor_or_clear_the_screen() -> None:
    out = FakeTerminal()
    reporter = ConsoleReporter(out)
    for e in events([NASTY], error="boom \x1b[2J"):
        reporter(e)
    text = out.getvalue()
    assert "␛[2J␛[H wiped bell␇ red\ttab" in text
    assert "boom ␛[2J" in text
    # the only escape sequences left are the console's own colours
    assert re.sub(r"\x1b\[[0-9;]*m", "", text).count("\x1b") == 0
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text.replace("\x1b", ""))
    plain = FakeTerminal()
    reporter = ConsoleReporter(plain, plain=True)  # --plain on a terminal: safe too
    for e in events([NASTY]):
        reporter(e)
    assert "\x1b" not in plain.getvalue() and "␛[2J" in plain.getvalue()


def test_to_a_pipe_task_text_is_written_as_it_is() -> None:
    out = io.StringIO()
    reporter = ConsoleReporter(out)
    for e in events([NASTY]):
        reporter(e)
    assert f"  │ extract: {NASTY}\n" in out.getvalue()


async def test_the_events_of_one_turn_of_the_loop_are_one_write() -> None:
    out = CountingOut()
    reporter = ConsoleReporter(out, plain=True)
    evs = events(["a", "b"])
    for e in evs[:-1]:
        reporter(e)
    assert out.writes == 0  # nothing yet: written when the loop comes round
    await asyncio.sleep(0)  # the loop's next turn: the flush is a call_soon (ok)
    assert out.writes == 1
    assert out.getvalue().count("\n") == 8 + 4  # 8 state lines, 4 log lines
    reporter(evs[-1])  # the run's end: written at once
    assert out.writes == 1  # (nothing was pending)
    reporter(evs[1])
    reporter(evs[-1])
    assert out.writes == 2


def test_a_closed_pipe_says_so_once_and_output_stops_quietly() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # the reader went away (`| head`)
    out = os.fdopen(write_fd, "w")
    calls: list[int] = []
    reporter = ConsoleReporter(out, plain=True, on_closed=lambda: calls.append(1))
    assert not reporter.closed
    for e in events(["x" * 100] * 50):
        reporter(e)
    assert reporter.closed
    assert calls == [1]
    for e in events(["more"]):
        reporter(e)  # dropped; no second call, no error
    assert calls == [1]
    out.write("later writes to the stream do not fail either\n")
    out.flush()
    out.close()


FLOOD = """
from tui_flow import task, Context

@task
def flood(ctx: Context) -> None:
    for i in range(20_000):
        print(f"line {i} of the flood")
"""
