"""Headless output: a line per state change and retry, task logs, then the report.

Plain text when stdout is not a TTY or with `--plain`; on a terminal, the same lines with the
ANSI codes Rich would give their styles (none of the colours with NO_COLOR). Statuses always
carry a glyph and a word, so nothing depends on colour. The lines of the run log are built as
strings and written in batches (a task may print a million lines; Rich's `print` per line
managed ~5,000 a second); the report at the end is drawn by Rich. On a terminal, what a task
wrote is shown through `visible()` (its escape codes cannot move the cursor or clear the
screen); to a pipe or a file it is written as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import heapq
import io
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .engine.events import (
    Event,
    RetryScheduled,
    RunFinished,
    RunStarted,
    TaskLogs,
    TasksAdded,
    TaskStateChanged,
)
from .engine.report import Report, TaskRow
from .safe_text import visible
from .status import fmt_seconds, glyph, label, style

# flushes run outside any task's context: were `out` a task-output proxy, its text must not
# land in the log of the task whose event was being handled
_NO_TASK = contextvars.Context()


_MILLIS = tuple(f"{i:03d}" for i in range(1000))


class Clock:
    """`HH:MM:SS.mmm` of a timestamp, in local time, exactly as
    `datetime.fromtimestamp(at).strftime("%H:%M:%S.%f")[:-3]` has it (microseconds rounded
    half to even, then cut to milliseconds); the hours, minutes and seconds are worked out
    once per second, so a flood of lines costs little."""

    __slots__ = ("_head", "_second")

    def __init__(self) -> None:
        self._second = math.inf
        self._head = ""

    def __call__(self, at: float) -> str:
        frac = at - self._second  # exact: both are within the same second
        if 0.0 <= frac < 1.0:
            us = round(frac * 1e6)
            if us < 1_000_000:
                return self._head + _MILLIS[us // 1000]
        frac, whole = math.modf(at)
        us = round(frac * 1e6)
        if us >= 1_000_000:
            us -= 1_000_000
            whole += 1.0
        elif us < 0:
            us += 1_000_000
            whole -= 1.0
        self._head = time.strftime("%H:%M:%S.", time.localtime(whole))
        self._second = whole
        return self._head + _MILLIS[us // 1000]


def _is_terminal(out: TextIO) -> bool:
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class TextOut:
    """Preformatted text to a stream: lines are built as strings and written in batches.

    - `plain`: no styles (not a terminal, `--plain`); otherwise a style is the few ANSI codes
      Rich would write for it on this terminal (NO_COLOR and the colour system honoured).
    - `safe`: the stream is a terminal, so task text goes through `visible()` first (no escape
      sequence of a task reaches it). To a pipe or a file, task text is written as it is.
    - A closed pipe (EPIPE, e.g. `tui-flow run ... | head`) is not an error: `closed` becomes
      True, `on_closed` (if given) is called once, the stream's descriptor is pointed at
      /dev/null (so nothing later, not even the interpreter's flush at exit, fails on it),
      and every later write is dropped.
    """

    def __init__(
        self,
        out: TextIO | None = None,
        *,
        plain: bool | None = None,
        on_closed: Callable[[], None] | None = None,
    ) -> None:
        self.out = out or sys.stdout
        tty = _is_terminal(self.out)
        self.plain = (not tty) if plain is None else plain
        self.safe = tty
        self.on_closed = on_closed
        self.closed = False
        self.console = Console(
            file=self.out,
            highlight=False,
            no_color=True if self.plain else None,  # None: Rich honours NO_COLOR
            force_terminal=not self.plain,
            soft_wrap=True,
        )
        self._codes: dict[str, tuple[str, str]] = {}

    def codes(self, style_name: str) -> tuple[str, str]:
        """The ANSI codes that start and end `style_name` here ('' and '' in plain mode)."""
        found = self._codes.get(style_name)
        if found is None:
            found = ("", "")
            if style_name and not self.plain:
                with self.console.capture() as cap:
                    self.console.print(Text("\ue000", style=style_name), end="")
                head, _, tail = cap.get().partition("\ue000")
                found = (head, tail)
            self._codes[style_name] = found
        return found

    def styled(self, text: str, style_name: str) -> str:
        """`text` in `style_name` (as Rich prints a styled Text: nothing when empty)."""
        if not text:
            return text
        head, tail = self.codes(style_name)
        return f"{head}{text}{tail}"

    def user(self, text: str) -> str:
        """Text a task or a user wrote, as it may be shown here (see `safe`)."""
        return visible(text) if self.safe else text

    def write(self, text: str) -> None:
        """Write and flush (one system call for the lot); a closed pipe ends output."""
        if self.closed or not text:
            return
        try:
            self.out.write(text)
            self.out.flush()
        except OSError as exc:
            if not is_closed_pipe(exc):
                raise
            self._pipe_closed()

    def _pipe_closed(self) -> None:
        self.closed = True
        _silence(self.out)
        if self.on_closed is not None:
            self.on_closed()


def _silence(out: TextIO) -> None:
    """Point a closed pipe's descriptor at /dev/null: nothing later (not even the
    interpreter's flush at exit) fails on it."""
    with contextlib.suppress(Exception):
        fd = out.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


def is_closed_pipe(exc: BaseException) -> bool:
    return isinstance(exc, BrokenPipeError) or (
        isinstance(exc, OSError) and exc.errno == errno.EPIPE
    )


def printed(render: Callable[[], object], out: TextIO | None = None) -> bool:
    """Run `render` (it prints to `out`, stdout by default) and flush. A closed pipe ends
    the printing quietly (False), no traceback."""
    out = out or sys.stdout
    try:
        render()
        out.flush()
    except OSError as exc:
        if not is_closed_pipe(exc):
            raise
        _silence(out)
        return False
    return True


class ConsoleReporter:
    """An event subscriber that prints a readable run log.

    Each event becomes preformatted text (see `TextOut`); what the events of one turn of the
    event loop produce is written at once, in one write (a run's end is written at once).
    Called without a running loop, each event is written as it comes.

    When the output is a pipe that was closed, `closed` becomes True and `on_closed()` is
    called once (the caller may cancel the run then); output stops quietly, no traceback.
    """

    def __init__(
        self,
        out: TextIO | None = None,
        *,
        plain: bool | None = None,
        logs: bool = True,
        on_closed: Callable[[], None] | None = None,
    ) -> None:
        self.text = TextOut(out, plain=plain, on_closed=on_closed)
        self.out = self.text.out
        self.plain = self.text.plain
        self.console = self.text.console
        self.logs = logs
        self.width = 12
        self.max_attempts: dict[str, int] = {}
        self._clock = Clock()
        self._pending: list[str] = []
        self._scheduled = False
        self._prefixes: dict[str, str] = {}  # task id -> the styled `  │ id: ` of its lines
        self._red = self.text.codes("red")

    @property
    def closed(self) -> bool:
        """The output is a closed pipe: nothing more is written."""
        return self.text.closed

    def flush(self) -> None:
        """Write what the events so far produced."""
        self._scheduled = False
        if self._pending:
            chunk = "".join(self._pending)
            self._pending = []
            self.text.write(chunk)

    def _emit(self, text: str) -> None:
        self._pending.append(text)
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush, context=_NO_TASK)

    def _line(self, at: float, status: str, text: str) -> None:
        mark = self.text.styled(f"{glyph(status)} {status:<10}", style(status))
        self._emit(f"{self._clock(at)}  {mark} {text}\n")

    def _log_lines(self, lines: list[Any]) -> None:
        clock = self._clock
        prefixes = self._prefixes
        user = self.text.user if self.text.safe else None
        red_head, red_tail = self._red
        out = []
        for ln in lines:
            tid = ln.task_id
            prefix = prefixes.get(tid)
            if prefix is None:
                shown = self.text.user(tid)
                prefix = prefixes[tid] = self.text.styled(f"  │ {shown}: ", "dim")
            text = ln.text if user is None else user(ln.text)
            if text and ln.level in ("error", "critical"):
                text = f"{red_head}{text}{red_tail}"
            if ln.logger is not None:  # a `logging` record: its logger, as a prefix
                text = self.text.styled(self.text.user(ln.logger) + ":", "dim") + " " + text
            out.append(f"{clock(ln.at)}  {prefix}{text}\n")
        self._emit("".join(out))

    def __call__(self, e: Event) -> None:
        if self.text.closed:
            return
        user = self.text.user
        match e:
            case TaskLogs():
                if self.logs:
                    self._log_lines(e.lines)
            case TaskStateChanged():
                if e.state in ("pending", "retrying"):
                    return  # (a retry's own line says it all)
                tid = user(e.task_id).ljust(self.width)
                detail = ""
                if e.state == "running":
                    if e.attempt > 1:
                        detail = f"attempt {e.attempt}/{e.max_attempts}"
                    if e.reason == "fallback":
                        detail = "running the fallback"
                elif e.state == "completed":
                    detail = "via fallback" if e.via_fallback else ""
                else:  # failed, cancelled, skipped
                    detail = user(e.error or e.reason or "")
                self._line(e.at, e.state, f"{tid} {detail}".rstrip())
            case RetryScheduled():
                tid = user(e.task_id).ljust(self.width)
                self._line(
                    e.at,
                    "retrying",
                    f"{tid} attempt {e.attempt}/{e.max_attempts} failed: {user(e.error)}; "
                    f"retry in {fmt_seconds(e.delay_s)}",
                )
            case RunStarted():
                self.width = max([12, *(len(t.id) for t in e.tasks)])
                for t in e.tasks:
                    self.max_attempts[t.id] = t.retry_attempts + 1
                extra = f" (resuming {e.resumed_from})" if e.resumed_from else ""
                head = (
                    f"{self._clock(e.at)}  run {e.run_id} of {user(repr(e.workflow))}: "
                    f"{len(e.tasks)} tasks, max concurrency {e.max_concurrency}{extra}"
                )
                self._emit(self.text.styled(head, "bold") + "\n")
            case TasksAdded():
                self.width = max([self.width, *(len(t.id) for t in e.tasks)])
                line = f"{self._clock(e.at)}  {user(e.parent)}: {len(e.tasks)} instances"
                self._emit(self.text.styled(line, "dim") + "\n")
            case RunFinished():
                self.flush()


