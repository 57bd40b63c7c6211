"""History: the past runs of this workflow, from the run store (`RunRow`s). Enter opens one."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from ...status import fmt_seconds, label, style

if TYPE_CHECKING:
    from ...store.sqlite import RunRow


def run_row(row: RunRow) -> tuple[str, Text, str, str, str]:
    """A stored run as the table shows it: started, status, wall time, tasks, origin."""
    when = _dt.datetime.fromtimestamp(row.started_at).strftime("%Y-%m-%d %H:%M:%S")
    wall = row.wall_s
    if wall is None and row.finished_at is not None:
        wall = row.finished_at - row.started_at
    return (
        when,
        Text(label(row.status), style=style(row.status)),
        fmt_seconds(wall),
        str(row.n_tasks),
        f"re-run of {row.resumed_from}" if row.resumed_from else "",
    )


class HistoryScreen(ModalScreen[str | None]):
    """A list of past runs; dismisses with the chosen run id (None: closed)."""

    BINDINGS = [
        Binding("escape,q,h", "close", "Close", id="history.close"),
        Binding("enter", "open", "Open run", id="history.open", show=True),
    ]
    DEFAULT_CSS = """
    HistoryScreen { align: center middle; }
    HistoryScreen > Vertical {
        width: 90%; max-width: 110; height: 80%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    HistoryScreen #history-note { height: auto; color: $text-muted; margin-bottom: 1; }
    HistoryScreen DataTable { height: 1fr; }
    """

    def __init__(self, workflow: str, rows: list[Any]) -> None:
        super().__init__()
        self.workflow = workflow
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"Past runs of {self.workflow}"
            note = (
                f"{len(self.rows)} run(s), newest first. Enter opens a run in the panels; "
                "r starts a new run from there."
                if self.rows
                else "No recorded runs yet: runs are recorded when the store is on."
            )
            yield Static(note, id="history-note")
            yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("run", key="run")
        table.add_columns("started", "status", "wall", "tasks", "")
        for row in self.rows:
            table.add_row(row.run_id, *run_row(row), key=row.run_id)
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row < 0:
            return
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        self.dismiss(str(key.value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.dismiss(str(event.row_key.value))
