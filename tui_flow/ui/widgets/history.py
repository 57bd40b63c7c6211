"""History: the past runs of this workflow, from the run store. Enter opens one.

Works with any store that has `await list_runs(workflow=..., limit=...)`; a row may be a
mapping or an object with the fields used below (missing fields show as "-").
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from ...status import fmt_seconds, label, style


def field(row: Any, name: str, default: Any = None) -> Any:
    if isinstance(row, dict):
        return row.get(name, default)
    return getattr(row, name, default)


def run_row(row: Any) -> tuple[str, Text, str, str, str]:
    started = field(row, "started_at")
    when = (
        _dt.datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(started, int | float)
        else "-"
    )
    status = str(field(row, "status", "?"))
    wall = field(row, "wall_s")
    if wall is None:
        end = field(row, "finished_at")
        wall = (
            end - started
            if isinstance(end, int | float) and isinstance(started, int | float)
            else None
        )
    tasks = field(row, "n_tasks", field(row, "tasks"))
    if isinstance(tasks, dict | list):
        tasks = len(tasks)
    note = field(row, "resumed_from")
    return (
        when,
        Text(label(status), style=style(status)),
        fmt_seconds(wall) if isinstance(wall, int | float) else "-",
        "-" if tasks is None else str(tasks),
        f"re-run of {note}" if note else "",
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
            rid = str(field(row, "run_id", field(row, "id", "?")))
            table.add_row(rid, *run_row(row), key=rid)
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row < 0:
            return
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key
        self.dismiss(str(key.value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.dismiss(str(event.row_key.value))