def rows_to_show(rows: list[TaskRow], limit: int | None) -> tuple[list[TaskRow], str]:
    """The task rows a report shows, and a line for the rest: every row when there are at
    most `limit` (None: no limit); else the failed ones and the slowest, in run order, up to
    `limit`, and "... 9,990 more tasks: 9,990 completed". Linear: a report costs the same
    few milliseconds at 100 tasks as at 100,000."""
    if limit is None or len(rows) <= limit:
        return rows, ""
    failed = [i for i, r in enumerate(rows) if r.status == "failed"][:limit]
    chosen = set(failed)
    room = limit - len(chosen)
    if room > 0:
        others = (i for i, r in enumerate(rows) if i not in chosen)
        chosen.update(heapq.nlargest(room, others, key=lambda i: rows[i].duration_s))
    shown = [rows[i] for i in sorted(chosen)]
    rest: dict[str, int] = {}
    for i, r in enumerate(rows):
        if i not in chosen:
            rest[r.status] = rest.get(r.status, 0) + 1
    parts = ", ".join(f"{n:,} {st}" for st, n in sorted(rest.items(), key=lambda kv: -kv[1]))
    return shown, f"... {len(rows) - len(shown):,} more tasks: {parts}"


def report_figures(
    report: Report, workflow: str, status: str, run_id: str = ""
) -> list[tuple[str, str]]:
    """The report's headline figures as (label, value) (docs/engine.md defines each)."""
    cap = report.max_concurrency
    # where the wall time went, along the chain that ended the run (docs/engine.md)
    went = [
        f"{name} {fmt_seconds(seconds)}"
        for name, seconds in report.breakdown.lines()
        if seconds >= 0.0005 or name == "running"
    ]
    return [
        ("run", f"{run_id}  {workflow}  {label(status)}"),
        ("wall time", fmt_seconds(report.wall_s)),
        ("total task time", f"{fmt_seconds(report.total_task_s)}  (every attempt's running)"),
        (
            "speedup",
            f"{report.speedup_line()}  (the graph allows {report.graph_speedup:.2f}x, {cap} slots)",
        ),
        ("slot utilisation", f"{report.slot_utilisation:.0%} of {cap} slots busy"),
        (
            "critical path",
            f"{' -> '.join(report.critical_path) or '-'}  ({fmt_seconds(report.critical_path_s)})",
        ),
        (
            "time waiting on retries",
            fmt_seconds(report.retry_wait_s) if report.retry_wait_s > 0 else "none",
        ),
        ("wall time went to", ", ".join(went)),
    ]


