"""Every retry of the run: when, which task, which attempt failed, why, and the delay."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from ...engine.events import RetryScheduled
from ...safe_text import visible
from ...status import fmt_seconds


class RetriesTable(DataTable[str | Text]):
    DEFAULT_CSS = """
    RetriesTable { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, zebra_stripes=True, cursor_type="row")
        self.shown = 0

    def on_mount(self) -> None:
        self.add_columns("at", "task", "attempt", "error", "next try in")

    def reset(self) -> None:
        if self.row_count:  # an empty table stays as it is (no redraw, no layout)
            self.clear()
        self.shown = 0

    def sync(self, retries: list[RetryScheduled], started_at: float | None) -> int:
        """Add the retries not shown yet; return how many were added."""
        new = retries[self.shown :]
        for r in new:
            at = fmt_seconds(r.at - started_at) if started_at is not None else "-"
            self.add_row(
                f"+{at}",
                r.task_id,
                f"{r.attempt}/{r.max_attempts} failed",
                Text(visible(r.error), style="red", overflow="ellipsis", no_wrap=True),
                fmt_seconds(r.delay_s),
            )
        self.shown = len(retries)
        return len(new)
