"""The efficiency report at the end of a run: the same figures and table as the console's,
followed by the slowest tasks."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from ...console import report_table
from ...engine.report import Report
from ...status import fmt_seconds, label, style


def report_renderable(report: Report, workflow: str, status: str, run_id: str) -> RenderableType:
    parts: list[RenderableType] = [*report_table(report, workflow, status, run_id)]
    slow = [r for r in report.slowest(5) if r.started_at is not None]
    if slow:
        table = Table(title=None, show_edge=False, pad_edge=False, header_style="bold")
        table.add_column("slowest tasks")
        table.add_column("status")
        table.add_column("duration", justify="right")
        table.add_column("share of wall time", justify="right")
        for row in slow:
            share = row.duration_s / report.wall_s if report.wall_s else 0.0
            table.add_row(
                row.id,
                Text(label(row.status), style=style(row.status)),
                fmt_seconds(row.duration_s),
                f"{share:.0%}",
            )
        parts += [Text(""), table]
    return Group(*parts)


class ReportPanel(VerticalScroll):
    DEFAULT_CSS = """
    ReportPanel { padding: 0 1; }
    ReportPanel > Static { width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.empty = True

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static(self._placeholder(), id="report-body")

    @staticmethod
    def _placeholder() -> Text:
        return Text("The report appears here when a run ends.", style="dim")

    def clear(self) -> None:
        if self.empty:  # already showing the placeholder: no redraw, no layout
            return
        self.empty = True
        self.query_one("#report-body", Static).update(self._placeholder())

    def show(self, report: Report, workflow: str, status: str, run_id: str) -> None:
        self.empty = False
        self.query_one("#report-body", Static).update(
            report_renderable(report, workflow, status, run_id)
        )