def report_head(
    report: Report, workflow: str, status: str, run_id: str = "", *, width: int | None = None
) -> Table | Text:
    """The headline figures: labels in a column, or (`width` under 70, a narrow pane) each
    figure on its own lines, `label: value`, so neither is squeezed into a sliver."""
    figures = report_figures(report, workflow, status, run_id)
    if width is not None and width < 70:
        out = Text()
        for i, (name, value) in enumerate(figures):
            out.append(("\n" if i else "") + name + ": ", style="bold")
            out.append(value)
        return out
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold", no_wrap=True)
    head.add_column()
    for name, value in figures:
        head.add_row(name, value)
    return head


def row_note(row: TaskRow) -> Text:
    """A task row's error (one line, as text: no markup read into it, no control codes)."""
    if row.error:
        return Text(visible(row.error))
    return Text("via fallback" if row.via_fallback else "")


def failure_lines(rows: list[TaskRow]) -> list[Text]:
    """Each failed task's error at the whole width, below the table (a narrow column would
    read it 5 characters a line)."""
    out: list[Text] = []
    for row in rows:
        if row.error and row.status == "failed":
            line = Text(f"{glyph(row.status)} {row.id}: ", style=style(row.status))
            line.append(visible(row.error, keep_newlines=True))
            out.append(line)
    return [Text(""), Text("errors", style="bold"), *out] if out else []


