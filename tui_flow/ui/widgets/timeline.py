"""The timeline: one bar per task on a shared time axis, live.

Each row shows, left to right on the run's clock: waiting (its dependencies were done but it
had no slot yet) as dots, holding a slot while a worker process starts as shading, each
attempt as a bar in its outcome's colour, and the pauses
between attempts (retry delays) as dashes. Tasks on the critical path are marked `*` and
drawn with full-height bars; the others with slightly lower ones, so the path reads without
colour too.
"""

from __future__ import annotations

import math

from rich.style import Style
from rich.text import Text
from textual.containers import Vertical
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from ...engine.state import RunView, TaskView
from ...status import fmt_seconds, style
from ...workflow import longest_path
from ..keymap import SCROLL_KEYS

ATTEMPT_STYLE = {
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "timed_out": "red",
    "cancelled": "magenta",
}
WAIT, RETRY, BAR, BAR_CRITICAL, WORKER = "·", "╌", "▆", "█", "░"


def nice_step(raw: float) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) no smaller than `raw`."""
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power


def tick_label(t: float, step: float) -> str:
    """Short axis labels: `0`, `250ms`, `1.5s`, `2m`."""
    if t == 0:
        return "0"
    if step < 1:
        return f"{t * 1000:.0f}ms" if t < 1 else f"{t:g}s"
    if t < 120:
        return f"{t:g}s"
    return f"{t / 60:g}m"


def critical_path(view: RunView, now: float) -> list[str]:
    """The chain of top-level tasks with the largest summed duration so far."""
    top = [tid for tid in view.order if view.tasks[tid].info.parent is None]
    deps = {tid: view.tasks[tid].info.dependencies for tid in top}
    durations = {tid: view.tasks[tid].duration(now) or 0.0 for tid in top}
    if not any(durations.values()):
        return []
    path, _ = longest_path(deps, durations, top)
    return path


def ready_at(t: TaskView, view: RunView) -> float | None:
    """When the task could have started: its dependencies all final (or the run start)."""
    if t.info.parent is not None:
        parent = view.tasks.get(t.info.parent)
        return parent.started_at if parent is not None else view.started_at
    ends = []
    for d in t.info.dependencies:
        dv = view.tasks.get(d)
        if dv is None or dv.finished_at is None:
            return None
        ends.append(dv.finished_at)
    return max(ends) if ends else view.started_at


def bar_row(
    t: TaskView, view: RunView, t0: float, span: float, width: int, now: float, critical: bool
) -> Text:
    """The bar cells of one task (width cells covering [t0, t0 + span])."""
    cells: list[tuple[str, str]] = [(" ", "")] * width
    if width <= 0 or span <= 0:
        return Text()
    scale = width / span

    def paint(start: float, end: float, char: str, st: str, at_least_one: bool) -> None:
        a = int((start - t0) * scale)
        b = int((end - t0) * scale + 0.5)
        if at_least_one:
            b = max(b, a + 1)
        for i in range(max(0, a), min(width, b)):
            cells[i] = (char, st)

    ready = ready_at(t, view)
    first = t.attempts[0].started_at if t.attempts else None
    if ready is not None and t.reason != "reused from earlier run":
        wait_end = first if first is not None else (now if not t.final else None)
        if wait_end is not None and wait_end > ready:
            paint(ready, wait_end, WAIT, "dim", False)
    # holding its slot while a worker process starts (or the pool is busy): not a slot wait
    if t.worker_wait_since is not None:
        paint(t.worker_wait_since, now, WORKER, "magenta", False)
    elif first is not None and t.worker_wait_s > 0:
        paint(first - t.worker_wait_s, first, WORKER, "magenta", False)
    bar = BAR_CRITICAL if critical else BAR
    prev_end: float | None = None
    for a in t.attempts:
        if prev_end is not None and a.started_at > prev_end:
            paint(prev_end, a.started_at, RETRY, "yellow", False)
        end = a.finished_at if a.finished_at is not None else now
        paint(a.started_at, end, bar, ATTEMPT_STYLE.get(a.status, "cyan"), True)
        prev_end = end
    if t.state == "retrying" and prev_end is not None:
        paint(prev_end, now, RETRY, "yellow", False)
    if not t.attempts and t.instances and t.started_at is not None:  # a map_over group
        end = t.finished_at if t.finished_at is not None else now
        paint(t.started_at, end, "━", style(t.state) or "cyan", True)
    out = Text()
    for ch, st in cells:
        out.append(ch, style=st)
    return out


class Timeline(ScrollView, can_focus=True):
    """Rows of bars under a sticky time axis."""

    BINDINGS = SCROLL_KEYS

    DEFAULT_CSS = """
    Timeline { background: $surface; overflow: hidden auto; scrollbar-size-vertical: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: RunView | None = None
        self.now = 0.0
        self.critical: set[str] = set()
        self.rows: list[str] = []
        self._name_w = 8
        self._base_style: Style | None = None

    def update_view(self, view: RunView, now: float) -> None:
        """Take the run's current state and redraw the visible rows."""
        self.view = view
        self.now = now
        self.rows = list(view.order)
        # once per update, not once per drawn line (10,000 rows: 35 lines cost 350,000 lens)
        self._name_w = min(24, max([6, *(len(r) for r in self.rows)])) + 2
        self.critical = set(critical_path(view, now)) if view.started_at is not None else set()
        self.virtual_size = Size(self.size.width, len(self.rows) + 1)
        self.refresh()

    def _geometry(self) -> tuple[int, int, float, float]:
        view = self.view
        assert view is not None
        name_w = self._name_w
        bar_w = max(10, self.size.width - name_w - 12)
        t0 = view.started_at or self.now
        end = view.finished_at if view.finished_at is not None else self.now
        return name_w, bar_w, t0, max(1e-3, end - t0)

    def render_lines(self, crop):
        self._base_style = self.rich_style  # once per paint, not once per line
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self._base_style if self._base_style is not None else self.rich_style
        view = self.view
        if view is None or not self.rows:
            if y == 0:
                return self._strip(Text("No run yet: press r to run.", style="dim"), width, base)
            return Strip.blank(width, base)
        name_w, bar_w, t0, span = self._geometry()
        if view.started_at is None:
            if y == 0:
                return self._strip(
                    Text("The timeline fills in when a run starts.", style="dim"), width, base
                )
            return Strip.blank(width, base)
        if y == 0:
            return self._strip(self._axis(name_w, bar_w, span), width, base)
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self.rows):
            return Strip.blank(width, base)
        tid = self.rows[index]
        t = view.tasks[tid]
        critical = tid in self.critical
        name = tid if t.info.parent is None else "  " + tid[len(t.info.parent) :]
        if len(name) > name_w - 2:
            name = name[: name_w - 3] + "…"
        line = Text(no_wrap=True)
        line.append(f"{name:<{name_w - 2}}", style="bold" if critical else "")
        line.append("* " if critical else "  ", style="bold")
        dur = t.duration(self.now)
        line.append(f"{fmt_seconds(dur) if dur is not None else '':>9} ", style="dim")
        line.append("▕", style="dim")
        line.append_text(bar_row(t, view, t0, span, bar_w, self.now, critical))
        line.append("▏", style="dim")
        return self._strip(line, width, base)

    def _axis(self, name_w: int, bar_w: int, span: float) -> Text:
        head = Text(f"{'task':<{name_w}}{'time':>9}  ", style="bold")
        ticks = [" "] * bar_w
        step = nice_step(span / max(2, min(8, bar_w // 10)))
        k = 0
        free_from = 0
        while k * step <= span + 1e-9:
            pos = round(k * step * (bar_w - 1) / span) if span else 0
            label = tick_label(k * step, step)
            start = min(pos, bar_w - len(label))
            if start >= free_from:
                for i, ch in enumerate(label):
                    if 0 <= start + i < bar_w:
                        ticks[start + i] = ch
                free_from = start + len(label) + 2
            k += 1
        head.append("".join(ticks), style="dim")
        return head

    def _strip(self, text: Text, width: int, base: Style) -> Strip:
        text.stylize_before(base)
        text.no_wrap = True
        text.end = ""
        strip = Strip(list(text.render(self.app.console)), text.cell_len)
        return strip.crop_extend(0, width, base)


class TimelinePanel(Vertical):
    DEFAULT_CSS = """
    TimelinePanel > #timeline-legend { height: 1; padding: 0 1; color: $text-muted; }
    """

    def compose(self):
        yield Timeline(id="timeline")
        legend = Text()
        legend.append(BAR_CRITICAL + BAR, style="cyan")
        legend.append(" attempt  ")
        legend.append(RETRY * 2, style="yellow")
        legend.append(" retry delay  ")
        legend.append(WAIT * 2, style="dim")
        legend.append(" waiting for a slot  ")
        legend.append(WORKER * 2, style="magenta")
        legend.append(" worker start-up  ")
        legend.append("*", style="bold")
        legend.append(" critical path")
        yield Static(legend, id="timeline-legend")
