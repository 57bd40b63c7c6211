"""Headless output: a line per state change and retry, task logs, then the report.

Rich on a terminal; plain text when stdout is not a TTY, with `--plain`, or with NO_COLOR
(statuses always carry a glyph and a word, so nothing depends on colour).
"""

from __future__ import annotations

import datetime as _dt
import sys
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .engine.report import Report
from .status import fmt_seconds, glyph, label, style


def _clock(at: float) -> str:
    return _dt.datetime.fromtimestamp(at).strftime("%H:%M:%S.%f")[:-3]


class ConsoleReporter:
    """An event subscriber that prints a readable run log."""

    def __init__(
        self,
        out: TextIO | None = None,
        *,
        plain: bool | None = None,
        logs: bool = True,
    ) -> None:
        self.out = out or sys.stdout
        if plain is None:
            plain = not self.out.isatty()
        self.plain = plain
        self.logs = logs
        self.console = Console(
            file=self.out,
            highlight=False,
            no_color=plain,
            force_terminal=not plain,
            soft_wrap=True,
        )
        self.width = 12
        self.max_attempts: dict[str, int] = {}

    def _line(self, at: float, status: str, text: str) -> None:
        t = Text(f"{_clock(at)}  ")
        t.append(f"{glyph(status)} {status:<10}", style=style(status))
        t.append(" " + text)
        self.console.print(t)

    def __call__(self, e: Any) -> None:
        kind = e.kind
        if kind == "run_started":
            self.width = max([12, *(len(t.id) for t in e.tasks)])
            for t in e.tasks:
                self.max_attempts[t.id] = t.retry_attempts + 1
            extra = f" (resuming {e.resumed_from})" if e.resumed_from else ""
            self.console.print(
                Text(
                    f"{_clock(e.at)}  run {e.run_id} of {e.workflow!r}: {len(e.tasks)} tasks, "
                    f"max concurrency {e.max_concurrency}{extra}",
                    style="bold",
                )
            )
        elif kind == "task_state":
            if e.state == "pending":
                return
            tid = e.task_id.ljust(self.width)
            detail = ""
            if e.state == "running":
                if e.attempt > 1:
                    detail = f"attempt {e.attempt}/{e.max_attempts}"
                if e.reason == "fallback":
                    detail = "running the fallback"
            elif e.state == "completed":
                detail = "via fallback" if e.via_fallback else ""
            elif e.state in ("failed", "cancelled", "skipped"):
                detail = e.error or e.reason or ""
            elif e.state == "retrying":
                return  # the retry line says it all
            self._line(e.at, e.state, f"{tid} {detail}".rstrip())
        elif kind == "retry_scheduled":
            tid = e.task_id.ljust(self.width)
            self._line(
                e.at,
                "retrying",
                f"{tid} attempt {e.attempt}/{e.max_attempts} failed: {e.error}; "
                f"retry in {fmt_seconds(e.delay_s)}",
            )
        elif kind == "task_logs" and self.logs:
            for line in e.lines:
                t = Text(f"{_clock(line.at)}  ")
                t.append(f"  │ {line.task_id}: ", style="dim")
                t.append(line.text, style="red" if line.level in ("error", "critical") else "")
                self.console.print(t)
        elif kind == "tasks_added":
            self.width = max([self.width, *(len(t.id) for t in e.tasks)])
            self.console.print(
                Text(f"{_clock(e.at)}  {e.parent}: {len(e.tasks)} instances", style="dim")
            )


def report_table(report: Report, workflow: str, status: str, run_id: str = "") -> list[Any]:
    """The report as rich renderables: headline figures, then the per-task table."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("run", f"{run_id}  {workflow}  {label(status)}")
    head.add_row("wall time", fmt_seconds(report.wall_s))
    head.add_row("total task time", fmt_seconds(report.total_task_s))
    head.add_row("speedup", f"{report.speedup:.2f}x  (total task time / wall time)")
    head.add_row(
        "efficiency",
        f"{report.efficiency:.0%}  (speedup / max concurrency {report.max_concurrency})",
    )
    head.add_row(
        "critical path",
        f"{' -> '.join(report.critical_path) or '-'}  ({fmt_seconds(report.critical_path_s)})",
    )
    head.add_row("best possible speedup", f"{report.max_speedup:.2f}x  (total / critical path)")
    head.add_row("time waiting on retries", fmt_seconds(report.retry_wait_s))

    table = Table(title=None, show_edge=False, pad_edge=False, header_style="bold")
    # names, statuses and figures never wrap; only the error column gives way
    table.add_column("task", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("error / note", overflow="fold", ratio=1)
    on_path = set(report.critical_path)
    for row in report.tasks:
        note = row.error or ("via fallback" if row.via_fallback else "")
        name = Text(row.id + (" *" if row.id in on_path else ""))
        table.add_row(
            name,
            Text(label(row.status), style=style(row.status)),
            str(row.attempts),
            fmt_seconds(row.duration_s) if row.started_at is not None else "-",
            note,
        )
    return [head, Text(""), table, Text("* on the critical path", style="dim")]


def print_report(
    report: Report,
    workflow: str,
    status: str,
    run_id: str = "",
    out: TextIO | None = None,
    plain: bool | None = None,
) -> None:
    out = out or sys.stdout
    if plain is None:
        plain = not out.isatty()
    console = Console(
        file=out,
        highlight=False,
        no_color=plain,
        force_terminal=not plain,
        width=None if not plain else 120,
    )
    console.print()
    for r in report_table(report, workflow, status, run_id):
        console.print(r)
