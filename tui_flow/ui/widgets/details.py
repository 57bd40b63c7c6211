"""Details of the selected task: what it is (dependencies, retry policy, trigger rule) and
what happened to it (each attempt with its error, the context keys it wrote)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from ...engine.events import CANCEL_WAITS_FOR_THREAD as CANCEL_ASKED
from ...engine.state import RunView, TaskView
from ...safe_text import visible
from ...status import fmt_seconds, glyph, label, style
from ...tracebacks import failure_lines


def retry_policy(t: TaskView) -> str:
    info = t.info
    if not info.retry_attempts:
        return "no retries" + (", then the fallback" if info.has_fallback else "")
    delay = fmt_seconds(info.retry_delay_ms / 1000) if info.retry_delay_ms else "no delay"
    out = f"{info.retry_attempts} retr{'y' if info.retry_attempts == 1 else 'ies'}"
    out += f" ({info.retry_attempts + 1} attempts), {delay}"
    if info.retry_attempts and info.retry_delay_ms:
        out += f", {info.retry_backoff} backoff"
    if info.has_fallback:
        out += ", then the fallback"
    return out


def details_renderable(
    t: TaskView | None, view: RunView, now: float, needed_by: list[str] | None = None
) -> RenderableType:
    if t is None:
        return Text("Select a task to see its details.", style="dim")
    info = t.info
    head = Text()
    head.append(info.id, style="bold")
    head.append("  ")
    head.append(label(t.state), style=style(t.state))
    if t.reason and (t.state not in ("running", "completed") or t.reason == CANCEL_ASKED):
        head.append(f"  ({visible(t.reason)})", style="dim")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    if info.description:
        grid.add_row("about", info.description)
    if info.parent:
        grid.add_row("instance of", info.parent)
    grid.add_row("depends on", ", ".join(info.dependencies) or "nothing (starts at once)")
    dependents = needed_by
    if dependents is None:  # the app passes them (a scan of every task is slow at 10,000)
        dependents = [tid for tid in view.order if info.id in view.tasks[tid].info.dependencies]
    if dependents:
        grid.add_row("needed by", ", ".join(dependents))
    grid.add_row("retries", retry_policy(t))
    extra = f"trigger {info.trigger_rule} · runner {info.runner}"
    if info.timeout_s:
        extra += f" · timeout {fmt_seconds(info.timeout_s)}"
    if info.map_over:
        extra += f" · map over {info.map_over!r}"
    grid.add_row("rules", extra)
    if info.run_if:
        grid.add_row("runs if", visible(info.run_if))
    if t.started_at is not None and t.final:
        grid.add_row("duration", fmt_seconds(t.duration(now)))
    if t.instances:
        done = sum(1 for i in t.instances if i in view.tasks and view.tasks[i].final)
        grid.add_row("instances", f"{done}/{len(t.instances)} finished")
    for a in t.attempts:
        row = Text()
        st = {"timed_out": "failed"}.get(a.status, a.status)
        row.append(f"{glyph(st)} {a.status}", style=style(st))
        if a.finished_at is not None:
            row.append(f"  {fmt_seconds(max(0.0, a.finished_at - a.started_at))}", style="dim")
        if a.error:
            row.append(f"  {visible(a.error, keep_newlines=True)}", style="red")
        grid.add_row(f"attempt {a.number}", row)
    if t.state == "failed" and t.error and not t.attempts:
        grid.add_row("error", Text(visible(t.error, keep_newlines=True), style="red"))
    if t.written_keys:
        grid.add_row("wrote", ", ".join(t.written_keys))
    if t.log_lines and t.final:
        grid.add_row("log", f"{t.log_lines:,} line{'s' if t.log_lines != 1 else ''}")
    failure = failure_text(t)
    return Group(head, grid) if failure is None else Group(head, grid, Text(""), failure)


def failure_text(t: TaskView) -> Text | None:
    """The error that ended the task (or its last failed attempt) with its traceback, the
    user's own frames first (`tracebacks.failure_lines`)."""
    error, tb = t.error, t.traceback
    if tb is None:
        failed = [a for a in t.attempts if a.traceback]
        if not failed:
            return None
        error, tb = failed[-1].error, failed[-1].traceback
    lines = failure_lines(error, tb)
    out = Text()
    section = "error"
    for i, line in enumerate(lines):
        if line in ("your code (most recent call last):", "full traceback:"):
            section = line
            out.append(line + "\n", style="bold")
            continue
        text = visible(line)
        if i == 0:
            out.append(text + "\n", style="bold red")
        elif section == "full traceback:":
            out.append(text + "\n", style="dim")
        else:
            out.append(text + "\n")
    out.rstrip()
    return out


class TaskDetails(VerticalScroll):
    DEFAULT_CSS = """
    TaskDetails > Static { width: 1fr; }
    """

    def compose(self):
        yield Static(Text("Select a task to see its details.", style="dim"), id="details-body")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._key: tuple[object, ...] | None = None

    def show(
        self, t: TaskView | None, view: RunView, now: float, needed_by: list[str] | None = None
    ) -> None:
        """Show a task; redraw only when something shown changed (not on every tick)."""
        key: tuple[object, ...] = (id(view),)
        if t is not None:
            key += (
                t.id,
                t.state,
                t.reason,
                len(t.attempts),
                t.attempts[-1].finished_at if t.attempts else None,
                len(t.written_keys),
                len(t.instances),
                sum(1 for i in t.instances if i in view.tasks and view.tasks[i].final),
                t.log_lines if t.final else None,
            )
        if key == self._key:
            return
        self._key = key
        self.query_one("#details-body", Static).update(details_renderable(t, view, now, needed_by))