def report_table(
    report: Report,
    workflow: str,
    status: str,
    run_id: str = "",
    *,
    rows: int | None = None,
    more: str = "",
) -> list[Any]:
    """The report as rich renderables: headline figures, then the per-task table (`rows`:
    how many tasks at most, the failed and the slowest first chosen; `more`: what to add
    to the line that counts the others, such as where the whole table is), then the errors."""
    table = Table(title=None, show_edge=False, pad_edge=False, header_style="bold")
    # names, statuses and figures never wrap; the error is cut to one line here
    table.add_column("task", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("error / note", no_wrap=True, overflow="ellipsis", ratio=1, min_width=12)
    on_path = set(report.critical_path)
    shown, rest = rows_to_show(report.tasks, rows)
    for row in shown:
        table.add_row(
            Text(row.id + (" *" if row.id in on_path else "")),
            Text(label(row.status), style=style(row.status)),
            str(row.attempts),
            fmt_seconds(row.duration_s) if row.started_at is not None else "-",
            row_note(row),
        )
    out: list[Any] = [report_head(report, workflow, status, run_id), Text(""), table]
    if rest:
        out.append(Text(f"{rest}{more}", style="dim"))
    out += failure_lines(shown)
    out.append(Text("* on the critical path", style="dim"))
    return out


def rich_console(out: TextIO, plain: bool | None = None) -> Console:
    """A Rich console for headless output drawn by Rich (reports, tables) to `out`: plain (no
    styles, 120 columns) with `plain`, or when `out` is not a terminal; otherwise styled for
    the terminal, without colours when NO_COLOR is set. (`no_color` is passed only to force
    plain output: `no_color=False` would override Rich's reading of NO_COLOR.)"""
    if plain is None:
        plain = not _is_terminal(out)
    return Console(
        file=out,
        highlight=False,
        no_color=True if plain else None,
        force_terminal=not plain,
        width=120 if plain else None,
    )


def print_report(
    report: Report,
    workflow: str,
    status: str,
    run_id: str = "",
    out: TextIO | None = None,
    plain: bool | None = None,
    *,
    rows: int | None = None,
    more: str = "",
) -> None:
    """Print the report (`rows`, `more`: see `report_table`). Plain output has no trailing
    blanks (Rich pads a table's rows to its width), for whoever greps or diffs it."""
    target = out or sys.stdout
    if plain is None:
        plain = not _is_terminal(target)
    buffer = io.StringIO() if plain else None
    console = rich_console(buffer or target, plain)
    console.print()
    for r in report_table(report, workflow, status, run_id, rows=rows, more=more):
        console.print(r)
    if buffer is not None:
        target.write("\n".join(line.rstrip() for line in buffer.getvalue().split("\n")))
