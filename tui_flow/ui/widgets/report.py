"""The efficiency report at the end of a run: the same figures as the console's (one
definition, `console.report_head`), then every task's row, the errors and the slowest tasks.

A scroll view over lines (Textual's Line API): the headline figures, the errors and the
slowest tasks are drawn by Rich once per width; the per-task rows, one line each, are drawn
only when they scroll into view. A run of 10,000 tasks opens its report as fast as one of 10
(benchmarks/bench_report_panel.py; docs/app.md has the figures).
"""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...console import failure_lines, report_head, row_note
from ...engine.report import Report, TaskRow
from ...status import fmt_seconds, label, style
from ..keymap import SCROLL_KEYS

PLACEHOLDER = "The report appears here when a run ends."
STATUS_W, TRIES_W, DURATION_W = 12, 5, 9


def slowest_table(report: Report) -> Table | None:
    slow = [r for r in report.slowest(5) if r.started_at is not None]
    if not slow:
        return None
    table = Table(title=None, show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("slowest tasks", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("share of wall time", justify="right", no_wrap=True)
    for row in slow:
        share = row.duration_s / report.wall_s if report.wall_s else 0.0
        table.add_row(
            row.id,
            Text(label(row.status), style=style(row.status)),
            fmt_seconds(row.duration_s),
            f"{share:.0%}",
        )
    return table


def _cell(text: str, width: int, right: bool = False) -> str:
    if len(text) > width:
        return text[: max(0, width - 1)] + "…"
    return text.rjust(width) if right else text.ljust(width)


class ReportPanel(ScrollView, can_focus=True):
    BINDINGS = SCROLL_KEYS

    DEFAULT_CSS = """
    ReportPanel { padding: 0 1; overflow: auto auto; scrollbar-size-vertical: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.empty = True
        self.report: Report | None = None
        self._title = ("", "", "")
        self._rows: list[TaskRow] = []
        self._on_path: set[str] = set()
        self._head: list[Strip] = []
        self._tail: list[Strip] = []
        self._task_w = 8
        self._laid_out_at = -1
        self._cache: LRUCache[int, Strip] = LRUCache(1024)
        self._base: Style | None = None

    # -- content -------------------------------------------------------------------------------

    def clear(self) -> None:
        if self.empty:  # already showing the placeholder: no redraw, no layout
            return
        self.empty = True
        self.report = None
        self._rows = []
        self._layout()

    def show(self, report: Report, workflow: str, status: str, run_id: str) -> None:
        self.empty = False
        self.report = report
        self._title = (workflow, status, run_id)
        self._rows = report.tasks
        self._on_path = set(report.critical_path)
        self._task_w = min(40, max([4, *(len(r.id) + 2 for r in self._rows)]))
        self._layout()
        self.scroll_to(0, 0, animate=False)

    def text(self) -> str:
        """Every line as plain text (what the panel shows, scrolled or not)."""
        return "\n".join(self._line(i).text.rstrip() for i in range(self.virtual_size.height))

    # -- layout --------------------------------------------------------------------------------

    def _width(self) -> int:
        return max(20, self.scrollable_content_region.width or self.size.width or 80)

    def _strips(self, parts: list[RenderableType], width: int) -> list[Strip]:
        if not parts:
            return []
        console = self.app.console
        options = console.options.update_width(width)
        out: list[Strip] = []
        for part in parts:
            for line in console.render_lines(part, options, pad=False):
                out.append(Strip(line))
        return out

    def _layout(self) -> None:
        width = self._width()
        self._laid_out_at = width
        self._cache.clear()
        report = self.report
        if report is None:
            self._head = self._strips([Text(PLACEHOLDER, style="dim")], width)
            self._tail = []
        else:
            workflow, status, run_id = self._title
            head = report_head(report, workflow, status, run_id, width=width)
            self._head = self._strips([head], width)
            tail: list[RenderableType] = [*failure_lines(self._rows)]
            slow = slowest_table(report)
            if slow is not None:
                tail += [Text(""), slow]
            tail += [Text(""), Text("* on the critical path", style="dim")]
            self._tail = self._strips(tail, width)
        rows = len(self._rows) + 3 if self._rows else 0  # blank, header, rule, rows
        self.virtual_size = Size(width, len(self._head) + rows + len(self._tail))
        self.refresh()

    def on_resize(self, event: Any) -> None:
        if self._width() != self._laid_out_at:
            self._layout()

    # -- drawing -------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()

    def render_lines(self, crop):
        self._base = self.rich_style  # once per paint, not once per line
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        base = self._base if self._base is not None else self.rich_style
        if index >= self.virtual_size.height:
            return Strip.blank(width, base)
        strip = self._cache.get(index)
        if strip is None:
            strip = self._cache[index] = self._line(index)
        strip = strip.apply_style(base)
        return strip.crop_extend(scroll_x, scroll_x + width, base).apply_offsets(scroll_x, index)

    def _line(self, index: int) -> Strip:
        head = len(self._head)
        if index < head:
            return self._head[index]
        index -= head
        if self._rows:
            if index == 0:
                return Strip([])
            if index in (1, 2):
                return self._strip(self._header(index == 2))
            index -= 3
            if index < len(self._rows):
                return self._strip(self._row(self._rows[index]))
            index -= len(self._rows)
        return self._tail[index] if index < len(self._tail) else Strip([])

    def _narrow(self) -> bool:
        """Under 60 columns (a narrow pane) a row is task, status and duration: the errors
        are listed below the table at the whole width anyway."""
        return self._laid_out_at < 60

    def _note_w(self) -> int:
        used = self._task_w + STATUS_W + TRIES_W + DURATION_W + 4 * 3
        return max(12, self._laid_out_at - used)

    def _widths(self) -> tuple[int, ...]:
        if self._narrow():
            task_w = max(4, min(self._task_w, self._laid_out_at - STATUS_W - DURATION_W - 6))
            return (task_w, STATUS_W, DURATION_W)
        return (self._task_w, STATUS_W, TRIES_W, DURATION_W, self._note_w())

    def _header(self, rule: bool) -> Text:
        widths = self._widths()
        if rule:
            return Text("━╇━".join("━" * w for w in widths), style="dim")
        cells = [_cell("task", widths[0]), _cell("status", STATUS_W)]
        if not self._narrow():
            cells.append(_cell("tries", TRIES_W, right=True))
        cells.append(_cell("duration", DURATION_W, right=True))
        if not self._narrow():
            cells.append("error / note")
        return Text(" ┃ ".join(cells), style="bold")

    def _row(self, row: TaskRow) -> Text:
        widths = self._widths()
        name = row.id + (" *" if row.id in self._on_path else "")
        line = Text(no_wrap=True, end="")
        line.append(_cell(name, widths[0]))
        line.append(" │ ", style="dim")
        line.append(_cell(label(row.status), STATUS_W), style=style(row.status))
        line.append(" │ ", style="dim")
        if not self._narrow():
            line.append(_cell(str(row.attempts), TRIES_W, right=True))
            line.append(" │ ", style="dim")
        duration = fmt_seconds(row.duration_s) if row.started_at is not None else "-"
        line.append(_cell(duration, DURATION_W, right=True))
        if not self._narrow():
            line.append(" │ ", style="dim")
            line.append(_cell(row_note(row).plain, self._note_w()))
        return line

    def _strip(self, text: Text) -> Strip:
        segments: list[Segment] = list(text.render(self.app.console))
        return Strip(segments, text.cell_len)
